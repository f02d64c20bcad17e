"""`full_threshold` measured: hash at compression 4 on the example tables, by threshold and seed.

A feature whose train vocabulary is <= full_threshold keeps a full table. This runs
`run_trial` (no Ray, no MLflow) for thresholds 0, 16, 64, 256 x seeds, plus the full model,
on the census-like and click-like tables of benchmarks/example_tables.py, and writes a
Markdown table of features mapped, bytes and test logloss:

    python benchmarks/example_tables.py --out /tmp/example-tables
    python results/full_threshold.py --tables /tmp/example-tables --out results/full_threshold.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_table import machine  # noqa: E402

from models import TrainConfig  # noqa: E402
from sweep.datasets import get_source, prepare  # noqa: E402
from sweep.trial import ModelConfig, TrialConfig, run_trial  # noqa: E402

THRESHOLDS = (0, 16, 64, 256)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", type=Path, required=True, help="output dir of "
                                                                   "benchmarks/example_tables.py")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--compression", type=float, default=4.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    sections = []
    for table in ("census", "clicks"):
        source = get_source("table", path=str(args.tables / f"{table}.csv"),
                            schema_file=str(args.tables / f"{table}.yaml"))
        data = prepare(source, Path(".collide/prepared") / f"{table}-full-threshold")
        rows = []
        for threshold in (None, *THRESHOLDS):  # None: the full model
            for seed in seeds:
                config = TrialConfig(
                    data=str(data.path.resolve()), strategy="full" if threshold is None else "hash",
                    compression=None if threshold is None else args.compression, seed=seed,
                    model=ModelConfig(full_threshold=threshold or 0),
                    train=TrainConfig(num_threads=args.threads),
                    cache_dir=str(Path(".collide/probes").resolve()))
                started = time.perf_counter()
                metrics = run_trial(config)
                print(f"{table} threshold {threshold} seed {seed}: mapped "
                      f"{metrics['features_mapped']}, test_logloss {metrics['test_logloss']:.5f} "
                      f"({time.perf_counter() - started:.1f} s)", flush=True)
                rows.append({"threshold": threshold, **metrics})
        sections.append(render_table(table, data.manifest, rows))
    command = ("python results/full_threshold.py "
               + " ".join(sys.argv[1:]).replace(str(args.tables), "DIR"))
    header = [f"# full_threshold: hash at compression {args.compression:g} on the example tables",
              "",
              f"Regenerate: `python benchmarks/example_tables.py --out DIR` then `{command}`", "",
              f"Machine: {machine()}, torch threads {args.threads}. Dim 16, up to 3 epochs with "
              "early stopping; "
              f"seeds {args.seeds} (mapper, model init, shuffling). Mean ± std over seeds.", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + sections))
    print(f"wrote {args.out}")
    return 0


def render_table(table: str, manifest: dict, rows: list[dict]) -> str:
    vocabs = sorted(f["vocab_size"] for f in manifest["features"])
    lines = [f"## {table}: {manifest['num_rows']:,} rows, {len(vocabs)} features, train "
             f"vocabularies {vocabs}", "",
             f"Constant predictor test logloss {rows[0]['constant_test_logloss']:.5f}.", "",
             "| model | features mapped | total_bytes | test_logloss | test_auc |",
             "|---|---|---|---|---|"]
    for threshold in dict.fromkeys(r["threshold"] for r in rows):
        group = [r for r in rows if r["threshold"] == threshold]
        name = "full" if threshold is None else f"hash, full_threshold {threshold}"
        loss = [r["test_logloss"] for r in group]
        auc = [r["test_auc"] for r in group]
        spread = statistics.stdev(loss) if len(loss) > 1 else 0.0
        lines.append(f"| {name} | {group[0]['features_mapped']} | {group[0]['total_bytes']:,} | "
                     f"{statistics.fmean(loss):.4f} ± {spread:.4f} | {statistics.fmean(auc):.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
