"""What an operator or a hostile reviewer tries (issue 21): impossible requests, a taken port,
a file where a directory belongs, numbers that break the record, credentials echoed back,
devices as input, names from a store used as paths, a full disk. Real processes, files,
sockets and MLflow stores; no mocks."""

from __future__ import annotations

import base64
import http.server
import io
import json
import logging
import os
import socket
import threading
from contextlib import redirect_stderr
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sweep.cli import main
from sweep.datasets import get_source, prepare
from sweep.names import safe_name
from sweep.tracking.writer import SweepTracker
from sweep.tune.cluster import shutdown_ray
from sweep.tune.output import LOG_FILE, PENDING_LOGGER, RayOutput

SMALL = ["--set", "data.params={num_rows: 3000, vocab_sizes: [40, 300], num_dense: 2}"]


@pytest.fixture
def store(tmp_path, monkeypatch):
    """An MLflow store of collide's in a fresh working directory."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


def test_a_storage_path_that_is_a_file_is_refused_before_the_sweep_exists(store, tmp_path,
                                                                          capsys):
    (tmp_path / "afile").write_text("mine")
    assert main(["sweep", "--preset", "smoke", "--name", "sp", "--storage-path", "afile",
                 *SMALL]) == 2
    assert f"storage_path {tmp_path / 'afile'} is not a directory" in capsys.readouterr().err
    assert MlflowClient(store).get_experiment_by_name("sp") is None  # no parent run to resume
    assert (tmp_path / "afile").read_text() == "mine"


def test_ui_refuses_a_port_someone_else_holds_and_prints_no_url(store, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["ui", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert f"collide: error: port {port} on 127.0.0.1 is taken" in captured.err
    assert "http://" not in captured.out


def test_a_diverging_collide_train_is_exit_2_with_the_epoch_and_a_hint(tmp_path, capsys):
    data = prepare(get_source("synthetic", num_rows=3000, vocab_sizes=(40, 300)), tmp_path / "d")
    code = main(["train", "--data", str(data.path), "--lr", "1e30", "--epochs", "1", "--out",
                 str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "training loss became nan at epoch 1" in err
    assert "try a lower lr (--lr; the default is 0.001)" in err
    assert "Traceback" not in err and not (tmp_path / "t").exists()


def test_non_finite_prepared_data_is_exit_2_naming_the_file_and_row(tmp_path, capsys):
    data = prepare(get_source("synthetic", num_rows=3000, vocab_sizes=(40, 300)), tmp_path / "d")
    dense = np.load(data.path / "dense.npy", mmap_mode="r+")
    dense[77, 1] = np.inf
    dense.flush()
    del dense
    code = main(["train", "--data", str(data.path), "--epochs", "1", "--out", str(tmp_path / "t")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{data.path / 'dense.npy'}: row 77, dense column 'I2' holds inf" in err


@pytest.mark.parametrize("args", [["sweep", "--preset", "smoke", "--compressions", "4,inf"],
                                  ["train", "--compression", "inf", "--out", "t"]])
def test_an_infinite_compression_is_refused_before_any_work(tmp_path, monkeypatch, capsys, args):
    monkeypatch.chdir(tmp_path)
    assert main(args) == 2
    assert "must be a finite number" in capsys.readouterr().err
    assert not (tmp_path / ".collide").exists()


class _Echo(http.server.BaseHTTPRequestHandler):
    """A tracking server that refuses every request, repeating the credential it was sent."""

    def _refuse(self) -> None:
        body = f"refused; you sent Authorization: {self.headers.get('Authorization')}".encode()
        self.send_response(403)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _refuse

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize("credential", ["token", "basic"])
def test_a_credential_echoed_by_the_server_is_never_printed(monkeypatch, capsys, credential):
    server = http.server.HTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{server.server_port}")
        if credential == "token":
            monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cr3t-t0ken-9f2")
            secrets = ["s3cr3t-t0ken-9f2"]
        else:
            monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
            monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "hunter2-pw")
            secrets = ["hunter2-pw", base64.b64encode(b"alice:hunter2-pw").decode()]
        assert main(["-v", "pareto", "--experiment", "x"]) == 2
    finally:
        server.shutdown()
        server.server_close()
    captured = capsys.readouterr()
    assert "Authorization: " in captured.err  # the echo was printed, redacted
    for secret in secrets:
        assert secret not in captured.err + captured.out


@pytest.mark.parametrize(("path", "kind"), [("fifo", "a FIFO (named pipe)"),
                                            ("/dev/zero", "a character device")])
def test_a_device_or_fifo_as_input_is_named_for_what_it_is(tmp_path, capsys, path, kind):
    if path == "fifo":
        os.mkfifo(tmp_path / "fifo")
        path = str(tmp_path / "fifo")
    assert main(["prepare", "criteo", "--path", path, "--out", str(tmp_path / "p")]) == 2
    assert f"{path}: input file for source 'criteo' is {kind}, not a regular file" in \
        capsys.readouterr().err


@pytest.mark.parametrize(("name", "safe"), [("../esc", "___esc"), ("a/b", "a_b"),
                                            ("x\0y", "x_y"), ("..", "__"), ("", "_"),
                                            ("quick-1.2", "quick-1.2")])
def test_safe_name_keeps_a_name_in_its_directory(name, safe):
    assert safe_name(name) == safe
    assert Path("/base", safe_name(name)).resolve().parent == Path("/base")


def _sweep_with_one_trial(store: str, experiment: str) -> SweepTracker:
    """A sweep of `experiment` in `store` with one trial that logged its first epoch."""
    tracker = SweepTracker.start(store, experiment, retry_s=0.5)
    tracker.start_trial("t1", "hash-c4-d8-s0", {"strategy": "hash", "compression": 4.0, "dim": 8,
                                                "seed": 0})
    tracker.log_metrics("t1", {"val_logloss": 0.5, "best_val_logloss": 0.5, "total_bytes": 100},
                        step=1)
    return tracker


def test_pareto_of_an_experiment_named_like_a_path_writes_in_the_working_directory(store, tmp_path,
                                                                                   capsys):
    tracker = _sweep_with_one_trial(store, "../esc")
    tracker.end_trial("t1", "completed")
    tracker.end_sweep("FINISHED", {}, "completed")
    assert main(["pareto", "--experiment", "../esc"]) == 0, capsys.readouterr().err
    assert (tmp_path / "___esc-pareto" / "pareto.csv").is_file()
    assert not (tmp_path.parent / "esc-pareto").exists()


def test_an_export_whose_artifact_is_missing_names_the_run_not_a_temporary_path(store, tmp_path,
                                                                               capsys):
    tracker = _sweep_with_one_trial(store, "exp")
    staged = tmp_path / "staged"
    (staged / "bundles" / "00-C1").mkdir(parents=True)  # a bundle directory without its files
    (staged / "metrics.json").write_text(json.dumps({
        "feature_order": ["C1"], "features": {"C1": {"bundle": "bundles/00-C1"}}}))
    tracker.log_artifacts("t1", str(staged))
    tracker.end_trial("t1", "completed")
    tracker.end_sweep("FINISHED", {}, "completed")
    run_id = tracker.refs["trial/t1/1"]
    assert main(["export", "--experiment", "exp", "--max-bytes", "1e9", "--out", "e"]) == 2
    err = capsys.readouterr().err
    assert f"run {run_id}: its artifacts cannot be exported: " in err
    assert "bundles/00-C1/manifest.json" in err and "collide-export-" not in err


def test_resume_with_a_name_refuses_a_preset_that_would_have_no_effect(store, capsys):
    assert main(["sweep", "--resume", "--name", "x", "--preset", "quick"]) == 2
    assert "--preset would have no effect" in capsys.readouterr().err


def test_a_full_disk_under_the_storage_path_is_one_line_naming_the_file(tmp_path):
    (tmp_path / LOG_FILE).symlink_to("/dev/full")  # every write fails: No space left on device
    err = io.StringIO()
    with redirect_stderr(err), RayOutput(verbose=False) as output:
        output.write("a line kept until the sweep directory is known")
        output.attach(tmp_path)
        for i in range(200):
            logging.getLogger("ray.tune").warning("Tune line %d", i)
    assert err.getvalue() == (f"collide: cannot write Ray's output to {tmp_path / LOG_FILE} (No "
                              "space left on device); the rest of it is dropped\n")


def test_why_no_trial_runs_reaches_the_terminal(capsys):
    with RayOutput(verbose=False):
        logging.getLogger(PENDING_LOGGER).warning("You asked for 4 CPUs but the cluster has 2")
    assert "collide: no trial is running; Ray Tune says: You asked for 4 CPUs" in \
        capsys.readouterr().err



@pytest.mark.slow
@pytest.mark.parametrize(("request_args", "asked"), [
    (["--cpus-per-trial", "4"], "a trial asks for 4 CPU and 0 GPU on one node"),
    (["--gpus-per-trial", "1"], "a trial asks for 1 CPU and 1 GPU on one node")])
def test_a_trial_no_node_can_ever_hold_stops_the_sweep_before_any_trial(store, capsys,
                                                                        request_args, asked):
    import ray

    if ray.is_initialized() and ray.cluster_resources().get("GPU") and "--gpus-per-trial" in \
            request_args:
        pytest.skip("this machine's Ray has a GPU")
    try:
        code = main(["sweep", "--preset", "smoke", "--name", "infeasible", "--num-cpus", "2",
                     *request_args, *SMALL])
    finally:
        shutdown_ray()  # as `collide` does after main: later tests expect no Ray in this process
    err = capsys.readouterr().err
    assert code == 2, err
    assert asked in err and "the cluster has " in err and "2 CPU" in err
    assert MlflowClient(store).get_experiment_by_name("infeasible") is None
