"""collide's outer layer: data, trials, Ray Tune sweeps, MLflow tracking, Pareto, export, CLI.

Python API (the CLI is a thin layer over it)::

    import sweep
    config = sweep.load_preset("quick", {"train": {"epochs": 1}})
    result = sweep.run_sweep(config)            # result.state, result.trials, result.frontier,
    result.files
    result = sweep.resume_sweep("quick")        # continue the latest sweep after a kill or Ctrl-C
    table, files, used = sweep.pareto("quick")  # recompute from MLflow alone (latest completed
    sweep)
    sweep.export("quick", "exported", max_bytes=2_000_000)
    tables, files = sweep.report("quick", "results/quick")   # the evidence report, from MLflow
    alone
    mapping = sweep.load_export("exported")

Names are imported on first use, so `collide prepare` does not pay for importing Ray.
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "ConfigError": "sweep.errors",
    "UserError": "sweep.errors",
    "SweepConfig": "sweep.config",
    "load_config": "sweep.config",
    "load_preset": "sweep.config",
    "SweepResult": "sweep.tune.ending",
    "resume_sweep": "sweep.tune.resume",
    "run_sweep": "sweep.tune.runner",
    "sync_sweep": "sweep.tune.ending",
    "ExportedMapping": "sweep.serving",
    "load_export": "sweep.serving",
    "export": "sweep.api",
    "pareto": "sweep.api",
    "report": "sweep.api",
    "TrialConfig": "sweep.trial",
    "run_trial": "sweep.trial",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'sweep' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
