"""Training throughput of the project's own `models.train` against the fp32 GEMM roofline.

The model is the Criteo Kaggle DLRM: bottom MLP 13-512-256-64-16, top MLP 512-256-1, dot
interaction, 26 tables of 100,000 rows at dim 16, on uniform random ids and dense inputs
(so a batch of 2048 touches ~53k distinct rows). Every configuration trains one epoch of
`--samples` samples through `models.train.train` (the same call a trial makes) and reports
its `samples_per_second` (training time only). The roofline is measured in the same run: a
2048 x 2048 fp32 matmul per thread count gives GFLOP/s; divided by the model's FLOPs per
training sample (3 x 2 x the multiply-adds of the MLPs and the interaction: forward, and
backward for inputs and weights) it gives the samples/s a GEMM-bound trainer could reach.

    python benchmarks/train_throughput.py                      # about 3 minutes on 2 cores
    python benchmarks/train_throughput.py --device auto        # a GPU when torch sees one
    python benchmarks/train_throughput.py --sweep --threads 1 --optimizers adam   # about 4 minutes

`--sweep` also runs, per batch size at 1 thread, a one-trial `collide` sweep (Ray Tune, MLflow)
of the same architecture: strategy `full` on synthetic data with uniform popularity
(`zipf_exponent 0`), 26 features of 100,000 ids (about 86,000 of them in the 200,000
training rows, so tables of ~86k rows), 13 dense features, 1 epoch, the default
optimizer; `--sweep-rows` sets the data's rows (250,000 by default). It prints the
trial's own `samples_per_second` metric (from MLflow) beside
`models.train`'s at the same batch size and threads.

It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from dataclasses import replace
from itertools import product

import numpy as np
import torch
from machine_info import cpu_model  # this script's folder is first on sys.path

from models import DLRMConfig, EncodedSplit, FeatureSpec, TrainConfig, train
from models.train import resolve_device

BOTTOM, TOP, TABLES, ROWS, DIM, DENSE = (512, 256, 64), (512, 256), 26, 100_000, 16, 13


def kaggle_config(rows: int = ROWS) -> DLRMConfig:
    features = tuple(FeatureSpec(f"C{i + 1}", (rows,)) for i in range(TABLES))
    return DLRMConfig(num_dense=DENSE, features=features, embedding_dim=DIM, bottom_mlp=BOTTOM,
                      top_mlp=TOP,
                      interaction="dot")


def flops_per_sample(config: DLRMConfig) -> float:
    """Training FLOPs of one sample: 3 x 2 x multiply-adds of the MLPs and the dot interaction."""
    bottom = [config.num_dense, *config.bottom_mlp, config.embedding_dim]
    top = [config.interaction_dim, *config.top_mlp, 1]
    macs = sum(a * b for a, b in zip(bottom[:-1], bottom[1:], strict=True))
    macs += sum(a * b for a, b in zip(top[:-1], top[1:], strict=True))
    n = config.num_features + 1
    macs += n * n * config.embedding_dim  # the (n x D) @ (D x n) interaction
    return 3 * 2 * macs


def gemm_gflops(threads: int, device: torch.device, n: int = 2048, repeats: int = 20) -> float:
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    for _ in range(3):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        if device.type == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def random_split(samples: int, rows: int, seed: int, zipf: float = 0.0) -> EncodedSplit:
    """Random dense inputs and labels; ids uniform over the rows, or with `zipf` > 0 the row of
    rank k drawn with probability proportional to 1 / (k + 1)^zipf (each table its own ranks)."""
    rng = np.random.default_rng(seed)
    if zipf > 0:
        cdf = np.cumsum(1.0 / np.arange(1, rows + 1) ** zipf)
        cdf /= cdf[-1]

        def ids() -> np.ndarray:
            ranks = np.minimum(np.searchsorted(cdf, rng.random(samples)), rows - 1)
            return rng.permutation(rows)[ranks].astype(np.int64)
    else:
        def ids() -> np.ndarray:
            return rng.integers(0, rows, samples, dtype=np.int64)
    return EncodedSplit(dense=rng.standard_normal((samples, DENSE), dtype=np.float32),
                        labels=(rng.random(samples) < 0.25).astype(np.float32),
                        tables=[ids() for _ in range(TABLES)])


def throughput(config: DLRMConfig, split: EncodedSplit, optimizer: str, batch: int, threads: int,
               device: str, gather_unique: bool = False, build_threads: int | None = None) -> float:
    cfg = TrainConfig(batch_size=batch, epochs=1, optimizer=optimizer, num_threads=threads,
                      device=device, gather_unique=gather_unique,
                      early_stopping_patience=None)
    warm = EncodedSplit(split.dense[: batch * 4], split.labels[: batch * 4],
                        [t[: batch * 4] for t in split.tables])
    train(config, cfg, warm, None)  # first-call costs (allocator, kernels) out of the measurement
    return train(config, replace(cfg, seed=1), split, None,
                 build_threads=build_threads).history[0]["samples_per_second"]


def profile_table(config: DLRMConfig, split: EncodedSplit, optimizer: str, batch: int,
                  threads: int, device: torch.device, rows: int = 15) -> str:
    """The ops with the most self time (on the device, or the CPU without one) in one epoch of 16
    batches, after a warm-up."""
    from torch.profiler import ProfilerActivity, profile

    n = batch * 16
    part = EncodedSplit(split.dense[:n], split.labels[:n], [t[:n] for t in split.tables])
    cfg = TrainConfig(batch_size=batch, epochs=1, optimizer=optimizer, num_threads=threads,
                      device=str(device), early_stopping_patience=None)
    train(config, cfg, part, None)  # warm-up
    cuda = device.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    with profile(activities=activities) as prof:
        train(config, replace(cfg, seed=1), part, None)
    key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
    return prof.key_averages().table(sort_by=key, row_limit=rows, max_name_column_width=48)


def machine() -> dict:
    return {"cpu": cpu_model(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__,
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "load_1min": os.getloadavg()[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=2048 * 24, help="training samples per "
                                                                       "measurement")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 2048])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--optimizers", nargs="+", default=["adam", "sparse_adam_torch", "sgd"],
                        help="adam is the default path; sparse_adam_torch is "
                             "torch.optim.SparseAdam, the old one")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--rows", type=int, default=ROWS, help="rows per table")
    parser.add_argument("--zipf", type=float, default=0.0,
                        help="ids drawn with a power-law popularity of this exponent (0: uniform)")
    parser.add_argument("--compare-lookups", action="store_true",
                        help="also run each optimizer with gather_unique on (each distinct row "
                             "gathered once), side by side")
    parser.add_argument("--build-threads", type=int, nargs="+", default=None,
                        help="threads that build shuffle windows ahead of training, side by side "
                             "(default: the trainer's default, models.train.default_build_threads)")
    parser.add_argument("--profile", action="store_true",
                        help="also profile one epoch of 16 batches per batch size and optimizer "
                             "(torch.profiler) and print the ops that take the most device time "
                             "(self time; CPU time without a GPU)")
    parser.add_argument("--sweep", action="store_true", help="also time a one-trial collide sweep "
                                                             "(1 thread)")
    parser.add_argument("--sweep-rows", type=int, default=250_000,
                        help="rows of the one-trial sweep's data (80%% of them train)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    config = kaggle_config(args.rows)
    flops = flops_per_sample(config)
    threads = args.threads if device.type == "cpu" else [torch.get_num_threads()]
    split = random_split(args.samples, args.rows, seed=0, zipf=args.zipf)
    name = f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""
    print(f"device {device}{name}; {flops / 1e6:.2f} MFLOP per training sample; {machine()}")
    rows, roofline = [], {}
    for t in threads:
        gflops = gemm_gflops(t, device)
        roofline[t] = gflops * 1e9 / flops
        print(f"threads {t}: sgemm 2048^3 {gflops:.1f} GFLOP/s -> roofline {roofline[t]:,.0f} "
              "samples/s")
    print(f"{'optimizer':<24}{'batch':>6}{'threads':>8}{'samples/s':>12}{'of roofline':>13}")
    for t in threads:
        for batch in args.batches:
            for optimizer in args.optimizers:
                for unique, builders in product((False, True) if args.compare_lookups else (False,),
                                                args.build_threads or (None,)):
                    sps = throughput(config, split, optimizer, batch, t, str(device), unique,
                                     builders)
                    rows.append({"optimizer": optimizer, "gather_unique": unique, "batch": batch,
                                 "threads": t, "build_threads": builders,
                                 "samples_per_second": sps,
                                 "fraction_of_roofline": sps / roofline[t]})
                    label = optimizer + (" (unique)" if unique else "") + (
                        "" if builders is None else f" b{builders}")
                    print(f"{label:<24}{batch:>6}{t:>8}{sps:>12,.0f}"
                          f"{sps / roofline[t]:>13.2f}", flush=True)
    if args.profile:
        for batch in args.batches:
            for optimizer in args.optimizers:
                print(f"profile: {optimizer}, batch {batch}", flush=True)
                print(profile_table(config, split, optimizer, batch, threads[0], device),
                      flush=True)
    trials = []
    if args.sweep:
        adam = {r["batch"]: r["samples_per_second"] for r in rows if r["optimizer"] == "adam"
                and not r["gather_unique"] and r["threads"] == 1}
        print(f"{'in a sweep trial':<20}{'batch':>6}{'threads':>8}{'samples/s':>12}"
              f"{'of models.train':>17}")
        for batch in args.batches:
            sps = sweep_trial_throughput(batch, args.sweep_rows)
            ratio = sps / adam[batch] if batch in adam else None
            trials.append({"batch": batch, "threads": 1, "samples_per_second": sps,
                           "of_models_train": ratio})
            shown = f"{ratio:>17.2f}" if ratio is not None else f"{'(adam, 1 thread not run)':>17}"
            print(f"{'full, adam':<20}{batch:>6}{1:>8}{sps:>12,.0f}{shown}", flush=True)
    print("RESULT " + json.dumps({"device": str(device), "mflop_per_sample": flops / 1e6,
                                  "roofline_samples_per_second": roofline, "runs": rows,
                                  "sweep_trials": trials,
                                  "machine": machine()}))


def sweep_trial_throughput(batch: int, num_rows: int = 250_000) -> float:
    """The training samples/s a one-trial collide sweep of this architecture reports (its MLflow
    metric)."""
    import shutil
    import sys
    import tempfile
    from pathlib import Path

    # benchmarks/ leaves sys.path before `sweep` imports `mappers`, which benchmarks/mappers.py
    # would shadow
    sys.path[:] = [p for p in sys.path
                   if Path(p or ".").resolve() != Path(__file__).resolve().parent]
    from mlflow.tracking import MlflowClient

    from sweep.config import load_config
    from sweep.tracking.records import find_sweep
    from sweep.tune.runner import run_sweep

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")  # a private local Ray
    workdir = Path(tempfile.mkdtemp(prefix="collide-throughput-"))
    try:
        config = load_config({
            "name": f"throughput-b{batch}", "tracking_uri": f"sqlite:///{workdir / 'mlflow.db'}",
            "data": {"source": "synthetic",
                     "params": {"num_rows": num_rows, "vocab_sizes": [ROWS] * TABLES,
                                                       "num_dense": DENSE, "zipf_exponent": 0.0}},
            "grid": {"strategies": ["full"], "dims": [DIM], "seeds": [0]},
            "model": {"bottom_mlp": list(BOTTOM), "top_mlp": list(TOP), "interaction": "dot"},
            "train": {"epochs": 1, "batch_size": batch, "early_stopping_patience": None},
            "resources": {"num_cpus": 2, "cpus_per_trial": 1}})
        result = run_sweep(config, workdir)
        if result.state != "completed" or result.num_failed:
            raise SystemExit(f"the throughput sweep did not complete ({result.state})")
        client = MlflowClient(config.tracking_uri)
        (run,) = find_sweep(client, config.name, result.parent_run_id).runs
        return float(run.data.metrics["samples_per_second"])
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
