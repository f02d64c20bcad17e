"""Throughput and peak memory of `prepare` on raw Criteo-format TSV (criteo source).

Generates N rows in Criteo Kaggle's raw layout (label, I1..I13, C1..C26; Zipf-like 8-digit
hex ids over the Kaggle cardinalities, Kaggle-like shares of empty fields, some negative
I2 values) into a temporary directory, then runs the whole `prepare` (parse, write,
random split, train-vocabulary counting, manifest) in a fresh subprocess, so the
generator's memory does not count. The child reports its wall time and its own peak RSS
(ru_maxrss, which includes the memory-mapped columns it touched) and CPU seconds (user +
sys, all threads). `load` is the 1-minute load average after the run: the machine may be
shared, and rows/s falls when other processes compete for the cores.

    python benchmarks/prepare_criteo.py                     # 2M rows
    python benchmarks/prepare_criteo.py --rows 2000000 10000000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sweep.datasets.synthetic import CRITEO_KAGGLE_CARDINALITIES  # noqa: E402
from sweep.hashing import mix64  # noqa: E402

# Approximate shares of empty fields in Criteo Kaggle train.txt.
DENSE_EMPTY = (0.45, 0.0, 0.21, 0.22, 0.03, 0.22, 0.04, 0.0, 0.04, 0.45, 0.04, 0.77, 0.22)
SPARSE_EMPTY = (0, 0, 0.03, 0.03, 0, 0.12, 0, 0, 0, 0, 0, 0.03, 0, 0, 0, 0.03, 0, 0, 0.44, 0.44,
                0.03, 0.76, 0, 0, 0.44, 0.44)
DENSE_WIDTH = 8  # room for '-' and 7 digits
HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _decimal_chars(values: np.ndarray, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Right-aligned ASCII of ints |v| < 10**7: (chars [n, DENSE_WIDTH], lengths [n])."""
    a = np.abs(values)
    powers = 10 ** np.arange(DENSE_WIDTH - 1, -1, -1, dtype=np.int64)
    chars = ((a[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    ndigits = 1 + (a[:, None] >= powers[None, :-1]).sum(axis=1)
    negative = values < 0
    chars[np.flatnonzero(negative), DENSE_WIDTH - ndigits[negative] - 1] = ord("-")
    lengths = np.where(empty, 0, ndigits + negative)
    return chars, lengths


def _hex_chars(ids: np.ndarray, empty: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    shifts = np.arange(28, -1, -4, dtype=np.uint64)
    chars = HEX[((ids[:, None] >> shifts) & np.uint64(15)).astype(np.intp)]
    return chars, np.where(empty, 0, 8)


def generate_rows(n: int, rng: np.random.Generator) -> bytes:
    """n raw Criteo lines as bytes (vectorised: a byte matrix with a keep mask)."""
    fields = [(np.where(rng.random(n) < 0.25, ord("1"), ord("0")).astype(np.uint8)[:, None],
               np.ones(n, np.int64))]
    for j in range(13):
        values = np.floor(np.exp(rng.normal(1.5 + 0.3 * j, 1.5, n))).astype(np.int64).clip(
            0, 9_999_999)
        if j == 1:  # I2 holds small negative values in the real data
            values = np.where(rng.random(n) < 0.05, -rng.integers(1, 4, n), values)
        fields.append(_decimal_chars(values, rng.random(n) < DENSE_EMPTY[j]))
    for j, cardinality in enumerate(CRITEO_KAGGLE_CARDINALITIES):
        # P(r) ~ 1/(r+1)
        ranks = np.exp(rng.random(n) * np.log(cardinality + 1.0)).astype(np.uint64) - np.uint64(1)
        ids = mix64(ranks, seed=j) & np.uint64(0xFFFFFFFF)
        fields.append(_hex_chars(ids, rng.random(n) < SPARSE_EMPTY[j]))
    widths = [chars.shape[1] for chars, _ in fields]
    matrix = np.full((n, sum(widths) + len(fields)), ord("\t"), dtype=np.uint8)
    keep = np.ones(matrix.shape, dtype=bool)
    col = 0
    for (chars, lengths), width in zip(fields, widths, strict=True):
        matrix[:, col:col + width] = chars
        keep[:, col:col + width] = np.arange(width)[None, :] >= (width - lengths)[:, None]
        col += width + 1  # the separator after the field
    matrix[:, -1] = ord("\n")
    return matrix[keep].tobytes()


def write_tsv(path: Path, num_rows: int, seed: int = 0, block: int = 250_000) -> None:
    rng = np.random.default_rng(seed)
    with open(path, "wb") as out:
        for start in range(0, num_rows, block):
            out.write(generate_rows(min(block, num_rows - start), rng))


def child(tsv: str, out_dir: str, chunk_rows: int) -> None:
    """Run in a fresh process: prepare, then print seconds, rows and own peak RSS as JSON."""
    from sweep.datasets.cache import prepare
    from sweep.datasets.criteo import CriteoSource

    source = CriteoSource.from_params(path=tsv, chunk_rows=chunk_rows, progress=False)
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    dataset = prepare(source, out_dir)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(json.dumps({"seconds": seconds, "cpu_seconds": cpu, "rows": dataset.num_rows,
                      "peak_rss_mib": after.ru_maxrss / 1024}))


def cpu_model() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next(line.split(":", 1)[1].strip() for line in out.splitlines()
                     if line.startswith("Model name"))
    except (OSError, subprocess.CalledProcessError, StopIteration):
        model = platform.processor() or "unknown"
    return f"{model}, {os.cpu_count()} CPUs"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[2_000_000], help="rows to generate "
                                                                                 "(one run each)")
    parser.add_argument("--chunk-rows", type=int, default=1 << 16, help="criteo chunk_rows")
    parser.add_argument("--tmp", type=Path, default=None, help="where to put the temporary data")
    parser.add_argument("--child", nargs=2, metavar=("TSV", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(*args.child, chunk_rows=args.chunk_rows)
        return 0
    print(f"machine: {cpu_model()}, python {platform.python_version()}, numpy {np.__version__}")
    print(f"{'rows':>12} {'MB':>8} {'prepare s':>10} {'rows/s':>10} {'CPU s':>7} "
          f"{'peak RSS MiB':>13} {'load':>5}")
    runs = []
    for num_rows in args.rows:
        with tempfile.TemporaryDirectory(dir=args.tmp, prefix="criteo-bench-") as tmp:
            tsv = Path(tmp) / "train.txt"
            write_tsv(tsv, num_rows)
            result = subprocess.run(
                [sys.executable, __file__, "--child", str(tsv), str(Path(tmp) / "prepared"),
                 "--chunk-rows", str(args.chunk_rows)],
                capture_output=True, text=True, check=True,
            )
            stats = json.loads(result.stdout.strip().splitlines()[-1])
            assert stats["rows"] == num_rows, stats
            print(f"{num_rows:>12,} {tsv.stat().st_size / 1e6:>8.0f} {stats['seconds']:>10.1f} "
                  f"{num_rows / stats['seconds']:>10,.0f} {stats['cpu_seconds']:>7.1f} "
                  f"{stats['peak_rss_mib']:>13,.0f} {os.getloadavg()[0]:>5.1f}", flush=True)
            runs.append({**stats, "tsv_bytes": tsv.stat().st_size, "load_1min": os.getloadavg()[0]})
    print("RESULT "
          + json.dumps({"machine": cpu_model(), "python": platform.python_version(), "runs": runs}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
