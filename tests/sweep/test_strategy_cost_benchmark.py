"""benchmarks/strategy_cost.py runs from its documented command and ends with `RESULT {json}`
(a small run; the figures are in benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_the_benchmark_times_each_strategy_against_hash():
    done = subprocess.run([sys.executable, "benchmarks/strategy_cost.py", "--rows", "20000",
                           "--repeats", "1"], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1].removeprefix("RESULT "))
    assert set(result["seconds"]) == {"hash", "mixed_dim", "mch"}
    assert result["ratio_to_hash"]["hash"] == 1.0
    assert all(len(v) == 1 and v[0] > 0 for v in result["seconds"].values())
