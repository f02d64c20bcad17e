"""The learned mappers at scale: fit time, transform time, peak memory and count-weighted
inertia of `embedding` and `frequency_embedding` (min_count 1: every id is clustered).

    python benchmarks/mapper_scale.py            # both cases, 4-6 minutes on 2 cores
    python benchmarks/mapper_scale.py --quick    # 2*10^4 ids -> 2,048 rows, a smoke test

Cases (issue 11, part 3):

- case1: 10^6 ids x 16 dims -> 65,536 rows;
- case2: 10^7 ids x 16 dims -> 2^20 rows, with the targets fit + transform <= 120 s wall
  and peak RSS <= 6 GB (10^9 bytes; the input arrays, the interpreter and its libraries
  included).

Each (case, strategy) runs in a fresh subprocess, so every peak RSS (VmHWM of that process,
read right after transform) is its own. The process generates the input, fits
`get_mapper(strategy, num_rows=rows, seed=0, min_count=1)` on it, transforms the whole
vocabulary, and computes from those rows, in chunks of CHUNK ids:

- inertia: sum over ids of count * ||embedding - centroid of its row||^2, the centroid
  being the count-weighted mean of the row's ids (`mappers.weighted_inertia`, in float64,
  without [V, d] float64 temporaries);
- rows used: how many of the rows hold at least one training id.

Input (`make_vocabulary`, deterministic for a seed; 8 + 8 + 4 * 16 = 80 bytes per id, 0.8 GB
at 10^7, the embeddings generated in chunks so the temporaries stay ~0.25 GB):

- ids: V unique random int64 ids, sorted (as a vocabulary is stored);
- counts: Zipf-like, count = max(1, floor(V / rank^1.05)) with rank a random permutation
  of 1..V independent of the embeddings (at 10^7: the top id seen 10^7 times, 76% of the
  ids once, 1.16 * 10^8 accesses in all);
- embeddings: float32 [V, 16], a Gaussian mixture: one of 4,096 centres ~ N(0, 0.1^2 I)
  drawn uniformly per id, plus N(0, 0.03^2 I) noise (the shape of the probe embeddings in
  benchmarks/mappers.py).

It prints the machine (CPU model, CPUs, Python, numpy, scikit-learn, UTC date, load
average), one table row per run, and ends with one line `RESULT {json}`: every figure, the
targets, and whether each is met.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from machine_info import cpu_model  # this script's folder is first on sys.path...

# ...and benchmarks/mappers.py would shadow `mappers`
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))  # run from a checkout, installed or not

from mappers import get_mapper  # noqa: E402

DIM = 16
CENTRES = 4096
CHUNK = 1 << 18  # ids per chunk when generating and when computing the inertia
STRATEGIES = ("embedding", "frequency_embedding")
CASES = {  # name: (ids, rows)
    "case1": (10**6, 65_536),
    "case2": (10**7, 2**20),
}
QUICK_CASES = {"quick": (20_000, 2048)}
TARGETS = {"case2": {"wall_s": 120.0, "peak_rss_bytes": 6e9}}


def make_vocabulary(num_ids: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids int64 sorted unique, counts int64, embeddings float32 [V, DIM]): see the docstring."""
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(-(2**63), 2**63 - 1, size=num_ids, dtype=np.int64))
    while ids.size < num_ids:  # a collision in 2^64: draw the missing ones
        extra = rng.integers(-(2**63), 2**63 - 1, size=num_ids - ids.size, dtype=np.int64)
        ids = np.unique(np.concatenate([ids, extra]))
    rank = rng.permutation(num_ids) + 1.0
    counts = np.maximum(1, np.floor(num_ids / rank**1.05)).astype(np.int64)
    del rank
    centres = rng.normal(0.0, 0.1, size=(CENTRES, DIM))
    embeddings = np.empty((num_ids, DIM), dtype=np.float32)
    for start in range(0, num_ids, CHUNK):
        m = min(CHUNK, num_ids - start)
        noise = rng.normal(0.0, 0.03, size=(m, DIM))
        embeddings[start : start + m] = centres[rng.integers(0, CENTRES, m)] + noise
    return ids, counts, embeddings


