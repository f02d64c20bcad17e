"""Sweep parallel efficiency: how well a 16-trial grid keeps 2 CPUs busy.

    efficiency = (sum of the trials' own seconds / CPUs) / sweep wall time

A trial's own seconds are its `total_seconds` metric: `run_trial` from loading the data to
the written bundles. The wall time is the whole `run_sweep` call, from the config to the
Pareto files: data preparation, the probes, Ray's start, every trial, MLflow and the
frontier. The data is prepared and the probes trained before the clock starts (as on a
second sweep of the same data), so that the figure measures the sweep machinery, not the
one-off preparation; `--cold` clears those caches first and counts them too.

Two kinds of trial, each a 16-point grid (4 strategies x 2 compressions x 2 dims, seed 0):

- `synthetic`: the `quick` preset's data (1M rows, 5 features), 2 epochs at batch 2048:
  trials of several seconds, as in the `quick` preset.
- `small`: trials of a second or two, as in the `movielens` preset: the MovieLens-100K
  preset itself when `--movielens DIR` gives its RecBole directory (e.g. ml-100k),
  otherwise synthetic data of the same size (100k rows).

    python benchmarks/sweep_efficiency.py                      # about 3 minutes on 2 cores
    python benchmarks/sweep_efficiency.py --movielens DATA/ml-100k

It prints, per kind, the efficiency, the wall time split into before the first trial,
the Tune phase and after the last trial, and the fixed cost per trial (the Tune phase's
CPU-seconds not spent inside a trial, per trial); it ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from mlflow.tracking import MlflowClient  # noqa: E402

from sweep.config import load_preset  # noqa: E402
from sweep.tune.records import find_sweep  # noqa: E402
from sweep.tune.runner import run_sweep  # noqa: E402

TARGET = 0.85
GRID = {"strategies": ["hash", "frequency", "qr", "frequency_embedding"], "compressions": [4, 16], "dims": [8, 16],
        "seeds": [0]}
SMALL_SYNTHETIC = {"num_rows": 100_000, "vocab_sizes": [1682, 943, 21, 7, 2], "num_dense": 2}


def kinds(movielens: str | None) -> dict[str, dict]:
    """The two sweep configs (as preset overrides) by kind."""
    small = ({"preset": "movielens", "data": {"params": {"path": str(Path(movielens).resolve())}},
              "grid": {**GRID, "compressions": [2, 8]}} if movielens else
             {"preset": "quick", "data": {"params": {"preset": "default", **SMALL_SYNTHETIC}},
              "model": {"full_threshold": 16}, "train": {"epochs": 5, "batch_size": 1024}})
    return {"synthetic": {"preset": "quick", "grid": GRID}, "small": small}


def trial_seconds(tracking_uri: str, name: str, parent_run_id: str) -> list[dict]:
    """Per trial run: its total_seconds and start/end times (ms) from MLflow."""
    sweep = find_sweep(MlflowClient(tracking_uri), name, parent_run_id)
    return [{"name": r.info.run_name, "total_seconds": r.data.metrics["total_seconds"],
             "start_ms": r.info.start_time, "end_ms": r.info.end_time} for r in sweep.runs]


def run_kind(kind: str, overrides: dict, workdir: Path, cpus: int, cold: bool) -> dict:
    preset = overrides.pop("preset")
    name = f"efficiency-{kind}"
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    config = load_preset(preset, {**overrides, "name": name, "tracking_uri": tracking_uri,
                                  "resources": {"num_cpus": cpus}})
    if not cold:  # a first, one-point sweep prepares the data and trains the probe (cached)
        warm = load_preset(preset, {**overrides, "name": f"{name}-warmup", "tracking_uri": tracking_uri,
                                    "resources": {"num_cpus": cpus},
                                    "grid": {**overrides.get("grid", GRID), "strategies": ["frequency_embedding"],
                                             "compressions": [16], "dims": [8]}})
        run_sweep(warm, workdir)
    started = time.time()
    result = run_sweep(config, workdir)
    wall = time.time() - started
    if result.state != "completed" or result.num_failed:
        raise SystemExit(f"{kind}: the sweep did not complete ({result.state}, {result.num_failed} failed)")
    trials = trial_seconds(tracking_uri, name, result.parent_run_id)
    own = sum(t["total_seconds"] for t in trials)
    first = min(t["start_ms"] for t in trials) / 1000 - started
    last = max(t["end_ms"] for t in trials) / 1000
    tune_phase = last - (started + first)
    fixed = (cpus * tune_phase - own) / len(trials)
    out = {"kind": kind, "preset": preset, "trials": len(trials), "cpus": cpus, "wall_seconds": wall,
           "trial_seconds": own, "median_trial_seconds": statistics.median(t["total_seconds"] for t in trials),
           "efficiency": own / cpus / wall, "before_first_trial_seconds": first,
           "tune_phase_seconds": tune_phase, "after_last_trial_seconds": started + wall - last,
           "fixed_seconds_per_trial": fixed, "target": TARGET}
    print(f"{kind:<10}{len(trials):>7}{own:>12.1f}{wall:>9.1f}{out['efficiency']:>12.2f}"
          f"{first:>9.1f}{tune_phase:>9.1f}{out['after_last_trial_seconds']:>9.1f}{fixed:>10.2f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movielens", help="the MovieLens-100K RecBole directory (ml-100k) for the small kind")
    parser.add_argument("--kinds", default="synthetic,small")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="count data preparation and the probes too")
    parser.add_argument("--keep", help="keep the MLflow store and Ray results in this directory")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local Ray
    workdir = Path(args.keep).resolve() if args.keep else Path(tempfile.mkdtemp(prefix="collide-efficiency-"))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.cold:
        shutil.rmtree(workdir / ".collide", ignore_errors=True)
    print(machine())
    print(f"{'kind':<10}{'trials':>7}{'trial-s':>12}{'wall-s':>9}{'efficiency':>12}"
          f"{'start':>9}{'tune':>9}{'end':>9}{'fixed/t':>10}")
    runs = []
    try:
        all_kinds = kinds(args.movielens)
        for kind in args.kinds.split(","):
            runs.append(run_kind(kind, all_kinds[kind], workdir, args.cpus, args.cold))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("RESULT " + json.dumps({"machine": machine(), "runs": runs}))


if __name__ == "__main__":
    main()
