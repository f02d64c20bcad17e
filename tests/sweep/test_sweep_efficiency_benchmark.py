"""benchmarks/sweep_efficiency.py runs from its documented command and ends with `RESULT {json}`
(a short run: 1 epoch; the figures are in benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def test_the_benchmark_times_a_16_trial_sweep_in_its_own_process(tmp_path):
    done = subprocess.run([sys.executable, "benchmarks/sweep_efficiency.py", "--kinds", "small",
                           "--epochs", "1",
                           "--keep", str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    (run,) = result["runs"]
    assert run["kind"] == "small" and run["trials"] == 16 and run["cpus"] == 2
    assert 0 < run["efficiency"] < run["tune_phase_efficiency"]
    assert run["wall_seconds"] > run["tune_phase_seconds"]
    assert {"startup_ray_seconds", "startup_data_seconds", "startup_probe_seconds"} <= set(
        run["startup"])


def test_the_search_benchmark_compares_optuna_with_the_grid():
    done = subprocess.run([sys.executable, "benchmarks/search_efficiency.py", "--set-epochs", "1",
                           "--data-rows", "20000", "--dims", "8"],
                          cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    # one dim: 6 strategies x 3 compressions + full
    assert result["grid_trials"] == 19 and result["optuna_trials"] <= 0.4 * result["grid_trials"]
