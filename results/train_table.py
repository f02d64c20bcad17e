"""Train strategies x seeds with `run_trial` (no Ray, no MLflow) and write a Markdown table.

Regenerates the tables in results/README.md, e.g.:

    python results/train_table.py --source synthetic --compression 16 \
        --strategies full,hash,frequency_embedding --seeds 0,1,2 --out results/synthetic_c16.md
    python results/train_table.py --source recbole --path path/to/ml-100k --compression 8 \
        --strategies full,hash,frequency_embedding --seeds 0,1,2 --full-threshold 64 \
        --out results/movielens_c8.md
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import yaml

from models import TrainConfig
from sweep.datasets import get_source, prepare
from sweep.trial import ModelConfig, TrialConfig, run_trial

COLUMNS = ("test_logloss", "test_auc", "test_ne", "signal_captured", "total_bytes",
           "compression_ratio",
           "train_seconds")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default="synthetic")
    parser.add_argument("--path", default=None, help="input path for recbole / criteo / table")
    parser.add_argument("--strategies", default="full,hash,frequency_embedding")
    parser.add_argument("--compression", type=float, default=16.0)
    parser.add_argument("--dim", type=int, default=16)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--full-threshold", type=int, default=256)
    parser.add_argument("--param", action="append", default=[], metavar="STRATEGY.KEY=VALUE",
                        help="mapper param, e.g. frequency_embedding.hot_fraction=0.25")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    params: dict[str, dict] = {}
    for item in args.param:
        key, value = item.split("=", 1)
        strategy, name = key.split(".", 1)
        params.setdefault(strategy, {})[name] = yaml.safe_load(value)
    source = get_source(args.source, **({"path": args.path} if args.path else {}))
    data = prepare(source, Path(".collide/prepared") / f"{source.name}-results")
    rows = []
    for strategy in args.strategies.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            config = TrialConfig(
                data=str(data.path.resolve()), strategy=strategy,
                # `full` takes no compression: dropped
                compression=args.compression, dim=args.dim, seed=seed,
                mapper_params=params.get(strategy, {}),
                model=ModelConfig(full_threshold=args.full_threshold),
                train=TrainConfig(epochs=args.epochs, num_threads=args.threads),
                cache_dir=str(Path(".collide/probes").resolve()))
            started = time.perf_counter()
            metrics = run_trial(config)
            print(f"{strategy} seed {seed}: test_logloss {metrics['test_logloss']:.5f} "
                  f"({time.perf_counter() - started:.1f} s)", flush=True)
            rows.append(metrics)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(render(rows, args, data.manifest))
    print(f"wrote {args.out}")
    return 0


def render(rows: list[dict], args: argparse.Namespace, manifest: dict) -> str:
    command = "python results/train_table.py " + " ".join(sys.argv[1:])
    lines = [
        f"# {args.source}: {args.strategies} at compression {args.compression:g}, dim {args.dim}",
        "",
        f"Regenerate: `{command}`",
        "",
        f"Data: {manifest['num_rows']:,} rows (train {manifest['split_sizes']['train']:,}, val "
        f"{manifest['split_sizes']['val']:,}, test {manifest['split_sizes']['test']:,}), "
        f"fingerprint {manifest['fingerprint'][:12]}. Machine: {machine()}, torch threads "
        f"{args.threads}. Seeds vary the mapper, model and probe; the data is fixed.",
        "",
        "| strategy | seed | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = [_cell(row.get(c)) for c in COLUMNS]
        lines.append(f"| {row['strategy']} | {row['seed']} | " + " | ".join(cells) + " |")
    lines += ["", "Mean over seeds:", "", "| strategy | test_logloss | test_auc | test_ne | "
                                          "total_bytes |",
              "|---|---|---|---|---|"]
    for strategy in dict.fromkeys(r["strategy"] for r in rows):
        group = [r for r in rows if r["strategy"] == strategy]
        mean = {c: statistics.fmean(r[c] for r in group)
                for c in ("test_logloss", "test_auc", "test_ne")}
        lines.append(f"| {strategy} | {mean['test_logloss']:.5f} | {mean['test_auc']:.4f} | "
                     f"{mean['test_ne']:.4f} | {group[0]['total_bytes']:,} |")
    return "\n".join(lines) + "\n"


def machine() -> str:
    """CPU model and core count, e.g. 'AMD EPYC 9R14, 2 cores'."""
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.5f}" if abs(value) < 100 else f"{value:,.0f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
