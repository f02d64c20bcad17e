"""Benchmark of mappers/: transform throughput and fit time / inertia of the clustering
strategies against a flat MiniBatchKMeans baseline, measured in one run.

    python benchmarks/mappers.py                   # full: 10^7 lookups, 10^6 ids -> 65,536 rows
    python benchmarks/mappers.py --skip-baseline   # without the ~200 s MiniBatchKMeans runs
    python benchmarks/mappers.py --quick           # small sizes, for a smoke test

Data: `planted` (default) mimics probe embeddings of the synthetic dataset: 10^6 unique
int64 ids, Zipf counts (count ~ 10^6 / rank^1.05, at least 1, rank independent of the
embedding), 16-dim embeddings = one of 4,096 latent centres ~ N(0, 0.1^2) + N(0, 0.03^2)
noise. `gaussian`: embeddings ~ N(0, 0.1^2), no structure. Lookups: 10^7 ids drawn
Zipf(1.2) from the vocabulary, 10% replaced by unseen ids.

Inertia: the rows a mapper gives the training ids are a clustering of the probe
embeddings; its count-weighted inertia on the 10^6 x 16 embeddings is compared with that of
the flat MiniBatchKMeans(n_clusters=65536, batch_size=131072, n_init=1, max_iter=3,
init="random") baseline fitted to the same embeddings and counts. --internal-baseline also
compares frequency_embedding's clustering of the non-hot ids on its own (embedding,
log-frequency) features with the baseline run on those features.

Prints a markdown report (machine, figures, ratios); --json PATH also writes the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.cluster import MiniBatchKMeans

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

from mappers import get_mapper, weighted_inertia  # noqa: E402
from mappers.frequency import num_hot_ids  # noqa: E402
from mappers.frequency_embedding import frequency_features  # noqa: E402
from mappers.learned import hottest  # noqa: E402

HASH_TARGET = 50e6  # ids/s
LEARNED_TARGET = 20e6  # ids/s
FIT_TARGET_S = 10.0
INERTIA_TARGET = 0.6  # x baseline


def make_vocabulary(
    num_ids: int, dim: int, data: str, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, counts, embeddings float32) as described in the module docstring."""
    rng = np.random.default_rng(seed)
    ids = rng.choice(2**62, size=num_ids, replace=False).astype(np.int64) - 2**61
    rank = rng.permutation(num_ids)
    counts = np.maximum(1, 1e6 / (1.0 + rank) ** 1.05).astype(np.int64)
    if data == "planted":
        centres = rng.normal(0.0, 0.1, size=(4096, dim))
        embeddings = centres[rng.integers(0, 4096, num_ids)] + rng.normal(0, 0.03, (num_ids, dim))
    else:
        embeddings = rng.normal(0.0, 0.1, size=(num_ids, dim))
    return ids, counts, embeddings.astype(np.float32)


