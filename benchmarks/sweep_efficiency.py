"""Sweep parallel efficiency: how well a 16-trial grid keeps 2 CPUs busy.

    efficiency = (sum of the trials' own seconds / slots) / sweep wall time

where slots is the number of trials that can run at once: the CPUs, or with
`--gpus-per-trial` the GPU shares of one card when fewer.

A trial's own seconds are its `total_seconds` metric: `run_trial` from loading the data to
the written bundles. The wall time is that of a whole `collide sweep --config` process, as
a user runs it: Python's start, data preparation, the probes, Ray's start, every trial,
MLflow and the frontier. The data is prepared and the probes trained by a first one-point
sweep before the clock starts (as on any later sweep of the same data), so the figure
measures the sweep machinery, not the one-off preparation; `--cold` counts them too.

Two kinds of trial, each a 16-point grid (4 strategies x 2 compressions x 2 dims, seed 0):

- `synthetic`: the `quick` preset's data (1M rows, 5 features), 2 epochs at batch 2048:
  trials of several seconds, as in the `quick` preset.
- `small`: trials of a second or two, as in the `movielens` preset: the MovieLens-100K
  preset itself when `--movielens DIR` gives its RecBole directory (e.g. ml-100k),
  otherwise synthetic data of the same size (100k rows).

    python benchmarks/sweep_efficiency.py                      # about 4 minutes on 2 cores
    python benchmarks/sweep_efficiency.py --movielens DATA/ml-100k
    python benchmarks/sweep_efficiency.py --movielens DATA/ml-100k --kinds movielens   # the whole
    preset

It prints, per kind, the efficiency, the wall time split into before the first trial,
the Tune phase and after the last trial, the fixed cost per trial (the Tune phase's
CPU-seconds not spent inside a trial, per trial) and the efficiency within the Tune phase;
`--kinds movielens` runs the whole `movielens` preset (114 trials). It ends with one line
`RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from mlflow.tracking import MlflowClient  # noqa: E402

from sweep.config import merge, preset_values  # noqa: E402
from sweep.tracking.records import find_sweep  # noqa: E402

TARGET = 0.85
GRID = {"strategies": ["hash", "frequency", "qr", "frequency_embedding"], "compressions": [4, 16],
        "dims": [8, 16],
        "seeds": [0]}
SMALL_SYNTHETIC = {"num_rows": 100_000, "vocab_sizes": [1682, 943, 21, 7, 2], "num_dense": 2}


def kinds(movielens: str | None) -> dict[str, dict]:
    """The two sweep configs (as preset overrides) by kind."""
    small = ({"preset": "movielens", "data": {"params": {"path": str(Path(movielens).resolve())}},
              "grid": {**GRID, "compressions": [2, 8]}} if movielens else
             {"preset": "quick", "data": {"params": {"preset": "default", **SMALL_SYNTHETIC}},
              "grid": {**GRID, "compressions": [2, 8]}, "model": {"full_threshold": 16},
              "train": {"epochs": 5, "batch_size": 1024}})
    out = {"synthetic": {"preset": "quick", "grid": GRID}, "small": small}
    if movielens:  # the whole preset: 7 strategies x 3 compressions x 2 dims x 3 seeds, 114 trials
        out["movielens"] = {"preset": "movielens",
                            "data": {"params": {"path": str(Path(movielens).resolve())}}}
    return out


def collide_sweep(values: dict, workdir: Path, name: str) -> float:
    """`collide sweep --config` in a fresh process, as a user runs it; returns its wall seconds."""
    path = workdir / f"{name}.yaml"
    path.write_text(yaml.safe_dump(values))
    started = time.time()
    done = subprocess.run([sys.executable, "-m", "sweep.cli", "sweep", "--config", str(path)],
                          cwd=workdir,
                          capture_output=True, text=True)
    wall = time.time() - started
    (workdir / f"{name}.log").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise SystemExit(f"{name}: collide sweep exited {done.returncode}; see "
                         f"{workdir / f'{name}.log'}\n"
                         + (done.stdout + done.stderr)[-2000:])
    return wall


def run_kind(kind: str, overrides: dict, workdir: Path, cpus: int, cold: bool, epochs: int
             | None, gpus_per_trial: float = 0.0) -> dict:
    values = merge(preset_values(overrides.pop("preset")), overrides)
    if epochs:
        values = merge(values, {"train": {"epochs": epochs}})
    name = f"efficiency-{kind}"
    tracking_uri = f"sqlite:///{workdir / 'mlflow.db'}"
    values = merge(values,
                   {"name": name, "tracking_uri": tracking_uri,
                    "resources": {"num_cpus": cpus, "gpus_per_trial": gpus_per_trial}})
    # trials that can run at once: one per CPU, or fewer when each takes a share of one GPU
    slots = min(cpus, int(1 / gpus_per_trial)) if gpus_per_trial else cpus
    if not cold:  # a first, one-point sweep prepares the data and trains the probe (cached)
        collide_sweep(merge(values, {"name": f"{name}-warmup", "grid": {
            "strategies": ["frequency_embedding"], "compressions": [16], "dims": [8]}}), workdir,
                      f"{name}-warmup")
    started = time.time()
    wall = collide_sweep(values, workdir, name)
    client = MlflowClient(tracking_uri)
    sweep = find_sweep(client, name)
    trials = [{"total_seconds": r.data.metrics["total_seconds"], "start": r.info.start_time / 1000,
               "end": r.info.end_time / 1000} for r in sweep.runs]
    startup = client.get_run(sweep.parent_run_id).data.metrics
    own = sum(t["total_seconds"] for t in trials)
    first = min(t["start"] for t in trials) - started
    last = max(t["end"] for t in trials)
    tune_phase = last - (started + first)
    fixed = (slots * tune_phase - own) / len(trials)
    out = {"kind": kind, "trials": len(trials), "cpus": cpus, "gpus_per_trial": gpus_per_trial,
           "slots": slots, "wall_seconds": wall, "trial_seconds": own,
           "median_trial_seconds": statistics.median(t["total_seconds"] for t in trials),
           "efficiency": own / slots / wall, "tune_phase_efficiency": own / slots / tune_phase,
           "before_first_trial_seconds": first,
           "startup": {k: v for k, v in startup.items() if "startup" in k},
           "tune_phase_seconds": tune_phase, "after_last_trial_seconds": started + wall - last,
           "fixed_seconds_per_trial": fixed, "target": TARGET}
    print(f"{kind:<10}{len(trials):>7}{own:>12.1f}{wall:>9.1f}{out['efficiency']:>12.2f}"
          f"{first:>9.1f}{tune_phase:>9.1f}{out['after_last_trial_seconds']:>9.1f}{fixed:>10.2f}"
          f"{out['tune_phase_efficiency']:>8.2f}", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--movielens", help="the MovieLens-100K RecBole directory (ml-100k) for "
                                            "the small kind")
    parser.add_argument("--kinds", default="synthetic,small")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--cold", action="store_true", help="count data preparation and the probes "
                                                            "too")
    parser.add_argument("--epochs", type=int, help="train this many epochs instead of the preset's "
                                                   "(a short check)")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0,
                        help="a GPU fraction per trial: trials train on CUDA, and as many run at "
                             "once as the card's shares and the CPUs allow (the efficiency's "
                             "slots)")
    parser.add_argument("--keep", help="keep the MLflow store and Ray results in this directory")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local Ray
    workdir = (Path(args.keep).resolve() if args.keep
               else Path(tempfile.mkdtemp(prefix="collide-efficiency-")))
    workdir.mkdir(parents=True, exist_ok=True)
    if args.cold:
        shutil.rmtree(workdir / ".collide", ignore_errors=True)
    print(machine())
    print(f"{'kind':<10}{'trials':>7}{'trial-s':>12}{'wall-s':>9}{'efficiency':>12}"
          f"{'start':>9}{'tune':>9}{'end':>9}{'fixed/t':>10}{'in tune':>8}")
    runs = []
    try:
        all_kinds = kinds(args.movielens)
        for kind in args.kinds.split(","):
            runs.append(run_kind(kind, all_kinds[kind], workdir, args.cpus, args.cold, args.epochs,
                                 args.gpus_per_trial))
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print("RESULT " + json.dumps({"machine": machine(), "runs": runs}))


if __name__ == "__main__":
    main()
