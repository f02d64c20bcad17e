"""`collide ui`: the MLflow UI on a sweep's tracking store, bound to 127.0.0.1 by default.

It prints the direct URL of each sweep experiment's runs view (`#/experiments/<id>/runs`):
MLflow 3 opens on a GenAI home page, where a sweep's runs are two clicks away. Against a
tracking server (an http(s) URI) it starts nothing and prints the server's URLs.

`mlflow ui` is a tree of processes (the server, its uvicorn workers, a job runner and
its queue consumers). It runs in a process group of its own, and `collide ui` ends that
whole group when it gets SIGINT, SIGTERM or SIGHUP, or when the server exits: nothing is
left behind. The store URI reaches the server through its environment
(MLFLOW_BACKEND_STORE_URI), never its arguments, so no password shows in the process list.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from types import FrameType
from urllib.parse import urlsplit, urlunsplit

from sweep.errors import UserError
from sweep.tracking.store import check_tracking_uri, connect
from sweep.tracking.uri import redact

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "check_port_free", "runs_view_url", "serve_ui",
           "stop_process_group",
           "sweep_experiments",
           "ui_command"]

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
DEFAULT_PORT, DEFAULT_HOST = 5000, "127.0.0.1"  # where `collide ui` serves unless told


def runs_view_url(base_url: str, experiment_id: str) -> str:
    """The UI page listing an experiment's runs, e.g. http://127.0.0.1:5000/#/experiments/3/runs
    (any user info or query of `base_url` left out: a URL to print carries no credential)."""
    parts = urlsplit(base_url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path.rstrip("/") + "/", "", "")) + \
        f"#/experiments/{experiment_id}/runs"


def sweep_experiments(tracking_uri: str, name: str | None = None) -> list[tuple[str, str]]:
    """(name, id) of the experiments holding a collide sweep, newest first; only `name` if given."""
    from sweep.tracking.records import experiment_id_of

    client = connect(tracking_uri)
    if name is not None:
        return [(name, experiment_id_of(client, name))]
    found = []
    for experiment in client.search_experiments(order_by=["last_update_time DESC"]):
        if client.search_runs([experiment.experiment_id], "tags.`collide.kind` = 'sweep'",
                              max_results=1):
            found.append((experiment.name, experiment.experiment_id))
    return found


def _answers(host: str, port: int) -> bool:
    import urllib.request

    probe = "127.0.0.1" if host in ("0.0.0.0", "") else host
    try:
        with urllib.request.urlopen(f"http://{probe}:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _print_views(experiments: list[tuple[str, str]], base_url: str) -> None:
    if not experiments:
        print("no collide sweep in this store yet")
    for experiment, experiment_id in experiments:
        print(f"  {experiment}: {runs_view_url(base_url, experiment_id)}")


def ui_command(tracking_uri: str, port: int = DEFAULT_PORT,
               host: str = DEFAULT_HOST) -> tuple[list[str], dict[str, str]]:
    """(argv, extra environment) of the `mlflow ui` serving `tracking_uri` (a sqlite or database
    store)."""
    if not 0 < port < 65536:
        raise UserError(f"port must be in 1..65535, got {port}")
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


def serve_ui(tracking_uri: str, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST,
             experiment: str | None = None) -> int:
    """Run the UI until collide is signalled (returns 0) or the server exits (ValueError if it
    failed).

    A tracking server needs no second UI: its runs-view URLs are printed and nothing is started."""
    check_tracking_uri(tracking_uri)
    if tracking_uri.startswith(("http://", "https://")):
        print(f"{redact(tracking_uri)} is a tracking server with its own UI; the sweeps' runs "
              "views:")
        _print_views(sweep_experiments(tracking_uri, experiment), tracking_uri)
        return 0
    argv, env = ui_command(tracking_uri, port, host)
    # an unknown --experiment fails before the server
    experiments = sweep_experiments(tracking_uri, experiment)
    check_port_free(host, port)
    print(f"starting the MLflow UI for {redact(tracking_uri)} on http://{host}:{port} ...",
          flush=True)
    stopped: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stopped.append(signum)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    process = subprocess.Popen(argv, env={**os.environ, **env}, start_new_session=True)
    try:
        announced = False
        while process.poll() is None and not stopped:
            # the port was free: a server that answers on it now is ours (while it runs)
            if not announced and _answers(host, port) and process.poll() is None:
                announced = True
                print(f"MLflow UI at http://{host}:{port} (Ctrl-C to stop); the sweeps' runs "
                      "views:")
                _print_views(experiments, f"http://{host}:{port}")
                sys.stdout.flush()
            time.sleep(0.2)
    finally:
        stop_process_group(process)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if not stopped and (process.returncode or not announced):
        raise UserError(f"mlflow ui exited with code {process.returncode} before collide stopped "
                        "it (its output is above)")
    return 0


def check_port_free(host: str, port: int) -> None:
    """UserError naming the port unless this process could listen on `host`:`port` now."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise UserError(f"port {port} on {host} is taken ({exc.strerror or exc}): collide ui "
                            "serves nothing there; give another with --port") from None
