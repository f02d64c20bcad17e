"""The `collide` command line: a thin layer over the Python API (`sweep.api`, `sweep.tune`).

- `entry.py`: the entry point, `main(argv) -> int`, and how errors become exit codes;
- `data.py`: `prepare`, `datasets` and `train` (no Ray, no MLflow);
- `sweeps.py`: `sweep` (and `--resume`) and `sync`;
- `readers.py`: `pareto`, `export`, `report` and `ui`, which read a sweep back from MLflow;
- `common.py`: the tracking-URI option and its credential check, the runs-view line;
- `options.py`: command-line options generated from the config dataclasses.
"""

from __future__ import annotations

from sweep.cli.entry import build_parser, main, run

__all__ = ["build_parser", "main", "run"]
