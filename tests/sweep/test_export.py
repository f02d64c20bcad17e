"""`collide export` against a real sqlite MLflow store holding a sweep (no Ray needed):
ownership of --out, and run artifacts that try to lead export outside its directories."""

from __future__ import annotations

import json

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from mappers import get_mapper, portable, save_bundle, save_tables
from sweep.cli import main
from sweep.errors import UserError
from sweep.serving import load_export
from sweep.tracking.writer import SweepTracker
from sweep.trial.precision import read_back

# the trial's trained table of C1 (its map has 50 rows), dim 8
TRAINED = np.random.default_rng(0).normal(0, 0.1, (50, 8)).astype(np.float32)


def _sweep_with_one_trial(tmp_path, details_edit=None, metrics=None) -> str:
    """A completed sweep `exp` with one trial whose artifacts are like a real trial's."""
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker.start(store, "exp", retry_s=0.5)
    tracker.start_trial("t1", "frequency-c4-d8-s0",
                        {"strategy": "frequency", "compression": 4.0, "dim": 8, "seed": 0})
    tracker.log_metrics("t1", {"best_val_logloss": 0.5, "total_bytes": 1000, "embedding_bytes": 800,
                               "mapping_bytes": 100, "dense_bytes": 100, **(metrics or {})},
                       step=1)
    artifacts = tmp_path / "artifacts"
    mapper = get_mapper("frequency", num_rows=50, hot_fraction=0.5).fit(
        np.arange(200, dtype=np.int64), np.arange(200, 0, -1, dtype=np.int64))
    save_bundle(mapper, artifacts / "bundles" / "00-C1")
    save_tables([TRAINED], "fp32", "C1", artifacts / "tables" / "00-C1")
    details = {"feature_order": ["C1"],
               "features": {"C1": {"bundle": "bundles/00-C1", "tables": "tables/00-C1",
                                   "vocab_size": 200}}}
    if details_edit is not None:
        details_edit(details)
    (artifacts / "metrics.json").write_text(json.dumps(details))
    tracker.log_artifacts("t1", str(artifacts))
    tracker.end_trial("t1", "completed")
    tracker.end_sweep("FINISHED", {}, "completed")
    return store


def _export(store, out, capsys=None):
    return main(["export", "--experiment", "exp", "--max-bytes", "1e9", "--tracking-uri", store,
                 "--out", str(out)])


def test_export_writes_a_verified_bundle_set_and_replaces_only_its_own(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path)
    out = tmp_path / "exported"
    assert _export(store, out) == 0
    mapping = load_export(out)
    assert mapping.features == ["C1"] and mapping.manifest["features"][0]["digest"]
    assert _export(store, out) == 0  # collide's own export: replaced atomically
    assert sorted(p.name for p in tmp_path.iterdir()) == ["artifacts", "exported", "mlartifacts",
                                                          "mlflow.db"]


def test_export_refuses_a_users_directory_and_the_working_directory(tmp_path, capsys, monkeypatch):
    store = _sweep_with_one_trial(tmp_path)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.pt").write_text("weights")
    assert _export(store, mine) == 2
    assert f"--out {mine} is not empty and was not written by collide" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["model.pt"]
    monkeypatch.chdir(tmp_path)
    assert _export(store, ".") == 2  # once emptied the working directory, mlflow.db included
    assert "is the working directory or one of its parents" in capsys.readouterr().err
    assert (tmp_path / "mlflow.db").is_file()


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["features"]["C1"].update(bundle="../../../outside"), "expected "
                                                                      "bundles/<directory>"),
    (lambda d: d["features"]["C1"].update(bundle="bundles/../../x"),
     "expected bundles/<directory>"),
    (lambda d: d["features"]["C1"].update(bundle="/etc"), "expected bundles/<directory>"),
    (lambda d: d.update(feature_order=["C1", "C1"]), "feature names must be unique, repeated: "
                                                     "['C1']"),
    (lambda d: d.update(feature_order=[]), "feature_order must be a non-empty list"),
    (lambda d: d.pop("feature_order"), "no feature_order list"),
])
def test_export_does_not_follow_artifacts_outside_the_run(tmp_path, capsys, edit, message):
    store = _sweep_with_one_trial(tmp_path, edit)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert _export(store, tmp_path / "exported") == 2
    assert message in capsys.readouterr().err or pytest.fail(capsys.readouterr().err)
    # nothing written, nothing left staged
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_export_names_the_sweep_it_used(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path)
    SweepTracker.start(store, "exp", retry_s=0.5)  # a newer sweep that never finished
    assert _export(store, tmp_path / "exported") == 0
    text = capsys.readouterr().err
    parents = MlflowClient(store).search_runs(["1"], "tags.`collide.kind` = 'sweep'",
                                              order_by=["attributes.start_time DESC"])
    assert f"exporting from sweep {parents[1].info.run_name}" in text
    assert f"skipped newer: {parents[0].info.run_id} is RUNNING" in text