def chunked_inertia(
    embeddings: np.ndarray, counts: np.ndarray, rows: np.ndarray, num_rows: int
) -> float:
    """sum_i counts_i ||e_i - c_{rows_i}||^2, c the count-weighted row means, in float64."""
    mass = np.zeros(num_rows)
    sums = np.zeros((num_rows, embeddings.shape[1]))
    for start in range(0, rows.size, CHUNK):
        part = slice(start, start + CHUNK)
        r, w = rows[part], counts[part].astype(np.float64)
        mass += np.bincount(r, weights=w, minlength=num_rows)
        for j in range(embeddings.shape[1]):
            sums[:, j] += np.bincount(r, weights=w * embeddings[part, j], minlength=num_rows)
    centroids = sums / np.maximum(mass, np.finfo(np.float64).tiny)[:, None]
    total = 0.0
    for start in range(0, rows.size, CHUNK):
        part = slice(start, start + CHUNK)
        diff = embeddings[part].astype(np.float64) - centroids[rows[part]]
        total += float(np.dot(counts[part].astype(np.float64), (diff**2).sum(axis=1)))
    return total


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM; ru_maxrss where /proc is absent)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(case: str, strategy: str, num_ids: int, num_rows: int, seed: int) -> dict:
    """One run, in this process: generate, fit, transform, inertia (see the docstring)."""
    start = time.perf_counter()
    ids, counts, embeddings = make_vocabulary(num_ids, seed)
    generate_s = time.perf_counter() - start
    input_bytes = ids.nbytes + counts.nbytes + embeddings.nbytes
    rss_after_input = peak_rss_bytes()
    mapper = get_mapper(strategy, num_rows=num_rows, seed=seed, min_count=1)
    load_before = os.getloadavg()[0]
    cpu, start = cpu_seconds(), time.perf_counter()
    mapper.fit(ids, counts, embeddings=embeddings)
    fit_s, fit_cpu_s = time.perf_counter() - start, cpu_seconds() - cpu
    start = time.perf_counter()
    rows = mapper.transform(ids)
    transform_s = time.perf_counter() - start
    peak = peak_rss_bytes()
    load_after = os.getloadavg()[0]
    return {
        "case": case,
        "strategy": strategy,
        "ids": num_ids,
        "dim": DIM,
        "rows": num_rows,
        "seed": seed,
        "generate_s": generate_s,
        "fit_s": fit_s,
        "fit_cpu_s": fit_cpu_s,
        "transform_s": transform_s,
        "wall_s": fit_s + transform_s,
        "input_bytes": input_bytes,
        "peak_rss_after_input_bytes": rss_after_input,
        "peak_rss_bytes": peak,
        "inertia": chunked_inertia(embeddings, counts, rows, num_rows),
        "rows_used": int(np.count_nonzero(np.bincount(rows, minlength=num_rows))),
        "load_1min_before": load_before,
        "load_1min_after": load_after,
    }


def machine() -> dict:
    import sklearn

    return {
        "cpu": cpu_model(),
        "cpus": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "sklearn": sklearn.__version__,
        "date_utc": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "load_avg": list(os.getloadavg()),
    }


def run_isolated(case: str, strategy: str, num_ids: int, num_rows: int, seed: int) -> dict:
    """`measure` in a fresh interpreter, so each peak RSS is that run's alone."""
    spec = json.dumps({"case": case, "strategy": strategy, "num_ids": num_ids,
                       "num_rows": num_rows, "seed": seed})
    done = subprocess.run([sys.executable, __file__, "--worker", spec], capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{case} {strategy} failed (exit {done.returncode}):\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def verdicts(runs: list[dict], targets: dict[str, dict[str, float]]) -> list[dict]:
    """One entry per (run, target): the target, the figure, met or not."""
    out = []
    for run in runs:
        for name, limit in targets.get(run["case"], {}).items():
            figure = run[name]
            out.append({"case": run["case"], "strategy": run["strategy"], "target": name,
                        "limit": limit, "measured": figure, "met": figure <= limit})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one tiny case, for a smoke test")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated, of: case1,case2")
    parser.add_argument("--strategies", default=",".join(STRATEGIES))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # internal: one run, JSON out
    args = parser.parse_args()
    if args.worker:
        spec = json.loads(args.worker)
        print(json.dumps(measure(**spec)))
        return
    cases = QUICK_CASES if args.quick else {c: CASES[c] for c in args.cases.split(",")}
    targets = {"quick": TARGETS["case2"]} if args.quick else TARGETS  # quick: checks the checks
    info = machine()
    print(f"machine: {info['cpu']}, {info['cpus']} CPUs ({info['cpus_usable']} usable), Python "
          f"{info['python']}, numpy {info['numpy']}, scikit-learn {info['sklearn']}, "
          f"{info['date_utc']}, load {' / '.join(f'{v:.2f}' for v in info['load_avg'])}")
    header = (f"{'case':<6}{'strategy':>21}{'ids':>11}{'rows':>10}{'fit s':>8}{'CPU s':>8}"
              f"{'transform s':>12}{'peak RSS GB':>12}{'input GB':>9}{'inertia':>14}"
              f"{'rows used':>11}{'load':>6}")
    print(header, flush=True)
    runs = []
    for case, (num_ids, num_rows) in cases.items():
        for strategy in args.strategies.split(","):
            run = run_isolated(case, strategy, num_ids, num_rows, args.seed)
            runs.append(run)
            print(f"{case:<6}{strategy:>21}{num_ids:>11,}{num_rows:>10,}{run['fit_s']:>8.2f}"
                  f"{run['fit_cpu_s']:>8.1f}{run['transform_s']:>12.3f}"
                  f"{run['peak_rss_bytes'] / 1e9:>12.2f}{run['input_bytes'] / 1e9:>9.2f}"
                  f"{run['inertia']:>14,.1f}{run['rows_used']:>11,}"
                  f"{run['load_1min_after']:>6.2f}", flush=True)
    checks = verdicts(runs, targets)
    for check in checks:
        verdict = "met" if check["met"] else "NOT met"
        print(f"target {check['case']} {check['strategy']} {check['target']} <= "
              f"{check['limit']:g}: {check['measured']:g} -> {verdict}")
    print("RESULT " + json.dumps({"machine": info, "targets": targets, "runs": runs,
                                  "checks": checks, "all_met": all(c["met"] for c in checks)}))


if __name__ == "__main__":
    main()
