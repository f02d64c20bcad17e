"""The `collide` command line: a thin layer over the Python API (`sweep.api`, `sweep.tune`).

- `entry.py`: the entry point, `main(argv) -> int`, and how errors become exit codes;
- `data.py`: `prepare`, `datasets` and `train` (no Ray, no MLflow);
- `sweeps.py`: `sweep`, `sync`, `pareto`, `export`, `report` and `ui`;
- `options.py`: command-line options generated from the config dataclasses.
"""

from __future__ import annotations

from sweep.cli.entry import build_parser, main

__all__ = ["build_parser", "main"]
