"""The default table optimizer against torch's SparseAdam: same quality, side by side, 3 seeds.

`adam` (the default, `models.optim.RowSparseAdam`) and `sparse_adam_torch`
(`torch.optim.SparseAdam`, the default before) train the same trials with `run_trial` on
the default synthetic data (1M rows, 5 features, vocabularies 1e2..1e5), dim 16, up to 3
epochs with early stopping, 1 torch thread: val logloss (the epoch val selected), test
logloss and training samples/s per trial, and the differences.

    python benchmarks/optimizer_quality.py      # about 4 minutes on 2 cores

It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import replace
from pathlib import Path

from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from models import TrainConfig  # noqa: E402
from sweep.datasets import get_source, prepare  # noqa: E402
from sweep.trial import TrialConfig, run_trial  # noqa: E402

OPTIMIZERS = ("adam", "sparse_adam_torch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strategies", default="hash,frequency_embedding")
    parser.add_argument("--compression", type=float, default=16.0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    data = prepare(get_source("synthetic"), Path(".collide/prepared/synthetic-results"))
    runs = []
    print(f"{'strategy':<22}{'seed':>5}{'optimizer':>19}{'val_logloss':>13}{'test_logloss':>14}"
          f"{'samples/s':>11}")
    for strategy in args.strategies.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            base = TrialConfig(data=str(data.path.resolve()), strategy=strategy, seed=seed,
                               # `full` takes none: TrialConfig drops it
                               compression=args.compression,
                               train=TrainConfig(epochs=3, num_threads=args.threads),
                               cache_dir=str(Path(".collide/probes").resolve()))
            for optimizer in OPTIMIZERS:
                speeds: list[float] = []  # the epoch reports' training samples/s
                metrics = run_trial(replace(base, train=replace(base.train, optimizer=optimizer)),
                                    on_epoch=lambda epoch, entry, speeds=speeds: speeds.append(
                                        entry["samples_per_second"]))
                run = {"strategy": strategy, "seed": seed, "optimizer": optimizer,
                       "val_logloss": metrics["val_logloss"],
                       "test_logloss": metrics["test_logloss"],
                       "samples_per_second": statistics.median(speeds)}
                runs.append(run)
                print(f"{strategy:<22}{seed:>5}{optimizer:>19}{run['val_logloss']:>13.5f}"
                      f"{run['test_logloss']:>14.5f}{run['samples_per_second']:>11,.0f}",
                      flush=True)
    pairs = [(a, b) for a, b in zip(runs[::2], runs[1::2], strict=True)]
    summary = {
        "max_abs_val_logloss_diff": max(abs(a["val_logloss"] - b["val_logloss"]) for a, b in pairs),
        "mean_val_logloss_diff": statistics.fmean(a["val_logloss"] - b["val_logloss"] for a,
                                                  b in pairs),
        "speedup_median": statistics.median(a["samples_per_second"] / b["samples_per_second"] for a,
                                            b in pairs),
    }
    print(f"adam - sparse_adam_torch val logloss: mean {summary['mean_val_logloss_diff']:+.2e}, "
          f"max |diff| {summary['max_abs_val_logloss_diff']:.2e}; median speedup "
          f"{summary['speedup_median']:.2f}x")
    print("RESULT " + json.dumps({"runs": runs, **summary, "machine": machine()}))


if __name__ == "__main__":
    main()
