"""The older benchmarks run from their documented commands and end with `RESULT {json}`, like the
others (short forms; the figures are in benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _result(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT "), last
    return json.loads(last.removeprefix("RESULT "))


@pytest.mark.slow
def test_mappers_benchmark_ends_with_its_figures():
    result = _result(["benchmarks/mappers.py", "--quick", "--skip-baseline"])
    assert {r["strategy"] for r in result["transform"]} >= {"hash", "frequency_embedding"}
    assert all(r["ids_per_s"] > 0 for r in result["transform"])
    assert any(r["strategy"] == "embedding" and r["inertia"] > 0 for r in result["clustering"])


@pytest.mark.slow
def test_prepare_benchmark_ends_with_its_figures():
    result = _result(["benchmarks/prepare_criteo.py", "--rows", "20000"])
    (run,) = result["runs"]
    assert run["rows"] == 20000 and run["seconds"] > 0 and run["peak_rss_mib"] > 0
