"""A whole trial on a device, its shuffle windows built in line and ahead, side by side.

    python benchmarks/trial_device.py --device cuda            # on a GPU; about 3 minutes
    python benchmarks/trial_device.py --rows 200000            # the CPU, a short check

Prepares criteo-like synthetic data (`--rows`, `--scale`) once into a temporary directory, then
runs `sweep.trial.run_trial` (what `collide train` and every sweep trial run: the prepared
columns read in blocks and mapped as they are read, no Ray, no MLflow) for `hash` and
`frequency_embedding` at c16, dim 16, one epoch, alternating the threads that build the
shuffle windows ahead of training: none (built in line) and the trainer's default
(`models.train.default_build_threads`: up to 4 on CUDA, none on the CPU, where the two runs
are the same path), after one warm-up trial. The learned map's probe is trained once, by its
first run, and cached.
Each row is one trial's training samples per second of training time and its total seconds.
It ends with one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from importlib import import_module
from pathlib import Path

from machine_info import cpu_model  # this script's folder is first on sys.path...

# ...and benchmarks/mappers.py would shadow `mappers`
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))  # run from a checkout, installed or not

from models import ProbeConfig, TrainConfig  # noqa: E402 - after the path above
from sweep.datasets import get_source  # noqa: E402
from sweep.datasets.cache import prepare  # noqa: E402
from sweep.trial import run_trial  # noqa: E402
from sweep.trial.config import TrialConfig  # noqa: E402

TRAINER = import_module("models.train")  # the module (`models.train` is also the function)
DEFAULT_BUILD_THREADS = TRAINER.default_build_threads


def trial(data: Path, cache: Path, strategy: str, device: str, batch: int,
          build_threads: int | None) -> dict:
    """One trial with `build_threads` window builders (None: the trainer's default)."""
    TRAINER.default_build_threads = (DEFAULT_BUILD_THREADS if build_threads is None
                                     else lambda _device: build_threads)
    try:
        config = TrialConfig(data=str(data), strategy=strategy, compression=16.0, dim=16,
                             precisions=("fp32",), save_tables=False,
                             train=TrainConfig(epochs=1, batch_size=batch, device=device),
                             probe=ProbeConfig(device=device), cache_dir=str(cache))
        epochs: list[dict] = []
        metrics = run_trial(config, on_epoch=lambda _epoch, entry: epochs.append(entry))
    finally:
        TRAINER.default_build_threads = DEFAULT_BUILD_THREADS
    return {"strategy": strategy, "build_threads": build_threads,
            "samples_per_second": epochs[0]["samples_per_second"],
            **{k: metrics.get(k) for k in ("train_seconds", "total_seconds", "val_logloss")}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=4_000_000)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--batch-size", type=int, default=16384)
    parser.add_argument("--runs", type=int, default=2, help="rounds of the alternation")
    args = parser.parse_args()
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    print(f"machine: {cpu_model()}, gpu {gpu}, torch {torch.__version__}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="collide-trial-device-"))
    try:
        params = {"preset": "criteo-like", "num_rows": args.rows, "scale": args.scale}
        data = prepare(get_source("synthetic", **params), work / "prepared").path
        trial(data, work / "probes", "hash", args.device, args.batch_size, None)  # warm-up
        rows = []
        print(f"{'strategy':<22}{'builders':>9}{'samples/s':>12}{'train s':>9}{'total s':>9}"
              f"{'val logloss':>13}", flush=True)
        for _ in range(args.runs):
            for strategy in ("hash", "frequency_embedding"):
                for builders in (0, None):
                    row = trial(data, work / "probes", strategy, args.device, args.batch_size,
                                builders)
                    rows.append(row)
                    shown = "default" if builders is None else builders
                    print(f"{strategy:<22}{shown:>9}{row['samples_per_second']:>12,.0f}"
                          f"{row['train_seconds']:>9.1f}{row['total_seconds']:>9.1f}"
                          f"{row['val_logloss']:>13.4f}", flush=True)
        print("RESULT " + json.dumps({"rows": args.rows, "scale": args.scale,
                                      "device": args.device, "batch_size": args.batch_size,
                                      "gpu": gpu, "trials": rows}))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
