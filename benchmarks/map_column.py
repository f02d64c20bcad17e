"""`collide map` over a Parquet column as it grows: wall time and peak memory (max RSS).

Writes an export with one text feature (a `frequency` map of 100,000 string values, fitted on
Zipf counts) and Parquet files of 1M and 10M rows of those strings (plus 1% never seen), then
runs a real `collide map` process on each, one size after the other, and reports its wall time
and peak RSS (`ru_maxrss` of the finished process). The target: memory bounded in the rows,
10M / 1M <= 1.25.

    python benchmarks/map_column.py                 # 1M and 10M rows; about 2 minutes
    python benchmarks/map_column.py --rows 1000000,4000000

Ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from train_throughput import machine  # this script's folder is first on sys.path...

HERE = Path(__file__).resolve().parent
# ...where benchmarks/mappers.py would shadow the mappers package
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))  # run from a checkout, installed or not

from mappers import get_mapper, portable, save_bundle  # noqa: E402
from mappers.bundle import read_manifest  # noqa: E402
from sweep.datasets.base import id_encoding  # noqa: E402
from sweep.serving import export_feature, export_manifest  # noqa: E402

VOCAB = 100_000
ROW_GROUP = 1 << 20


def write_export(out: Path) -> list[str]:
    words = [f"item-{i:06d}" for i in range(VOCAB)]
    ids = portable.text_ids(words)
    order = np.argsort(ids)
    counts = np.random.default_rng(0).zipf(1.3, VOCAB).clip(max=10**6)
    mapper = get_mapper("frequency", num_rows=VOCAB // 16).fit(ids[order], counts[order])
    save_bundle(mapper, out / "bundles/00-item")
    feature = export_feature("item", "bundles/00-item", mapper,
                             read_manifest(out / "bundles/00-item")["digest"], vocab_size=VOCAB,
                             encoding=id_encoding("text"))
    (out / "export.json").write_text(json.dumps(export_manifest([feature])))
    return words


def write_column(path: Path, rows: int, words: list[str]) -> None:
    rng = np.random.default_rng(rows)
    vocab = pa.array(words + [f"new-{i}" for i in range(VOCAB // 100)])
    with pq.ParquetWriter(path, pa.schema([("item", pa.string())])) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            picks = (rng.zipf(1.3, n) - 1) % len(vocab)
            writer.write_table(pa.table({"item": vocab.take(pa.array(picks))}))


def run_map(export: Path, column: Path, out: Path) -> dict:
    """One `collide map` process: its wall time and max RSS (a fresh wrapper per run, so the
    children's max RSS is this run's)."""
    command = [sys.executable, "-m", "sweep.cli", "map", str(export), "--input", str(column),
               "--column", "item", "--out", str(out)]
    wrapper = ("import resource, subprocess, sys, time; t = time.perf_counter(); "
               f"done = subprocess.run({command!r}, capture_output=True, text=True); "
               "print(done.returncode, time.perf_counter() - t, "
               "resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.stderr.write(done.stderr[-2000:] if done.returncode else '')")
    done = subprocess.run([sys.executable, "-c", wrapper], capture_output=True, text=True,
                          check=True)
    code, wall, rss_kb = done.stdout.split()
    if code != "0":
        raise RuntimeError(f"collide map failed ({code}): {done.stderr}")
    return {"wall_seconds": float(wall), "peak_rss_gb": int(rss_kb) * 1024 / 1e9}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated sizes")
    args = parser.parse_args()
    sizes = [int(r) for r in args.rows.split(",")]
    print(machine(), flush=True)
    work = Path(tempfile.mkdtemp(prefix="collide-map-"))
    try:
        words = write_export(work / "export")
        results = []
        for rows in sizes:
            column = work / f"column-{rows}.parquet"
            write_column(column, rows, words)
            started = time.perf_counter()
            result = {"rows": rows, **run_map(work / "export", column, work / "out" /
                                             f"rows-{rows}.parquet")}
            result["values_per_second"] = rows / result["wall_seconds"]
            check = pq.read_table(work / "out" / f"rows-{rows}.parquet").num_rows
            assert check == rows, (check, rows)
            print(f"{rows:>12,} rows: {result['wall_seconds']:.1f} s "
                  f"({result['values_per_second']:,.0f} values/s), peak RSS "
                  f"{result['peak_rss_gb']:.2f} GB ({time.perf_counter() - started:.0f} s)",
                  flush=True)
            results.append(result)
            column.unlink()
        ratio = results[-1]["peak_rss_gb"] / results[0]["peak_rss_gb"]
        print(f"peak RSS {sizes[-1]:,} / {sizes[0]:,} rows: {ratio:.2f}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("RESULT " + json.dumps({"machine": machine(), "sizes": results, "rss_ratio": ratio}))


if __name__ == "__main__":
    main()
