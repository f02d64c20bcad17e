"""Optuna against the full grid on the `quick` preset: the frontier's hypervolume per trial spent.

The `quick` grid (7 strategies x 3 compressions x 2 dims, seed 0: 38 trials, `full` once
per dim) runs in full, then `--search optuna` runs with a budget of 40% of its trials
(15 configurations, 1 seed each), both through `run_sweep`, in one process, on the same
prepared data and probes.

Hypervolume: the area dominated by a frontier in the plane (log10 total_bytes,
val_logloss), both minimised, up to a reference point at the worst value of either axis
over both sweeps plus 10% of that axis's range. It is reported as a share of the grid's.

A single Optuna run is one draw of a stochastic search, so the same searcher
(`sweep.tune.search.ConfigurationSearch`) is also replayed against the grid's own results
(every configuration's val_logloss and size, as the grid measured them) for sampler seeds
0-19: the share of the grid's hypervolume each budget reaches, as median and worst case.
The baseline is no sampler at all: as many configurations drawn at random from the grid's
results (1,000 draws).

    python benchmarks/search_efficiency.py         # about 6 minutes on 2 cores

It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from sweep.config import load_preset  # noqa: E402
from sweep.tune.runner import run_sweep  # noqa: E402
from sweep.tune.search import ConfigurationSearch  # noqa: E402

TARGET_SHARE, TARGET_TRIALS = 0.90, 0.40
REPLAY_SEEDS = 20
RANDOM_DRAWS = 1000


def hypervolume(points: list[tuple[float, float]], reference: tuple[float, float]) -> float:
    """Area dominated by `points` (x, y, both minimised) inside the box up to `reference`."""
    area, best_y = 0.0, reference[1]
    for x, y in sorted(points):
        if x < reference[0] and y < best_y:
            area += (reference[0] - x) * (best_y - y)
            best_y = y
    return area


def objectives(rows: list[dict]) -> list[tuple[float, float]]:
    return [(math.log10(r["total_bytes"]), r["val_logloss"]) for r in rows
            if math.isfinite(r.get("val_logloss", math.nan))]


def reference_point(points: list[tuple[float, float]]) -> tuple[float, float]:
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    return max(xs) + 0.1 * (max(xs) - min(xs)), max(ys) + 0.1 * (max(ys) - min(ys))


def replay(config, table: dict, budget: int, sampler_seed: int) -> list[tuple[float, float]]:
    """The searcher driven by the grid's own results: the objectives of the configurations it
    picks."""
    g = config.grid
    search = ConfigurationSearch(g.strategies, g.compressions, g.dims, g.seeds, budget,
                                 sampler_seed=sampler_seed)
    picked, number = [], 0
    while True:
        suggestion = search.suggest(f"t{number}")
        if suggestion == ConfigurationSearch.FINISHED or suggestion is None:
            return picked
        point = suggestion["point"]
        row = table[(point["strategy"], point["compression"], point["dim"], point["seed"])]
        search.on_trial_complete(f"t{number}", row)
        picked.append((math.log10(row["total_bytes"]), row["val_logloss"]))
        number += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--set-epochs", type=int, help="train this many epochs instead of the "
                                                       "preset's (tests)")
    parser.add_argument("--data-rows", type=int, help="synthetic rows instead of the preset's "
                                                      "(tests)")
    parser.add_argument("--dims", help="comma-separated dims instead of the preset's (tests: a "
                                       "smaller grid)")
    parser.add_argument("--keep", help="keep the MLflow store and Ray results in this directory")
    args = parser.parse_args()
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local Ray
    workdir = (Path(args.keep).resolve() if args.keep
               else Path(tempfile.mkdtemp(prefix="collide-search-")))
    workdir.mkdir(parents=True, exist_ok=True)
    overrides: dict = {"tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
                       "resources": {"num_cpus": args.cpus}}
    if args.set_epochs:
        overrides["train"] = {"epochs": args.set_epochs}
    if args.data_rows:
        overrides["data"] = {"params": {"preset": "default", "num_rows": args.data_rows}}
    if args.dims:
        overrides["grid"] = {"dims": [int(d) for d in args.dims.split(",")]}
    print(machine())
    try:
        grid_config = load_preset(args.preset, {**overrides, "name": "search-grid"})
        started = time.time()
        grid = run_sweep(grid_config, workdir)
        grid_seconds = time.time() - started
        budget = int(TARGET_TRIALS * len(grid.trials) // len(grid_config.grid.seeds))
        optuna_config = load_preset(args.preset,
                                    {**overrides, "name": "search-optuna", "search": "optuna",
                                                  "num_samples": budget})
        started = time.time()
        optuna = run_sweep(optuna_config, workdir)
        optuna_seconds = time.time() - started
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    for name, result in (("grid", grid), ("optuna", optuna)):
        if result.state != "completed" or result.num_failed:
            raise SystemExit(f"the {name} sweep did not complete ({result.state}, "
                             f"{result.num_failed} failed)")
    grid_points, optuna_points = objectives(grid.trials), objectives(optuna.trials)
    reference = reference_point(grid_points + optuna_points)
    grid_hv = hypervolume(grid_points, reference)
    share = hypervolume(optuna_points, reference) / grid_hv
    table = {(r["strategy"], None if r["strategy"] == "full" else float(r["compression"]),
              int(r["dim"]),
              int(r["seed"])): r for r in grid.trials}
    replays = [hypervolume(replay(grid_config, table, budget, seed), reference) / grid_hv
               for seed in range(REPLAY_SEEDS)]
    rows = list(table.values())  # the baseline: as many configurations drawn at random, no sampler
    randoms = [hypervolume(objectives([rows[i] for i in np.random.default_rng(seed).choice(
        len(rows), size=len(optuna.trials), replace=False)]), reference) / grid_hv
               for seed in range(RANDOM_DRAWS)]
    trials_share = len(optuna.trials) / len(grid.trials)
    out = {"preset": args.preset, "grid_trials": len(grid.trials), "grid_seconds": grid_seconds,
           "optuna_trials": len(optuna.trials), "optuna_seconds": optuna_seconds,
           "trials_share": trials_share,
           "hypervolume_share": share, "replay_median_share": statistics.median(replays),
           "replay_worst_share": min(replays), "replay_shares": replays,
           "random_median_share": statistics.median(randoms), "random_worst_share": min(randoms),
           "random_p10_share": float(np.percentile(randoms, 10)), "reference": reference,
           "target": {"hypervolume_share": TARGET_SHARE, "trials_share": TARGET_TRIALS},
           "target_met": share >= TARGET_SHARE and trials_share <= TARGET_TRIALS}
    print(f"grid: {len(grid.trials)} trials, {grid_seconds:.0f} s; optuna: {len(optuna.trials)} "
          f"trials ({trials_share:.0%}), {optuna_seconds:.0f} s")
    print(f"hypervolume of optuna's frontier: {share:.3f} of the grid's (target >= "
          f"{TARGET_SHARE}); replayed over {REPLAY_SEEDS} sampler seeds: median "
          f"{out['replay_median_share']:.3f}, worst {min(replays):.3f}")
    print(f"the same number of configurations drawn at random ({RANDOM_DRAWS} draws): median "
          f"{out['random_median_share']:.3f}, 10th percentile {out['random_p10_share']:.3f}, worst "
          f"{min(randoms):.3f}")
    print("RESULT " + json.dumps({"machine": machine(), **out}))


if __name__ == "__main__":
    main()
