"""Suite-wide guard: no process started by the tests may outlive the test run.

Every process the suite starts inherits COLLIDE_TEST_SESSION=<token> through its
environment (Ray's raylet and workers, `mlflow ui` / `mlflow server` and their workers,
`collide` subprocesses). After the last test, Ray is shut down and every process whose
/proc/<pid>/environ carries the token must be gone within a grace period; otherwise the
run fails, listing them (and they are killed, so they do not haunt the next run).
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest

MARK = "COLLIDE_TEST_SESSION"
GRACE_S = 60.0  # Ray's agents take a few seconds to notice their raylet is gone


def marked_processes(token: str) -> dict[int, str]:
    """pid -> command line of every live process (not this one) started with `token` in its
    environment."""
    needle = f"{MARK}={token}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(
                    errors="replace")
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":  # a zombie is dead; its parent has not reaped it yet
                    found[int(entry.name)] = cmdline.strip()[:200]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault(MARK, uuid.uuid4().hex)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    try:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    except ImportError:
        pass
    token = os.environ[MARK]
    deadline = time.monotonic() + GRACE_S
    left = marked_processes(token)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = marked_processes(token)
    if not left:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    lines = [f"{len(left)} process(es) started by the test suite outlived it:"]
    lines += [f"  pid {pid}: {cmd}" for pid, cmd in sorted(left.items())]
    if reporter is not None:
        reporter.write_line("\n".join(lines), red=True)
    for pid in left:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    session.exitstatus = pytest.ExitCode.TESTS_FAILED
