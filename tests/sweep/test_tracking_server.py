"""A sweep against a real `mlflow server`: fast failure, blips, an outage and `collide sync`,
secrets.

The server is a real process (sqlite backend, proxied artifacts) that the tests stop and
start like an operator would. No mocks.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from e2e_support import (
    TINY,
    MlflowServer,
    collide,
    finished_trial_runs,
    free_port,
    kill_group,
    output_of,
    wait_until,
)
from mlflow.tracking import MlflowClient

from sweep.cli import main
from sweep.tracking.records import find_sweep, trial_rows

pytestmark = pytest.mark.slow

FOUR = ["--preset", "smoke", "--strategies", "hash,frequency", "--compressions", "4,16", *TINY,
        "--num-cpus", "1",
        "--set", "data.params={num_rows: 30000, vocab_sizes: [40, 600, 3000], num_dense: 2}"]


@pytest.fixture
def server(tmp_path):
    with MlflowServer(tmp_path / "server") as running:
        yield running


def _silent_listener() -> tuple[socket.socket, int]:
    """A port that accepts connections and never answers (a hung server)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                held.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    return listener, listener.getsockname()[1]


def test_unreachable_or_hung_tracking_server_fails_in_seconds_before_any_work(
    tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    listener, hung = _silent_listener()
    try:
        for uri in (f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{hung}"):
            monkeypatch.setenv("MLFLOW_TRACKING_URI",
                               uri.replace("http://", "http://alice:s3cret@"))
            for argv in (["sweep", "--preset", "smoke", *TINY], ["pareto", "--experiment", "x"],
                         ["export", "--experiment", "x", "--max-bytes", "1e9", "--out", "e"]):
                started = time.monotonic()
                assert main(argv) == 2
                assert time.monotonic() - started < 12, argv
                err = capsys.readouterr().err
                assert "collide: error: MLflow tracking URI http://alice:***@127.0.0.1" in err, err
                assert "s3cret" not in err and "Traceback" not in err
    finally:
        listener.close()
    assert not (tmp_path / ".collide").exists()  # nothing prepared, no probe, no Ray results
    assert not (tmp_path / "e").exists()


def test_a_password_on_the_command_line_is_refused(tmp_path, capsys):
    assert main(["sweep", "--tracking-uri", "postgresql://bob:hunter2@db/mlflow"]) == 2
    err = capsys.readouterr().err
    assert "carries a credential" in err and "MLFLOW_TRACKING_URI" in err and "hunter2" not in err
    assert main(["pareto", "--experiment", "x", "--tracking-uri",
                 "https://tok@mlflow.example"]) == 2
    assert main(["sweep", "--preset", "smoke", "--set",
                 "tracking_uri=http://u:hunter2@h:5000"]) == 2
    err = capsys.readouterr().err
    assert "--set tracking_uri http://u:***@h:5000 carries a credential" in err
    assert "hunter2" not in err


def _grep_tree(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and not p.is_symlink()
            and needle in p.read_bytes()]


def _cmdlines_with(needle: bytes) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            cmdline = (entry / "cmdline").read_bytes() if entry.name.isdigit() else b""
        except OSError:
            continue
        if needle in cmdline:
            found.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return found


def test_credentials_never_reach_params_artifacts_output_files_or_process_arguments(
    tmp_path, server):
    secret = "pw-7c1d93"
    uri = server.uri.replace("http://", f"http://carol:{secret}@")
    launch = tmp_path / "launch"
    launch.mkdir()
    sweep = collide(["sweep", "--name", "secret", "--results-dir", str(launch / "results"), *FOUR],
                    launch,
                    env={"MLFLOW_TRACKING_URI": uri})
    seen: list[str] = []
    try:
        while sweep.poll() is None:  # watch the process list for the whole sweep
            seen += _cmdlines_with(secret.encode())
            time.sleep(0.2)
    finally:
        kill_group(sweep)
    assert sweep.returncode == 0, output_of(sweep)
    assert seen == []
    out = output_of(sweep)
    assert secret not in out and "carol:***@127.0.0.1" in out
    client = MlflowClient(server.uri)
    used = find_sweep(client, "secret")
    for run in [used.parent, *used.runs]:
        assert not any(secret in str(v) for v in run.data.params.values())
        assert not any(secret in str(v) for v in run.data.tags.values())
    config = Path(client.download_artifacts(used.parent_run_id, "sweep_config.yaml",
                                            str(tmp_path))).read_text()
    assert "tracking_uri: null" in config  # it came from the environment, as it should
    assert used.parent.data.tags["collide.tracking_uri"].startswith("http://carol:***@127.0.0.1")
    # Tune's tuner.pkl and experiment state included
    assert _grep_tree(launch, secret.encode()) == []
    assert _grep_tree(server.root, secret.encode()) == []


def test_a_server_blip_during_a_sweep_loses_nothing(tmp_path, server):
    sweep = collide(["sweep", "--name", "blip", "--tracking-uri", server.uri, *FOUR], tmp_path)
    try:
        wait_until(lambda: len(finished_trial_runs(server.db)) >= 1, 300, "a finished trial")
        server.stop()
        time.sleep(3)
        server.start()  # same port, same store: back within the tracker's 60 s of retries
        assert sweep.wait(timeout=600) == 0, output_of(sweep)
    finally:
        kill_group(sweep)
    assert "retrying" in output_of(sweep)
    used = find_sweep(MlflowClient(server.uri), "blip")
    assert Counter(r.info.status for r in used.runs) == Counter({"FINISHED": 4})
    for row in trial_rows(used.runs):
        assert row["excluded"] is None
        assert "bundles" in [a.path for a in MlflowClient(server.uri).list_artifacts(row["run_id"])]


def test_an_outage_ends_with_exit_3_and_sync_uploads_everything_later(tmp_path, server):
    sweep = collide(["sweep", "--name", "outage", "--tracking-uri", server.uri, "--set",
                     "tracking_retry_s=2",
                     *FOUR], tmp_path)
    try:
        wait_until(lambda: len(finished_trial_runs(server.db)) >= 1, 300, "a finished trial")
        server.stop()
        assert sweep.wait(timeout=600) == 3
    finally:
        kill_group(sweep)
    out = output_of(sweep)
    assert "MLflow became unreachable" in out and "Nothing is lost" in out
    sweep_dir = re.search(r"collide sync (\S+)", out).group(1)
    server.start()
    sync = collide(["sync", sweep_dir, "--tracking-uri", server.uri], tmp_path)
    assert sync.wait(timeout=300) == 0, output_of(sync)
    client = MlflowClient(server.uri)
    used = find_sweep(client, "outage")
    assert used.parent.info.status == "FINISHED"
    assert Counter(r.info.status for r in used.runs
                   if r.data.tags.get("collide.outcome") == "completed") == \
        Counter({"FINISHED": 4})
    for row in trial_rows(used.runs):
        assert row["excluded"] is None
        assert "bundles" in [a.path for a in client.list_artifacts(row["run_id"])]
    assert {"pareto.csv", "pareto.md", "pareto.png"} <= {
        a.path for a in client.list_artifacts(used.parent_run_id)}
    again = collide(["sync", sweep_dir, "--tracking-uri", server.uri], tmp_path)
    assert again.wait(timeout=120) == 0 and "nothing to do" in output_of(again)
