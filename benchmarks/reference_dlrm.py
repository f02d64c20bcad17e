"""The default training path side by side with the reference DLRM (facebookresearch/dlrm).

Both train the Criteo Kaggle architecture of benchmarks/train_throughput.py (bottom MLP
13-512-256-64-16, top MLP 512-256-1, dot interaction, 26 tables of 100,000 rows at dim 16,
one uniform random id per table and sample) on 1 thread (`OMP_NUM_THREADS=1`), in the same
run, alternating, `--runs` times; each figure is the median of its runs.

- the reference: `dlrm_s_pytorch.py` of a checkout you give with `--reference` (it is not
  part of collide: `git clone https://github.com/facebookresearch/dlrm`; it needs
  `tensorboard` installed), with its own random data (`--data-generation=random`), SGD
  (its only optimizer for this model), and its `ms/it` over the second half of the batches
  (the first half warms up). Its clock covers the forward pass, the loss, the backward pass
  and the step; the random batches are made outside it.
- collide: `models.train.train` through `train_throughput.throughput`, one epoch, as a trial
  trains; its samples/s also counts building the shuffle windows, which the reference's does
  not, so the comparison favours the reference.

    python benchmarks/reference_dlrm.py --reference ~/src/dlrm       # about 6 minutes

It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

import torch
from train_throughput import (  # this script's folder is first on sys.path
    ROWS,
    TABLES,
    kaggle_config,
    machine,
    random_split,
    throughput,
)

MS_PER_IT = re.compile(r"Finished training it (\d+)/(\d+) of epoch \d+, ([0-9.]+) ms/it")


def reference_samples_per_second(script: Path, batch: int, batches: int) -> float:
    """samples/s of the reference's second half of `batches` batches of `batch`, 1 thread."""
    half = max(batches // 2, 1)
    args = [sys.executable, str(script.name), "--arch-sparse-feature-size=16",
            "--arch-mlp-bot=13-512-256-64-16", "--arch-mlp-top=512-256-1",
            "--arch-embedding-size=" + "-".join([str(ROWS)] * TABLES),
            "--data-generation=random", f"--num-batches={2 * half}",
            f"--mini-batch-size={batch}", "--num-indices-per-lookup=1",
            "--num-indices-per-lookup-fixed=True", "--loss-function=bce",
            "--round-targets=True", "--learning-rate=0.1", f"--print-freq={half}",
            "--print-time", "--nepochs=1", "--numpy-rand-seed=0"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    done = subprocess.run(args, cwd=script.parent, env=env, capture_output=True, text=True,
                          timeout=900)
    found = MS_PER_IT.findall(done.stdout)
    if done.returncode != 0 or not found:
        raise SystemExit(f"the reference failed (exit {done.returncode}):\n"
                         f"{(done.stdout + done.stderr)[-3000:]}")
    return batch * 1000.0 / float(found[-1][2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference", required=True,
                        help="a checkout of facebookresearch/dlrm (holding dlrm_s_pytorch.py)")
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 2048])
    parser.add_argument("--samples", type=int, default=2048 * 24,
                        help="training samples per measurement")
    parser.add_argument("--optimizers", nargs="+", default=["adam", "rowwise_adagrad", "sgd"])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    script = Path(args.reference).expanduser().resolve() / "dlrm_s_pytorch.py"
    if not script.is_file():
        raise SystemExit(f"--reference {args.reference}: no dlrm_s_pytorch.py there; clone "
                         "https://github.com/facebookresearch/dlrm")
    torch.set_num_threads(1)
    config = kaggle_config()
    split = random_split(args.samples, ROWS, seed=0)
    print(machine(), flush=True)
    figures: dict[tuple[str, int], list[float]] = {}
    for run in range(1, args.runs + 1):
        for batch in args.batches:
            key = ("reference sgd", batch)
            figures.setdefault(key, []).append(
                reference_samples_per_second(script, batch, max(args.samples // batch, 2)))
            for optimizer in args.optimizers:
                figures.setdefault((optimizer, batch), []).append(
                    throughput(config, split, optimizer, batch, 1, "cpu"))
            print(f"run {run}, batch {batch}: " + ", ".join(
                f"{name} {values[-1]:,.0f}" for (name, b), values in figures.items()
                if b == batch), flush=True)
    print(f"{'path':<18}{'batch':>6}{'samples/s (median)':>20}{'of reference':>14}")
    rows = []
    for batch in args.batches:
        reference = statistics.median(figures[("reference sgd", batch)])
        for (name, b), values in figures.items():
            if b != batch:
                continue
            median = statistics.median(values)
            rows.append({"path": name, "batch": batch, "runs": values, "median": median,
                         "of_reference": median / reference})
            print(f"{name:<18}{batch:>6}{median:>20,.0f}{median / reference:>14.2f}")
    print("RESULT " + json.dumps({"rows": rows, "machine": machine(), "threads": 1}))


if __name__ == "__main__":
    main()
