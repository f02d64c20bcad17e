"""The CPU a benchmark ran on, for its `machine:` line and RESULT json (no heavy imports)."""

from __future__ import annotations


def cpu_model() -> str:
    """The model name in /proc/cpuinfo, or "unknown" where there is none."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f
                        if line.startswith("model name"))
    except (OSError, StopIteration):
        return "unknown"