def test_export_carries_the_dense_transforms_for_serving(tmp_path):
    entries = [{"column": "weight", "kind": "log1p_standardize", "mean": 2.0, "std": 0.5,
                "clip_min": None,
                "reason": "skewness 9.0 (|skewness| > 2)"},
               {"column": "age", "kind": "none", "mean": 0.0, "std": 1.0, "clip_min": None,
                "reason": "requested"}]
    store = _sweep_with_one_trial(tmp_path, lambda d: d.update(dense_transforms=entries))
    assert _export(store, tmp_path / "exported") == 0
    mapping = load_export(tmp_path / "exported")
    assert mapping.dense_transforms == entries
    np.testing.assert_allclose(mapping.transform_dense(np.array([[np.e - 1, 40.0]])),
                               [[(1.0 - 2.0) / 0.5, 40.0]],
                               rtol=1e-6)


def test_export_refuses_a_bad_dense_transform(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path, lambda d: d.update(
        dense_transforms=[{"column": "w", "kind": "cube"}]))
    assert _export(store, tmp_path / "exported") == 2
    assert "metrics.json: dense transform of column 'w' must be one of" in capsys.readouterr().err


def _encode(encoding):
    return lambda d: d["features"]["C1"].update(encoding=encoding)


def test_export_carries_each_features_encoding_and_prints_no_download_bars(tmp_path, capsys):
    text = {"kind": "text", "multi_valued": False, "separator": None, "hash": "blake2b-8-le"}
    store = _sweep_with_one_trial(tmp_path, _encode(text))
    assert _export(store, tmp_path / "exported") == 0
    err = capsys.readouterr().err
    # a pipe: neither MLflow's per-file bars nor the terminal's progress line
    assert "Downloading artifacts" not in err and "fetching the artifacts" not in err
    mapping = load_export(tmp_path / "exported")
    assert mapping.manifest["features"][0]["encoding"] == text
    rows = mapping.transform("C1", ["Sales", "Sales", None])
    assert rows[0] == rows[1] and rows.shape == (3,)


def test_an_export_without_encodings_warns_and_maps_int64_ids_only(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path)  # metrics.json records no encoding: older data
    assert _export(store, tmp_path / "exported") == 0
    assert ("feature C1 records no encoding (its data was prepared by an older collide): the "
            "export maps int64 ids only (transform_ids)") in capsys.readouterr().err
    mapping = load_export(tmp_path / "exported")
    assert mapping.transform_ids("C1", [3]).shape == (1,)
    with pytest.raises(UserError, match=r"feature 'C1' records no encoding .* give int64 ids to "
                                        r"transform_ids"):
        mapping.transform("C1", ["3"])


def test_export_refuses_an_encoding_the_loader_cannot_read(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path, _encode({"kind": "base64"}))
    assert _export(store, tmp_path / "exported") == 2
    assert ("metrics.json: feature 'C1': encoding must be an object whose kind is one of "
            "('int64', 'text', 'hex64'), got {'kind': 'base64'}") in capsys.readouterr().err
    assert not (tmp_path / "exported").exists()


def test_on_a_terminal_export_shows_one_progress_line(tmp_path):
    import os
    import pty
    import select
    import subprocess
    import sys
    import time

    store = _sweep_with_one_trial(tmp_path)
    main_fd, terminal = pty.openpty()
    process = subprocess.Popen([sys.executable, "-m", "sweep.cli", "export", "--experiment",
                                "exp", "--max-bytes", "1e9", "--tracking-uri", store, "--out",
                                str(tmp_path / "exported")], stdin=subprocess.DEVNULL,
                               stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown, deadline = b"", time.monotonic() + 120
    try:
        while time.monotonic() < deadline:  # read while it runs: a full terminal never blocks it
            if not select.select([main_fd], [], [], 1.0)[0]:
                continue
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal's other end is closed: all read
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main_fd)
        if process.poll() is None and time.monotonic() >= deadline:
            process.kill()
        code = process.wait(timeout=30)
    text = shown.decode()
    assert code == 0, text
    assert "Downloading artifacts" not in text  # no MLflow bar per file
    lines = [line for line in text.replace("\r\n", "\n").split("\n") if "fetching the artifacts"
             in line]
    assert len(lines) == 2 and lines[-1].rstrip().endswith("1/1 (tables)"), lines


def test_a_lower_precision_point_exports_with_its_precision_and_scheme(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path, metrics={
        "precision.int8.embedding_bytes": 300, "precision.int8.total_bytes": 500,
        "precision.int8.compression_ratio": 4.0, "precision.int8.val_logloss": 0.52,
        "precision.int8.test_logloss": 0.53, "precision.int8.test_auc": 0.7,
        "precision.int8.test_ne": 0.9})
    out = tmp_path / "exported"
    assert main(["export", "--experiment", "exp", "--max-bytes", "600", "--tracking-uri", store,
                 "--out", str(out)]) == 0  # only the int8 point fits 600 bytes
    assert "chose trial frequency-c4-d8-s0-int8" in capsys.readouterr().out
    manifest = load_export(out).manifest
    assert manifest["precision"] == "int8" and manifest["trial"] == "frequency-c4-d8-s0-int8"
    assert manifest["precision_scheme"] == "row-wise uint8, a float32 scale and bias per row"
    assert manifest["sizes"]["total_bytes"] == 500 and manifest["metrics"]["val_logloss"] == 0.52
    assert _export(store, out) == 0  # a budget fp32 fits: the trained model, fp32
    assert load_export(out).manifest["precision"] == "fp32"


