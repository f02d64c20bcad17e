"""End to end: a real Ray, a real MLflow sqlite store, the real CLI. No mocks."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.tracking import MlflowClient

from mappers import load_bundle
from sweep.cli import main
from sweep.config import load_config
from sweep.datasets import load_prepared
from sweep.frontier import pareto_mask
from sweep.serving import load_export
from sweep.tracking import runs_of_sweep
from sweep.trial import TrialConfig, fit_mappers

pytestmark = pytest.mark.slow

TINY = ["--set", "data.params={num_rows: 12000, vocab_sizes: [40, 600, 3000], num_dense: 2}",
        "--set", "model={bottom_mlp: [8], top_mlp: [8]}", "--set", "probe={dim: 4, epochs: 1, lr: 0.01}",
        "--set", "train.batch_size=512", "--epochs", "2", "--num-cpus", "2", "--dims", "8", "--seeds", "0"]


@pytest.fixture(scope="module")
def launch(tmp_path_factory):
    """One launch directory (the cwd, as for a user) and one Ray for the module."""
    import ray

    path = tmp_path_factory.mktemp("launch")
    before = Path.cwd()
    os.chdir(path)
    yield path
    os.chdir(before)
    ray.shutdown()


@pytest.fixture(scope="module")
def grid_sweep(launch):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e", "--strategies", "hash,frequency_embedding",
                 "--compressions", "4,16", "--results-dir", str(launch / "results"), *TINY])
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    parent, runs = runs_of_sweep(client, "e2e")
    return code, client, parent, runs


def test_grid_gives_four_finished_nested_runs_under_one_parent(grid_sweep):
    code, client, parent, runs = grid_sweep
    assert code == 0
    assert len(runs) == 4
    assert {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent}
    assert sorted(r.info.run_name for r in runs) == [
        "frequency_embedding-c16-d8-s0", "frequency_embedding-c4-d8-s0", "hash-c16-d8-s0", "hash-c4-d8-s0"]
    assert client.get_run(parent).data.params["grid.strategies"] == "('hash', 'frequency_embedding')"
    resolved = client.download_artifacts(parent, "sweep_config.yaml")
    again = load_config(yaml.safe_load(Path(resolved).read_text()))  # the parent's config runs as --config
    assert again.name == "e2e" and again.grid.strategies == ("hash", "frequency_embedding")


def test_nested_runs_hold_params_epochs_sizes_and_bundles(grid_sweep):
    _, client, _, runs = grid_sweep
    for run in runs:
        assert run.data.params["strategy"] in ("hash", "frequency_embedding")
        assert run.data.params["train.epochs"] == "2"
        history = client.get_metric_history(run.info.run_id, "val_logloss")
        assert [m.step for m in history] == [1, 2]
        metrics = run.data.metrics
        for key in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes", "test_logloss",
                    "collision_rate", "compression_ratio", "collision.C3.nmi", "collision.C3.collision_rate"):
            assert key in metrics, key
        assert metrics["total_bytes"] == metrics["embedding_bytes"] + metrics["mapping_bytes"] + metrics["dense_bytes"]
        bundles = [a.path for a in client.list_artifacts(run.info.run_id, "bundles")]
        assert len(bundles) == 3 and bundles[0].startswith("bundles/00-")


def test_pareto_csv_flags_match_brute_force(grid_sweep, launch):
    with open(launch / "results" / "pareto.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    points = np.array([[float(r["total_bytes"]), float(r["val_logloss"])] for r in rows])
    expected = [not any((q <= p).all() and (q < p).any() for q in points) for p in points]
    assert [r["on_frontier"] == "True" for r in rows] == expected
    assert list(pareto_mask(points)) == expected
    assert (launch / "results" / "pareto.png").stat().st_size > 1000
    assert "hash" in (launch / "results" / "pareto.md").read_text()


def test_export_under_budget_picks_the_right_point_and_maps_like_the_trial(grid_sweep, launch):
    _, client, _, runs = grid_sweep
    finished = [(r.data.metrics["total_bytes"], r.data.metrics["best_val_logloss"], r) for r in runs]
    budget = sorted(b for b, _, _ in finished)[2]  # admits the three smallest models
    expected = min((v, b, r.info.run_id) for b, v, r in finished if b <= budget)[2]
    out = launch / "exported"
    assert main(["export", "--experiment", "e2e", "--max-bytes", str(budget), "--out", str(out)]) == 0
    manifest = json.loads((out / "export.json").read_text())
    assert manifest["source_run_id"] == expected
    mapping = load_export(out)
    run = client.get_run(expected)
    params = run.data.params
    data = load_prepared(params["data"])
    trial = TrialConfig(data=str(data.path), strategy=params["strategy"], compression=float(params["compression"]),
                        dim=8, seed=0, full_threshold=int(params["full_threshold"]),
                        mapper_params={k.split(".", 1)[1]: yaml.safe_load(v) for k, v in params.items()
                                       if k.startswith("mapper_params.")})
    probe = None
    if trial.strategy == "frequency_embedding":
        from models import ProbeConfig
        from sweep.probe_cache import probe_embeddings

        probe = probe_embeddings(data, ProbeConfig(dim=4, epochs=1, lr=0.01), 0, launch / ".collide" / "probes")
    refit = fit_mappers(trial, data, probe)
    raw = np.random.default_rng(0).integers(-2**63, 2**63 - 1, size=10_000, dtype=np.int64)
    raw[:5000] = np.asarray(data.sparse["C3"].values[:5000])  # known ids as well as unseen ones
    for feature in mapping.features:
        got, want = mapping.transform(feature, raw), refit[feature].transform(raw)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,),
                        strict=True):
            np.testing.assert_array_equal(g, w)


def test_failed_trial_is_isolated_and_recorded(launch):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-fail", "--strategies", "hash",
                 "--compressions", "4,16", "--set", "fail_trials=[hash-c16-d8-s0]", *TINY])
    assert code == 1  # documented: some trials failed
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-fail")
    status = {r.info.run_name: r.info.status for r in runs}
    assert status == {"hash-c4-d8-s0": "FINISHED", "hash-c16-d8-s0": "FAILED"}
    failed = next(r for r in runs if r.info.status == "FAILED")
    assert "injected failure for trial hash-c16-d8-s0" in failed.data.tags["error"]


def test_optuna_multi_objective_search_produces_a_frontier(launch):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-optuna", "--search", "optuna", "--num-samples", "6",
                 "--strategies", "hash,frequency,qr", "--compressions", "2,4,8,16", *TINY])
    assert code == 0
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-optuna")
    assert len(runs) == 6 and {r.info.status for r in runs} == {"FINISHED"}
    assert main(["pareto", "--experiment", "e2e-optuna", "--out", str(launch / "optuna-pareto")]) == 0
    with open(launch / "optuna-pareto" / "pareto.csv", newline="") as f:
        flags = [r["on_frontier"] == "True" for r in csv.DictReader(f)]
    assert len(flags) == 6 and any(flags)


def test_bad_config_fails_before_ray_starts(tmp_path, capsys):
    import ray

    was_running = ray.is_initialized()
    config = tmp_path / "bad.yaml"
    config.write_text("name: bad\ngrid:\n  strategies: [hash, nosuch]\n")
    assert main(["sweep", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert "grid: strategies ['nosuch'] are unknown; valid:" in err
    config.write_text("name: bad\ntrain:\n  epoch: 3\n")
    assert main(["sweep", "--config", str(config)]) == 2
    assert "unknown key train.epoch" in capsys.readouterr().err
    assert ray.is_initialized() == was_running
    with pytest.raises(ValueError, match="unknown key grid.strategy; valid keys of grid"):
        load_config({"grid": {"strategy": ["hash"]}})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ui_serves_the_sweep_runs(grid_sweep, launch):
    port = _free_port()
    uri = f"sqlite:///{launch / 'mlflow.db'}"
    proc = subprocess.Popen([sys.executable, "-m", "sweep.cli", "ui", "--port", str(port), "--tracking-uri", uri],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}/api/2.0/mlflow"
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{base}/experiments/get-by-name?experiment_name=e2e", timeout=5) as r:
                    experiment = json.load(r)["experiment"]
                break
            except OSError:
                if time.time() > deadline or proc.poll() is not None:
                    raise
                time.sleep(1)
        body = json.dumps({"experiment_ids": [experiment["experiment_id"]], "max_results": 100}).encode()
        request = urllib.request.Request(f"{base}/runs/search", data=body, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as r:
            names = {run["info"]["run_name"] for run in json.load(r)["runs"]}
        assert {"hash-c4-d8-s0", "frequency_embedding-c16-d8-s0"} <= names
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_bundle_artifact_round_trips(grid_sweep, tmp_path):
    _, client, _, runs = grid_sweep
    local = client.download_artifacts(runs[0].info.run_id, "bundles", str(tmp_path))
    mapper = load_bundle(next(Path(local).iterdir()))
    assert mapper.transform(np.arange(10)).shape == (10,)


def test_asha_scheduler_stops_weak_trials_and_keeps_their_runs(launch):
    code = main(["sweep", "--preset", "smoke", "--name", "e2e-asha", "--scheduler", "asha", "--strategies", "hash",
                 "--compressions", "2,8,32,128", *TINY, "--epochs", "3"])  # the last --epochs wins
    assert code == 0
    client = MlflowClient(f"sqlite:///{launch / 'mlflow.db'}")
    _, runs = runs_of_sweep(client, "e2e-asha")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    for run in runs:  # stopped or not, every run can be placed on the Pareto axes
        assert {"best_val_logloss", "total_bytes"} <= set(run.data.metrics)
