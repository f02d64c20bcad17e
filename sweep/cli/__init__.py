"""The `collide` command line: a thin layer over the Python API (`sweep.api`, `sweep.tune`).

- `entry.py`: the entry point, `main(argv) -> int`, and how errors become exit codes;
- `data.py`: `prepare`, `datasets` and `train` (no Ray, no MLflow);
- `sweeps.py`: `sweep` (and `--resume`) and `sync`;
- `readers.py`: `pareto`, `export`, `report` and `ui`, which read a sweep back from MLflow;
- `common.py`: the tracking-URI option and its credential check, the runs-view line;
- `options.py`: command-line options generated from the config dataclasses.

Importing the commands loads torch, a few seconds on a busy machine, before `entry.run` holds
the signals: `run` here catches a Ctrl-C in that time, so it ends like any other interruption
(one line, exit 130), not in a traceback. `main` and `build_parser` are imported on first use.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["build_parser", "main", "run"]

SIGINT_EXIT = 130  # as sweep.tune.interrupt.exit_code_for("SIGINT"), without importing it


def run(argv: Sequence[str] | None = None) -> None:
    """The `collide` program (`sweep.cli.entry.run`), started so that a Ctrl-C while its modules
    load exits 130 with one line."""
    try:
        from sweep.cli.entry import run as run_command
    except KeyboardInterrupt:
        print(f"collide: interrupted by SIGINT while starting; nothing was run (exit "
              f"{SIGINT_EXIT})", file=sys.stderr)
        raise SystemExit(SIGINT_EXIT) from None
    run_command(argv)


def __getattr__(name: str) -> Any:
    if name in ("build_parser", "main"):
        from sweep.cli import entry

        return getattr(entry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
