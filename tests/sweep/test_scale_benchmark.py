"""benchmarks/scale.py's memory sampler counts the held memory of a whole process tree,
grandchildren included, and not the page cache of a memory-mapped file."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def _scale_module():
    sys.path.insert(0, str(REPO / "benchmarks"))  # scale.py imports its neighbour
    try:
        spec = importlib.util.spec_from_file_location("scale_benchmark",
                                                      REPO / "benchmarks" / "scale.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)  # it drops benchmarks/ from sys.path itself
        return module
    finally:
        if str(REPO / "benchmarks") in sys.path:
            sys.path.remove(str(REPO / "benchmarks"))


def test_held_memory_of_a_grandchild_counts_and_page_cache_does_not(tmp_path):
    mapped = tmp_path / "column.npy"
    np.save(mapped, np.ones(50_000_000, dtype=np.uint8))  # 50 MB read through the page cache
    grandchild = ("import numpy as np, time; a = np.ones(300_000_000, dtype=np.uint8); "
                  f"b = np.load({str(mapped)!r}, mmap_mode='r'); int(b.sum()); time.sleep(3)")
    child = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    sampler = _scale_module().TreeMemory  # imported first: it imports torch
    process = subprocess.Popen([sys.executable, "-c", child])
    memory = sampler(process.pid, every=0.2)
    process.wait(timeout=60)
    time.sleep(0.3)
    peaks = memory.stop()
    assert 0.30 <= peaks["peak_held_gb"] < 0.45  # the grandchild's 300 MB and two interpreters
    assert peaks["peak_pss_gb"] >= peaks["peak_held_gb"] + 0.04  # the mapped file's pages
