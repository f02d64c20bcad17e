"""Table optimizers against each other: validation quality and speed, side by side, 3 seeds.

Each candidate trains the same trials with `run_trial` on the default synthetic data (1M rows,
5 features, vocabularies 1e2..1e5) at `--compression` (16), dim 16, up to 3 epochs with early
stopping, 1 torch thread; with `--movielens DIR` also on MovieLens-100K as the `movielens`
preset trains it (compression 8, up to 5 epochs, batch 1024, features of at most 64 ids
kept full). Per trial: val logloss (the epoch val selected), test logloss and training
samples/s. A candidate is an optimizer, or `OPTIMIZER@LR` for its tables' learning rate
(`embedding_lr`). Every candidate is compared with the first: the mean paired difference in
val logloss with a 95% t interval over the (data, strategy, seed) pairs, and the median
ratio of samples/s.

    python benchmarks/optimizer_quality.py      # adam and sparse_adam_torch; about 4 minutes
    python benchmarks/optimizer_quality.py --optimizers adam,rowwise_adagrad@0.01,\
        rowwise_adagrad@0.03 --movielens DATA/ml-100k

It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from models import TrainConfig  # noqa: E402
from sweep.datasets import get_source, prepare  # noqa: E402
from sweep.trial import ModelConfig, TrialConfig, run_trial  # noqa: E402

T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
       10: 2.23, 11: 2.20, 12: 2.18, 13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11}


def candidate(text: str) -> tuple[str, float | None]:
    """(optimizer, embedding_lr) of `OPTIMIZER` or `OPTIMIZER@LR`."""
    name, _, lr = text.partition("@")
    return name, (float(lr) if lr else None)


def data_sets(movielens: str | None, compression: float) -> list[tuple[str, Path, dict]]:
    """(name, prepared directory, TrialConfig fields) per data set."""
    sets = [("synthetic", prepare(get_source("synthetic"),
                                  Path(".collide/prepared/synthetic-results")).path,
             {"compression": compression, "train": TrainConfig(epochs=3)})]
    if movielens:
        source = get_source("recbole", path=str(Path(movielens).resolve()))
        prepared = prepare(source, Path(".collide/prepared/movielens-quality"))
        sets.append(("movielens", prepared.path,
                     {"compression": 8.0, "model": ModelConfig(full_threshold=64),
                      "train": TrainConfig(epochs=5, batch_size=1024)}))
    return sets


def compare(runs: list[dict], reference: str, other: str) -> dict:
    """`other` against `reference`: paired val logloss differences and speed ratios."""
    key = ("data", "strategy", "seed")
    ref = {tuple(r[k] for k in key): r for r in runs if r["candidate"] == reference}
    pairs = [(r, ref[tuple(r[k] for k in key)]) for r in runs if r["candidate"] == other]
    diffs = [a["val_logloss"] - b["val_logloss"] for a, b in pairs]
    mean = statistics.fmean(diffs)
    half = (T95.get(len(diffs) - 1, 2.0) * statistics.stdev(diffs) / math.sqrt(len(diffs))
            if len(diffs) > 1 else math.nan)
    return {"candidate": other, "reference": reference, "pairs": len(diffs),
            "mean_val_logloss_diff": mean, "ci95": [mean - half, mean + half],
            "max_abs_val_logloss_diff": max(abs(d) for d in diffs),
            "speedup_median": statistics.median(a["samples_per_second"] / b["samples_per_second"]
                                                for a, b in pairs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--optimizers", default="adam,sparse_adam_torch",
                        help="candidates, the first the reference: OPTIMIZER or OPTIMIZER@LR")
    parser.add_argument("--strategies", default="hash,frequency_embedding")
    parser.add_argument("--compression", type=float, default=16.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--movielens", help="the MovieLens-100K RecBole directory (ml-100k)")
    args = parser.parse_args()
    candidates = args.optimizers.split(",")
    runs = []
    print(f"{'data':<10}{'strategy':<21}{'seed':>5}{'candidate':>24}{'val_logloss':>13}"
          f"{'test_logloss':>14}{'samples/s':>11}")
    for name, path, fields in data_sets(args.movielens, args.compression):
        for strategy in args.strategies.split(","):
            for seed in (int(s) for s in args.seeds.split(",")):
                base = TrialConfig(data=str(path.resolve()), strategy=strategy, seed=seed,
                                   cache_dir=str(Path(".collide/probes").resolve()),
                                   **{**fields, "train": replace(fields["train"],
                                                                 num_threads=args.threads)})
                for label in candidates:
                    optimizer, lr = candidate(label)
                    speeds: list[float] = []  # the epoch reports' training samples/s
                    metrics = run_trial(
                        replace(base, train=replace(base.train, optimizer=optimizer,
                                                    embedding_lr=lr)),
                        on_epoch=lambda epoch, entry, speeds=speeds: speeds.append(
                            entry["samples_per_second"]))
                    run = {"data": name, "strategy": strategy, "seed": seed, "candidate": label,
                           "optimizer": optimizer, "embedding_lr": lr,
                           "val_logloss": metrics["val_logloss"],
                           "test_logloss": metrics["test_logloss"],
                           "epochs_run": metrics["epochs_run"],
                           "samples_per_second": statistics.median(speeds)}
                    runs.append(run)
                    print(f"{name:<10}{strategy:<21}{seed:>5}{label:>24}"
                          f"{run['val_logloss']:>13.5f}{run['test_logloss']:>14.5f}"
                          f"{run['samples_per_second']:>11,.0f}", flush=True)
    comparisons = [compare(runs, candidates[0], other) for other in candidates[1:]]
    for c in comparisons:
        print(f"{c['candidate']} - {c['reference']} val logloss: mean "
              f"{c['mean_val_logloss_diff']:+.5f} (95% CI {c['ci95'][0]:+.5f} .. "
              f"{c['ci95'][1]:+.5f}, {c['pairs']} pairs), max |diff| "
              f"{c['max_abs_val_logloss_diff']:.5f}; median speed ratio "
              f"{c['speedup_median']:.2f}x")
    print("RESULT " + json.dumps({"runs": runs, "comparisons": comparisons,
                                  "machine": machine()}))


if __name__ == "__main__":
    main()
