"""Processes on this host: is a process alive, and what command does it run."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["command_line", "pid_alive"]


def pid_alive(pid: int) -> bool:
    """Whether process `pid` exists on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def command_line(pid: int) -> str | None:
    """The command line of process `pid` on this host, its arguments joined by spaces; None when
    it is gone (or this system has no /proc)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return None
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()
