"""Shared pieces of the end-to-end tests: tiny sweep options, real `collide` and `mlflow server`
processes in their own process groups, and polling helpers. No mocks."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path

# A sweep small enough for CI: 3 features, 12k rows, tiny MLPs, 2 epochs.
TINY = ["--set", "data.params={num_rows: 12000, vocab_sizes: [40, 600, 3000], num_dense: 2}",
        "--set", "model={bottom_mlp: [8], top_mlp: [8]}", "--set", "probe={dim: 4, epochs: 1, lr: "
                                                                   "0.01}",
        "--set", "train.batch_size=512", "--epochs", "2", "--num-cpus", "2", "--dims", "8",
        "--seeds", "0"]


def hooks_env(**hooks: object) -> dict[str, str]:
    """The environment that gives a sweep collide's test hooks (sweep.tune.hooks), e.g.
    hooks_env(fail_trials=["hash-c16-d8-s0"]) or hooks_env(trial_start_log=str(path))."""
    return {"COLLIDE_TEST_HOOKS": json.dumps(hooks)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(condition: Callable[[], object], timeout: float, what: str,
               interval: float = 0.25) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


RUN_MARK = "COLLIDE_TEST_RUN"


def run_mark() -> dict[str, str]:
    """An environment mark for one `collide` process: every process it starts inherits it, so
    `marked_processes` finds whatever of its tree outlives it (Ray's start in sessions of their
    own, out of its process group)."""
    return {RUN_MARK: uuid.uuid4().hex}


def marked_processes(mark: dict[str, str]) -> dict[int, str]:
    """pid -> command line of every live process (not a zombie) carrying `mark` in its
    environment."""
    (name, value), = mark.items()
    needle = f"{name}={value}".encode()
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found[int(entry.name)] = (entry / "cmdline").read_bytes().replace(
                        b"\0", b" ").decode(errors="replace")[:200]
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return found


def no_process_left(mark: dict[str, str], timeout: float = 30) -> None:
    """Every process of the marked tree is gone within `timeout` seconds (Ray's agents take a
    moment to notice their raylet is gone); else the assertion lists them."""
    try:
        wait_until(lambda: not marked_processes(mark), timeout, "the marked processes to exit")
    except AssertionError:
        raise AssertionError(f"processes outlived the command: {marked_processes(mark)}") from None


def collide(args: list[str], cwd: Path, env: dict[str, str] | None = None,
            **popen: object) -> subprocess.Popen:
    """`collide ARGS` as a real process in a new session (its own process group), output to a log
    file."""
    path = cwd / f"collide-{time.monotonic_ns()}.log"
    with open(path, "w") as log:  # the child keeps its own descriptor
        process = subprocess.Popen([sys.executable, "-m", "sweep.cli", *args], cwd=cwd,
                                   env={**os.environ, **(env or {})}, stdout=log,
                                   stderr=subprocess.STDOUT,
                                   start_new_session=True, **popen)
    process.log_path = path  # type: ignore[attr-defined]
    return process


def output_of(process: subprocess.Popen) -> str:
    return process.log_path.read_text(errors="replace")  # type: ignore[attr-defined]


def kill_group(process: subprocess.Popen, signum: int = signal.SIGKILL,
               timeout: float = 60) -> None:
    """Signal the whole process group of `process` and wait until every member is gone."""
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        return
    process.wait(timeout=timeout)

    def group_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    if not group_gone():
        try:
            wait_until(group_gone, 20, "the process group to exit")
        except AssertionError:
            os.killpg(process.pid, signal.SIGKILL)
            wait_until(group_gone, 20, "the process group to die")


def trial_runs(db: Path, status: str = "FINISHED") -> list[str]:
    """Names of the nested runs with `status` in an MLflow sqlite store (read-only, while others
    write)."""
    if not db.is_file():
        return []
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            rows = conn.execute("SELECT r.name FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                                "WHERE t.key = 'collide.kind' AND t.value = 'trial' AND r.status = "
                                "?", (status,))
            return [name for (name,) in rows]
    except sqlite3.Error:
        return []


def finished_trial_runs(db: Path) -> list[str]:
    return trial_runs(db, "FINISHED")


def trial_starts(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.is_file() else []


class MlflowServer:
    """A real `mlflow server` on loopback (sqlite backend, proxied local artifacts), restartable."""

    def __init__(self, root: Path, port: int | None = None):
        self.root = root
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db(self) -> Path:
        return self.root / "server.db"

    def start(self, timeout: float = 120) -> MlflowServer:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "server.log", "a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "mlflow", "server", "--backend-store-uri",
                 f"sqlite:///{self.db}",
                 "--artifacts-destination", str(self.root / "artifacts"), "--host", "127.0.0.1",
                 "--port", str(self.port), "--workers", "1"],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

        def healthy() -> bool:
            if self.process.poll() is not None:
                raise AssertionError("mlflow server exited: "
                                     f"{(self.root / 'server.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r:
                    return r.status == 200
            except OSError:
                return False

        wait_until(healthy, timeout, "mlflow server to answer /health", interval=0.5)
        return self

    def stop(self) -> None:
        if self.process is not None:
            kill_group(self.process, signal.SIGTERM)
            self.process = None

    def __enter__(self) -> MlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# Headless Chromium for the UI test: Debian's chromium and chromium-driver (installed by .ci/run),
# driven by selenium. The flags keep it off the network (this machine has none beyond loopback).
CHROMIUM = os.environ.get("COLLIDE_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("COLLIDE_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic",
                  "--no-first-run", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--disable-default-apps", "--disable-extensions",
                  "--metrics-recording-only",
                  "--no-default-browser-check", "--window-size=1600,1000")


def browser_missing() -> str | None:
    """Why the browser test cannot run here, or None. COLLIDE_REQUIRE_BROWSER=1 (set by .ci/run)
    turns
    a missing browser into a failure instead of a skip."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    for path in (CHROMIUM, CHROMEDRIVER):
        if not Path(path).is_file():
            return f"{path} is missing (apt-get install chromium chromium-driver)"
    return None


def chromium(user_data_dir: Path):
    """A headless Chromium session (quit it when done)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={user_data_dir}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
