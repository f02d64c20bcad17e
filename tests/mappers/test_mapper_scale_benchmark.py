"""benchmarks/mapper_scale.py runs from its documented command and ends with `RESULT {json}`
(its --quick case; the figures are in benchmarks/README.md, never asserted here)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mappers import weighted_inertia

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "mapper_scale.py"


def test_quick_run_reports_every_figure_and_target() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith("machine: ") and lines[-1].startswith("RESULT ")
    result = json.loads(lines[-1].removeprefix("RESULT "))
    assert {"cpu", "cpus", "python", "numpy", "date_utc", "load_avg"} <= set(result["machine"])
    assert [r["strategy"] for r in result["runs"]] == ["embedding", "frequency_embedding"]
    for run in result["runs"]:
        assert run["fit_s"] > 0 and run["transform_s"] > 0 and run["inertia"] > 0
        assert run["peak_rss_bytes"] >= run["peak_rss_after_input_bytes"] > run["input_bytes"]
        assert 0 < run["rows_used"] <= run["rows"]
    assert {(c["strategy"], c["target"]) for c in result["checks"]} == {
        (s, t) for s in ("embedding", "frequency_embedding") for t in ("wall_s", "peak_rss_bytes")
    }
    assert result["all_met"] == all(c["met"] for c in result["checks"])


def test_chunked_inertia_is_the_weighted_inertia(monkeypatch: pytest.MonkeyPatch) -> None:
    # the script edits sys.path on import; run as a script, its own folder comes first
    monkeypatch.setattr(sys, "path", [str(SCRIPT.parent), *sys.path])
    spec = importlib.util.spec_from_file_location("mapper_scale", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "CHUNK", 1000)  # several chunks, the last one partial
    ids, counts, embeddings = bench.make_vocabulary(5000, seed=3)
    assert np.all(ids[1:] > ids[:-1]) and counts.min() >= 1 and embeddings.dtype == np.float32
    rows = np.random.default_rng(0).integers(0, 300, ids.size)
    expected = weighted_inertia(embeddings, rows, counts)
    assert bench.chunked_inertia(embeddings, counts, rows, 300) == pytest.approx(expected, rel=1e-9)
