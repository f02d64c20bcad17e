from __future__ import annotations

import json

import numpy as np
import pytest

from mappers import get_mapper, save_bundle
from sweep.serving import EXPORT_FORMAT_VERSION, load_export
from sweep.ui import ui_command


def _export_dir(tmp_path, bundle="bundles/00-C1"):
    mapper = get_mapper("frequency", num_rows=50, hot_fraction=0.5).fit(
        np.arange(200, dtype=np.int64), np.arange(200, 0, -1, dtype=np.int64))
    save_bundle(mapper, tmp_path / "bundles" / "00-C1")
    manifest = {"format_version": EXPORT_FORMAT_VERSION, "features": [{"name": "C1", "bundle": bundle}]}
    (tmp_path / "export.json").write_text(json.dumps(manifest))
    return mapper


def test_load_export_maps_like_the_mapper(tmp_path):
    mapper = _export_dir(tmp_path)
    mapping = load_export(tmp_path)
    ids = np.random.default_rng(0).integers(-1000, 1000, size=10_000)
    np.testing.assert_array_equal(mapping.transform("C1", ids), mapper.transform(ids))
    assert mapping.features == ["C1"]
    with pytest.raises(KeyError, match=r"unknown feature 'C9'; this export maps \['C1'\]"):
        mapping.transform("C9", ids)


def test_load_export_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="export.json: missing; .* is not a collide export"):
        load_export(tmp_path)
    _export_dir(tmp_path, bundle="../../etc")
    with pytest.raises(ValueError, match="bundle path '../../etc' escapes the export directory"):
        load_export(tmp_path)
    (tmp_path / "export.json").write_text(json.dumps({"format_version": 99, "features": []}))
    with pytest.raises(ValueError, match="format_version 99, expected 1"):
        load_export(tmp_path)


def test_tampered_export_is_refused(tmp_path):
    _export_dir(tmp_path)
    arrays = tmp_path / "bundles" / "00-C1" / "arrays.npz"
    with np.load(arrays) as stored:
        data = {k: stored[k].copy() for k in stored.files}
    key = next(k for k in data if data[k].size)
    data[key].reshape(-1)[0] += 1
    np.savez(arrays, **data)
    with pytest.raises(ValueError, match="checksum"):
        load_export(tmp_path)


def test_ui_command():
    command = ui_command("sqlite:////tmp/mlflow.db", port=5123)
    assert command[-6:] == ["--backend-store-uri", "sqlite:////tmp/mlflow.db", "--host", "127.0.0.1", "--port", "5123"]
    with pytest.raises(ValueError, match="is already a tracking server"):
        ui_command("http://127.0.0.1:5000")
    with pytest.raises(ValueError, match="port must be in 1..65535, got 0"):
        ui_command("sqlite:///x.db", port=0)