@pytest.mark.parametrize("precision", ["fp16", "int4"])  # the e2e export checks the one it chose
def test_the_exported_tables_read_back_as_the_trial_scored_them(tmp_path, precision):
    def val(p):  # only `precision` has the best validation loss
        return 0.4 if p == precision else 0.6

    metrics = {f"precision.{p}.{k}": v for p in ("fp16", "int8", "int4") for k, v in (
        ("embedding_bytes", 10), ("total_bytes", 500), ("val_logloss", val(p)),
        ("test_logloss", 0.5), ("test_auc", 0.7), ("test_ne", 0.9))}
    store = _sweep_with_one_trial(tmp_path, metrics={**metrics, "best_val_logloss": val("fp32")})
    out = tmp_path / "exported"
    assert _export(store, out) == 0
    expected = read_back(TRAINED, precision)  # what the trial's scoring at `precision` used
    rows = np.array([[0, 49], [7, 7]])
    for loaded in (load_export(out), portable.load_export(out)):
        assert loaded.manifest["precision"] == precision
        tables = loaded.tables("C1")
        np.testing.assert_array_equal(tables.table(0), expected)
        np.testing.assert_array_equal(tables.rows(rows), expected[rows])
        assert tables.rows(rows).shape == (2, 2, 8)
        with pytest.raises(IndexError, match="feature 'C1' has 1 table"):
            tables.rows(rows, index=1)
    stored = portable.read_bundle(out / "tables" / "00-C1")[1]
    assert sum(a.nbytes for a in stored.values()) == portable.table_bytes(50, 8, precision)


def test_an_export_of_a_run_without_tables_maps_and_says_it_has_no_tables(tmp_path, capsys):
    def drop(details):
        del details["features"]["C1"]["tables"]

    store = _sweep_with_one_trial(tmp_path, drop)
    out = tmp_path / "exported"
    assert _export(store, out) == 0
    assert "saved no embedding tables for 1 of its 1 features" in capsys.readouterr().err
    assert not (out / "tables").exists()
    with pytest.raises(UserError, match="this export holds no embedding tables for feature 'C1'"):
        load_export(out).tables("C1")
    with pytest.raises(ValueError, match="this export holds no embedding tables for feature 'C1'"):
        portable.load_export(out).tables("C1")


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d["features"]["C1"].update(tables="../../x"), "expected tables/<directory>"),
    (lambda d: d["features"]["C1"].update(tables="bundles/00-C1"), "expected tables/<directory>"),
])
def test_export_refuses_tables_outside_the_runs_tables(tmp_path, capsys, edit, message):
    store = _sweep_with_one_trial(tmp_path, edit)
    assert _export(store, tmp_path / "exported") == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "exported").exists()


def test_export_refuses_tables_that_do_not_fit_the_map(tmp_path, capsys):
    store = _sweep_with_one_trial(tmp_path)
    # the run's table has 51 rows where its map has 50
    artifacts = tmp_path / "artifacts"
    save_tables([np.zeros((51, 8), np.float32)], "fp32", "C1", artifacts / "tables" / "00-C1")
    tracker = SweepTracker.start(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp2", retry_s=0.5)
    tracker.start_trial("t1", "frequency-c4-d8-s0",
                        {"strategy": "frequency", "compression": 4.0, "dim": 8, "seed": 0})
    tracker.log_metrics("t1", {"best_val_logloss": 0.5, "total_bytes": 1000}, step=1)
    tracker.log_artifacts("t1", str(artifacts))
    tracker.end_trial("t1", "completed")
    tracker.end_sweep("FINISHED", {}, "completed")
    assert main(["export", "--experiment", "exp2", "--max-bytes", "1e9", "--tracking-uri", store,
                 "--out", str(tmp_path / "exported")]) == 2
    assert "tables of feature 'C1': its tables hold [[51, 8]] rows x dims; its map has tables of " \
           "[50] rows" in capsys.readouterr().err


def test_a_loader_refuses_tables_edited_after_export(tmp_path):
    store = _sweep_with_one_trial(tmp_path)
    out = tmp_path / "exported"
    assert _export(store, out) == 0
    save_tables([TRAINED + 1], "fp32", "C1", out / "tables" / "00-C1")  # a valid bundle, swapped
    with pytest.raises(UserError, match="feature 'C1': tables digest is"):
        load_export(out)
    with pytest.raises(ValueError, match="feature 'C1': tables digest is"):
        portable.load_export(out)
