"""`collide ui`: the MLflow UI on a sweep's tracking store, bound to 127.0.0.1 by default.

`mlflow ui` is a tree of processes (the server, its uvicorn workers, a job runner and
its queue consumers). It runs in a process group of its own, and `collide ui` ends that
whole group when it gets SIGINT, SIGTERM or SIGHUP, or when the server exits: nothing is
left behind. The store URI reaches the server through its environment
(MLFLOW_BACKEND_STORE_URI), never its arguments, so no password shows in the process list.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from types import FrameType

from sweep.tracking_uri import check_tracking_uri, redact

__all__ = ["serve_ui", "stop_process_group", "ui_command"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def ui_command(tracking_uri: str, port: int = 5000, host: str = "127.0.0.1") -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) of the `mlflow ui` serving `tracking_uri` (a sqlite or database store)."""
    if tracking_uri.startswith(("http://", "https://")):
        raise ValueError(f"{redact(tracking_uri)} is already a tracking server: open it in a browser instead")
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    argv = [sys.executable, "-m", "mlflow", "ui", "--host", host, "--port", str(port)]
    return argv, {"MLFLOW_BACKEND_STORE_URI": tracking_uri}


def stop_process_group(process: subprocess.Popen, grace_s: float = 10.0) -> None:
    """SIGTERM the process group led by `process`, then SIGKILL whatever is left after `grace_s`."""
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        pgid = process.pid
    for signum, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, signum)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                process.poll()
                return
            process.poll()
            time.sleep(0.1)
    process.poll()


def serve_ui(tracking_uri: str, port: int = 5000, host: str = "127.0.0.1") -> int:
    """Run the UI until collide is signalled (returns 0) or the server exits (ValueError if it failed)."""
    argv, env = ui_command(tracking_uri, port, host)
    check_tracking_uri(tracking_uri)
    print(f"MLflow UI for {redact(tracking_uri)} at http://{host}:{port}  (Ctrl-C to stop)", flush=True)
    stopped: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    process = subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)
    try:
        while process.poll() is None and not stopped:
            time.sleep(0.2)
    finally:
        stop_process_group(process)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not stopped and process.returncode:
        raise ValueError(f"mlflow ui exited with code {process.returncode} (its output is above)")
    return 0
