"""benchmarks/train_throughput.py runs from its documented command and ends with `RESULT {json}`
(a small run; the figures are in benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def test_the_benchmark_measures_the_roofline_and_each_optimizer():
    done = subprocess.run(
        [sys.executable, "benchmarks/train_throughput.py", "--rows", "1000", "--samples", "1024",
         "--batches", "128",
         "--threads", "1", "--optimizers", "adam", "sparse_adam_torch"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ")
    result = json.loads(last.removeprefix("RESULT "))
    assert result["mflop_per_sample"] > 2.9  # the Criteo Kaggle architecture
    assert [r["optimizer"] for r in result["runs"]] == ["adam", "sparse_adam_torch"]
    assert all(r["samples_per_second"] > 0 and 0 < r["fraction_of_roofline"]
               for r in result["runs"])


def test_gpu_script_names_the_device_and_without_cuda_runs_the_cpu_check():
    done = subprocess.run(["bash", "benchmarks/gpu.sh"], cwd=REPO, capture_output=True, text=True,
                          timeout=400)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("device: ")
    first = next(ln for ln in lines if ln.startswith("RESULT "))  # the first part: throughput
    result = json.loads(first.removeprefix("RESULT "))
    import torch

    if not torch.cuda.is_available():
        assert "no CUDA device here" in done.stdout and result["device"] == "cpu"
    else:
        assert result["device"].startswith("cuda") and {r["batch"] for r in result["runs"]} == {
            16384, 65536}


@pytest.mark.slow
def test_the_optimizer_quality_check_ends_with_its_figures():
    done = subprocess.run([sys.executable, "benchmarks/optimizer_quality.py", "--seeds", "0",
                           "--strategies", "hash"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    assert {r["optimizer"] for r in result["runs"]} == {"adam", "sparse_adam_torch"}


def test_the_reference_comparison_names_what_it_needs(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/reference_dlrm.py", "--reference",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert f"--reference {tmp_path}: no dlrm_s_pytorch.py there; clone " \
           "https://github.com/facebookresearch/dlrm" in done.stderr


@pytest.mark.slow
def test_the_whole_trial_benchmark_runs_both_ways_on_the_same_data():
    done = subprocess.run([sys.executable, "benchmarks/trial_device.py", "--rows", "20000",
                           "--runs", "1", "--batch-size", "1024"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    trials = result["trials"]
    assert [(t["strategy"], t["build_threads"]) for t in trials] == [
        ("hash", 0), ("hash", None), ("frequency_embedding", 0), ("frequency_embedding", None)]
    # on the CPU both are the same path: the same training, the same loss
    assert trials[0]["val_logloss"] == trials[1]["val_logloss"]
    assert all(t["samples_per_second"] > 0 for t in trials)
