"""What each strategy costs a trial in training time, side by side in one run: `hash` against
`mixed_dim` (its masked, projected blocks) and `mch` (its online map, moved every 16 batches).

Each strategy trains one epoch of the same synthetic data (`--rows`, 300k; vocabularies 1e3,
1e4, 5e4 and 100) at compression 16, dim 16, batch 2048, 1 torch thread, `--repeats` times in
turn (hash, mixed_dim, mch, hash, ...); it prints the median training seconds per strategy and
its ratio to hash's median.

    python benchmarks/strategy_cost.py          # about 1 minute

It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from train_throughput import machine  # this script's folder is first on sys.path

# ... and must leave it before `sweep` imports `mappers`, which benchmarks/mappers.py would shadow
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

from models import TrainConfig  # noqa: E402
from sweep.datasets import get_source, prepare  # noqa: E402
from sweep.trial import TrialConfig, run_trial  # noqa: E402

STRATEGIES = ("hash", "mixed_dim", "mch")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare(get_source("synthetic", num_rows=args.rows,
                                  vocab_sizes=(1000, 10_000, 50_000, 100), num_dense=4),
                       Path(tmp) / "data")
        seconds: dict[str, list[float]] = {s: [] for s in STRATEGIES}
        for _ in range(args.repeats):
            for strategy in STRATEGIES:
                config = TrialConfig(data=str(data.path), strategy=strategy, compression=16.0,
                                     dim=16, precisions=("fp32",), save_tables=False,
                                     train=TrainConfig(epochs=1, batch_size=2048, num_threads=1),
                                     cache_dir=str(Path(tmp) / "probes"))
                seconds[strategy].append(run_trial(config)["train_seconds"])
    median = {s: statistics.median(v) for s, v in seconds.items()}
    print(f"machine: {machine()}")
    print(f"{'strategy':<10} {'median train s':>15} {'vs hash':>8}   runs")
    for strategy in STRATEGIES:
        runs = ", ".join(f"{v:.2f}" for v in seconds[strategy])
        print(f"{strategy:<10} {median[strategy]:>15.2f} {median[strategy] / median['hash']:>7.2f}x"
              f"   {runs}")
    print("RESULT " + json.dumps({"machine": machine(), "rows": args.rows, "seconds": seconds,
                                  "ratio_to_hash": {s: median[s] / median["hash"]
                                                    for s in STRATEGIES}}))


if __name__ == "__main__":
    main()
