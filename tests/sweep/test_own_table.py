"""README's "Your own table" walk-through on the generated census-like and click-like tables
(benchmarks/example_tables.py), and the sweep that must refuse to run when no strategy maps
anything."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sweep.cli import main

ROOT = Path(__file__).resolve().parents[2]


def _example_tables():
    spec = importlib.util.spec_from_file_location("example_tables",
                                                  ROOT / "benchmarks" / "example_tables.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    out = tmp_path_factory.mktemp("tables")
    module = _example_tables()
    module.write_census(out, num_rows=8000)
    module.write_clicks(out, num_rows=12000)
    return out


@pytest.mark.parametrize("table", ["census", "clicks"])
def test_readme_walk_through_trains_full_and_really_hashes(tables, tmp_path, table, capsys,
                                                           monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["prepare", "table", "--path", str(tables / f"{table}.csv"), "--schema-file",
                 str(tables / f"{table}.yaml"), "--out", f"prepared/{table}"]) == 0
    printed = capsys.readouterr().out
    assert "dense transforms (statistics of the train split):" in printed
    assert "log1p_standardize" in printed
    results = {}
    for name, strategy in (("full", ["full"]), ("hash4", ["hash", "--compression", "4"])):
        assert main(["train", "--data", f"prepared/{table}", "--strategy", *strategy, "--out",
                     f"runs/{table}-{name}"]) == 0
        written = tmp_path / "runs" / f"{table}-{name}" / "metrics.json"
        results[name] = json.loads(written.read_text())["metrics"]
    full, hashed = results["full"], results["hash4"]
    assert full["test_logloss"] < full["constant_test_logloss"] and not full["worse_than_constant"]
    assert hashed["features_mapped"] > 0 and hashed["collision_rate"] > 0
    assert hashed["total_bytes"] < full["total_bytes"]
    _serves_the_values_of_the_csv(tables / f"{table}.csv", tmp_path / "runs" / f"{table}-hash4",
                                  tmp_path / "prepared" / table, tmp_path / "exported")


def _serves_the_values_of_the_csv(csv_path: Path, run: Path, prepared: Path, out: Path) -> None:
    """The hashed run, exported as `collide export` writes it, maps each raw value of the CSV
    (the text `occupation-3`, the hex-string ids of the click log) with the numpy-only loader
    to the row its trial gave that row's prepared id."""
    import csv

    import numpy as np

    from mappers import load_bundle, portable
    from sweep.datasets import load_prepared
    from sweep.frontier.export import write_export

    details = json.loads((run / "metrics.json").read_text())
    point = {"run_id": "local", "name": run.name, **details["metrics"]}
    write_export(point, {"max_bytes": None, "max_val_loss": None, "ranked": "trials"}, run, out,
                 experiment="walk-through", parent_run_id="local")
    export, dataset = portable.load_export(out), load_prepared(prepared)
    with csv_path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    for name in dataset.feature_names:
        encoding = export.feature(name)["encoding"]
        assert encoding["kind"] == "text"  # labels like "occupation-3", hex strings: hashed
        trial = load_bundle(run / details["features"][name]["bundle"])
        used = trial.transform(np.asarray(dataset.sparse[name].values))
        np.testing.assert_array_equal(export.transform(name, [r[name] for r in rows]), used,
                                      err_msg=name)


def test_a_sweep_whose_strategies_map_nothing_fails_before_ray(tables, tmp_path, capsys,
                                                               monkeypatch):
    import ray

    monkeypatch.chdir(tmp_path)
    config = tmp_path / "sweep.yaml"
    config.write_text(json.dumps({
        "name": "census", "data": {"source": "table", "params": {
            "path": str(tables / "census.csv"), "schema_file": str(tables / "census.yaml")}},
        "grid": {"strategies": ["full", "hash", "frequency_embedding"], "compressions": [4],
                 "dims": [4]},
        "model": {"full_threshold": 256}}))
    code = main(["sweep", "--config", str(config), "--tracking-uri",
                 f"sqlite:///{tmp_path / 'mlflow.db'}"])
    err = capsys.readouterr().err
    assert code == 2
    assert ("strategies ['hash', 'frequency_embedding'] would map no feature: the largest train "
            "vocabulary is 50 (native_country), and features with vocab <= model.full_threshold "
            "(256) keep a full table, so every trial would train the full model. Lower it below "
            "50, e.g. --set model.full_threshold=12") in err
    assert not ray.is_initialized()
    assert not (tmp_path / ".collide" / "probes").exists()  # nothing trained, not even the probe