def make_queries(ids: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` lookups: Zipf(1.2) over a random order of `ids`, 10% unseen ids."""
    rng = np.random.default_rng(seed)
    ranks = np.minimum(rng.zipf(1.2, size) - 1, ids.size - 1)
    queries = ids[rng.permutation(ids.size)][ranks]
    unseen = rng.random(size) < 0.1
    queries[unseen] = rng.integers(-(2**63), 2**63 - 1, size=int(unseen.sum()), dtype=np.int64)
    return queries


def best_of(repeats: int, fn) -> float:
    """Fastest wall time of `repeats` calls of fn()."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_transform(ids, counts, embeddings, queries, num_rows: int) -> list[dict]:
    """Throughput (ids/s) of transform for each strategy, and searchsorted for reference."""
    results = []
    specs = [
        ("hash", {"num_rows": num_rows}),
        ("double_hash", {"num_rows": num_rows}),
        ("qr", {"num_rows": num_rows}),
        ("full", {}),
        ("frequency", {"num_rows": num_rows, "hot_fraction": 0.5}),
        ("embedding", {"num_rows": num_rows}),
        ("frequency_embedding", {"num_rows": num_rows}),
    ]
    for name, params in specs:
        mapper = get_mapper(name, **params).fit(ids, counts, embeddings if "embedding" in name
                                                else None)
        mapper.transform(queries[:1000])
        seconds = best_of(3, lambda m=mapper: m.transform(queries))
        results.append({"strategy": name, "seconds": seconds, "ids_per_s": queries.size / seconds})
    keys = np.sort(ids)
    seconds = best_of(3, lambda: np.searchsorted(keys, queries))
    results.append(
        {
            "strategy": "np.searchsorted (ref.)",
            "seconds": seconds,
            "ids_per_s": queries.size / seconds,
        }
    )
    return results


def baseline_labels(features: np.ndarray, weights: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The flat MiniBatchKMeans baseline named in the issue, count-weighted."""
    model = MiniBatchKMeans(
        n_clusters=k, batch_size=131072, n_init=1, max_iter=3, init="random", random_state=seed
    )
    return model.fit(features, sample_weight=weights).labels_


def bench_clustering(ids, counts, embeddings, num_rows: int, args) -> list[dict]:
    """Fit + transform time of embedding / frequency_embedding, and the count-weighted
    inertia of their rows on the probe embeddings (hash rows and the MiniBatchKMeans
    baseline on the same embeddings and counts for comparison)."""
    weights = counts.astype(np.float64)
    hot_fraction, lam = 0.1, 0.25  # frequency_embedding's defaults
    results = []
    specs = [
        ("hash", {"num_rows": num_rows}),
        ("embedding", {"num_rows": num_rows}),
        ("frequency_embedding", {"num_rows": num_rows, "hot_fraction": hot_fraction, "lam": lam}),
        ("frequency_embedding", {"num_rows": num_rows, "hot_fraction": hot_fraction, "lam": 0.5}),
        ("frequency_embedding", {"num_rows": num_rows, "hot_fraction": hot_fraction, "lam": 0.0}),
    ]
    for name, params in specs:
        start, cpu_start = time.perf_counter(), time.process_time()
        mapper = get_mapper(name, seed=args.seed, **params).fit(ids, counts, embeddings)
        rows = mapper.transform(ids)
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
        label = name if name != "frequency_embedding" else f"{name} (lam={params['lam']})"
        results.append(
            {
                "strategy": label,
                "fit_transform_s": seconds,
                "cpu_s": cpu,
                "inertia": weighted_inertia(embeddings, rows, weights),
            }
        )
    if not args.skip_baseline:
        start = time.perf_counter()
        labels = baseline_labels(embeddings, weights, num_rows, args.seed)
        baseline = {
            "strategy": "MiniBatchKMeans baseline",
            "fit_transform_s": time.perf_counter() - start,
            "inertia": weighted_inertia(embeddings, labels, weights),
        }
        for entry in results:
            entry["ratio"] = entry["inertia"] / baseline["inertia"]
        results.append(baseline)
    if args.internal_baseline:  # frequency_embedding's own clustering input
        hot = hottest(ids, counts, num_hot_ids(hot_fraction, num_rows))
        cold = np.ones(ids.size, dtype=bool)
        cold[hot] = False
        features = frequency_features(embeddings[cold], counts[cold], lam)
        k = num_rows - hot.size
        rows = get_mapper("frequency_embedding", seed=args.seed, **specs[2][1])
        rows = rows.fit(ids, counts, embeddings).transform(ids[cold]) - hot.size
        ours = weighted_inertia(features, rows, weights[cold])
        start = time.perf_counter()
        base = weighted_inertia(
            features, baseline_labels(features, weights[cold], k, args.seed), weights[cold]
        )
        results.append(
            {
                "strategy": f"frequency_embedding (lam={lam}), own input ({int(cold.sum()):,} x "
                f"{features.shape[1]} features -> {k:,})",
                "inertia": ours,
                "baseline_inertia": base,
                "baseline_s": time.perf_counter() - start,
                "ratio": ours / base,
            }
        )
    return results


def machine() -> str:
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    try:
        lscpu = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        head = "\n".join(lscpu.splitlines()[:10])
    except (OSError, subprocess.CalledProcessError):
        head = platform.processor()
    return (
        f"{head}\npython {platform.python_version()}, numpy {np.__version__}; "
        f"load average at the end (1, 5, 15 min): {load}"
    )


def report(args, transform_rows: list[dict], cluster_rows: list[dict], num_queries: int) -> str:
    lines = ["```", machine(), "```", ""]
    lines += [f"transform of {num_queries:,} ids (best of 3):", ""]
    lines += ["| strategy | seconds | M ids/s | target |", "|---|---:|---:|---|"]
    for r in transform_rows:
        hashed = r["strategy"] in ("hash", "double_hash", "qr")
        target = "" if "ref" in r["strategy"] else (">= 50M" if hashed else ">= 20M")
        lines.append(
            f"| {r['strategy']} | {r['seconds']:.3f} | {r['ids_per_s'] / 1e6:.1f} | {target} |"
        )
    lines += [
        "",
        f"fit + transform, {args.num_ids:,} ids x {args.dim} dims -> {args.num_rows:,} rows "
        f"({args.data} data, Zipf counts); inertia = count-weighted inertia of the rows on the "
        "probe embeddings; ratio = inertia / baseline inertia:",
        "",
        "| strategy | wall s | cpu s | weighted inertia | ratio |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in cluster_rows:
        wall = f"{r['fit_transform_s']:.2f}" if "fit_transform_s" in r else f"{r['baseline_s']:.1f}"
        cpu = f"{r['cpu_s']:.2f}" if "cpu_s" in r else ""
        ratio = f"{r['ratio']:.3f}" if "ratio" in r else ""
        inertia = f"{r['inertia']:.5g}"
        if "baseline_inertia" in r:
            inertia += f" (baseline {r['baseline_inertia']:.5g})"
        lines.append(f"| {r['strategy']} | {wall} | {cpu} | {inertia} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10^5 ids, 10^6 lookups")
    parser.add_argument("--skip-baseline", action="store_true", help="skip MiniBatchKMeans")
    parser.add_argument(
        "--internal-baseline",
        action="store_true",
        help="also run the baseline on frequency_embedding's own clustering input (~300 s)",
    )
    parser.add_argument("--data", choices=["planted", "gaussian"], default="planted")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    args.num_ids, args.dim = (100_000, 16) if args.quick else (1_000_000, 16)
    args.num_rows = args.num_ids * 65_536 // 1_000_000
    num_queries = 1_000_000 if args.quick else 10_000_000

    ids, counts, embeddings = make_vocabulary(args.num_ids, args.dim, args.data, args.seed)
    queries = make_queries(ids, num_queries, args.seed + 1)
    transform_rows = bench_transform(ids, counts, embeddings, queries, args.num_rows)
    cluster_rows = bench_clustering(ids, counts, embeddings, args.num_rows, args)
    print(report(args, transform_rows, cluster_rows, num_queries))
    figures = {"transform": transform_rows, "clustering": cluster_rows, "args": vars(args)}
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2, default=str) + "\n")
    print("RESULT " + json.dumps(figures, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
