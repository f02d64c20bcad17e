"""`resume_sweep` refusals that need no Ray: a real sqlite MLflow store holding a sweep's
records."""

from __future__ import annotations

import os

import pytest
import yaml

from sweep.config import load_config
from sweep.errors import UserError
from sweep.tracking.writer import SweepTracker
from sweep.tune.resume import resume_sweep
from sweep.tune.sweep_data import sweep_fingerprint


@pytest.fixture(params=[False, True], ids=["one-data-set", "data-varies-with-seed"])
def recorded_sweep(tmp_path, request):
    """A sweep of a CSV table whose driver died: parent RUNNING, config and data fingerprint
    recorded; once with one data set, once with each seed's own random split."""
    vary = request.param
    data = tmp_path / "clicks.csv"
    data.write_text("label,user\n" + "".join(f"{i % 2},u{i % 7}\n" for i in range(40)))
    params = {"path": str(data), "label": "label", "categorical": ["user"]}
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker.start(store, "tbl", retry_s=0.5)
    experiment_dir = tmp_path / "ray_results" / tracker.parent_run_id
    experiment_dir.mkdir(parents=True)
    # only its presence is checked first
    (experiment_dir / "tuner.pkl").write_bytes(b"Ray Tune state")
    data_config = {"source": "table", "params": params, "vary_with_seed": vary}
    config = load_config({"name": "tbl", "data": data_config,
                          "grid": {"strategies": ["hash"], "compressions": [2], "dims": [4],
                                   "seeds": [0, 1]}})
    stored = {"name": "tbl", "data": data_config,
              "grid": {"strategies": ["hash"], "compressions": [2.0], "dims": [4],
                       "seeds": [0, 1]},
              "model": {"full_threshold": 0}, "resources": {"num_cpus": 1}}
    tracker.write({"op": "log_text", "ref": "parent", "file": "sweep_config.yaml",
                   "text": yaml.safe_dump(stored)})
    tracker.write({"op": "set_tags", "ref": "parent", "tags": {
        "collide.experiment_dir": str(experiment_dir),
        "collide.data_fingerprint": sweep_fingerprint(config, [0, 1])}})
    return store, data, tracker


def test_resume_refuses_data_that_changed_since_the_sweep_started(recorded_sweep):
    store, data, tracker = recorded_sweep
    data.write_text(data.read_text() + "1,u99\n")
    os.utime(data, ns=(1, 1))
    with pytest.raises(UserError, match=rf"sweep {tracker.parent_run_id} trained on prepared data "
                                        r"\w+, but its data source now gives \w+ .*Start a new "
                                        r"sweep instead"):
        resume_sweep("tbl", tracking_uri=store)


def test_resume_keeps_the_stored_config(recorded_sweep):
    store, _, _ = recorded_sweep
    with pytest.raises(UserError, match=r"a resumed sweep keeps its stored config; \['train'\] "
                                        r"would have no effect \(allowed: address, results_dir, "
                                        r"resources.num_cpus\)"):
        resume_sweep("tbl", tracking_uri=store, overrides={"train": {"epochs": 9}})


def test_resume_needs_the_ray_tune_state(recorded_sweep, tmp_path):
    store, _, tracker = recorded_sweep
    with pytest.raises(UserError, match=r"no Ray Tune state at .*elsewhere.* \(tuner.pkl "
                                        r"missing\); give --storage-path"):
        resume_sweep("tbl", tracking_uri=store, storage_path=str(tmp_path / "elsewhere"))


def test_damaged_ray_tune_state_is_refused_and_the_sweep_left_as_it_was(recorded_sweep):
    """tuner.pkl cut short (a disk that filled, a copy that stopped): exit 2 naming the file, and
    the parent run and its trials are not touched (not marked FAILED or KILLED)."""
    from mlflow.tracking import MlflowClient

    store, _, tracker = recorded_sweep
    client = MlflowClient(store)
    before = client.get_run(tracker.parent_run_id)
    with pytest.raises(UserError, match=r"tuner\.pkl: the sweep's Ray Tune state cannot be read "
                                        r"\(\w+: .*\), so the sweep cannot be resumed"):
        resume_sweep("tbl", tracking_uri=store)
    after = client.get_run(tracker.parent_run_id)
    assert after.info.status == before.info.status == "RUNNING"
    assert after.data.tags == before.data.tags
