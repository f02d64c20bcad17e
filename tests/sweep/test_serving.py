from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest

from mappers import get_mapper, save_bundle
from mappers.bundle import manifest_digest, read_manifest
from sweep.datasets.base import id_encoding
from sweep.errors import UserError
from sweep.serving import (
    EXPORT_FORMAT,
    EXPORT_FORMAT_VERSION,
    export_feature,
    export_manifest,
    load_export,
)
from sweep.tracking.ui import ui_command

VOCAB = (np.arange(200, dtype=np.int64), np.arange(200, 0, -1, dtype=np.int64))


def _mappers():
    """Two features: C1 a learned mapper, C2 a two-table one."""
    return {"C1": get_mapper("frequency", num_rows=50, hot_fraction=0.5).fit(*VOCAB),
            "C2": get_mapper("qr", num_rows=30, collisions=4, seed=3).fit(*VOCAB)}


def _export_dir(tmp_path, bundles=None):
    """An export directory as sweep.frontier.export writes it; `bundles` overrides bundle paths."""
    mappers, features = _mappers(), []
    for index, (name, mapper) in enumerate(mappers.items()):
        target = f"bundles/{index:02d}-{name}"
        save_bundle(mapper, tmp_path / target)
        features.append(export_feature(name, (bundles or {}).get(name, target), mapper,
                                       read_manifest(tmp_path / target)["digest"], vocab_size=200,
                                       encoding=id_encoding("int64")))
    manifest = export_manifest(
        features, experiment="e", parent_run_id="p", source_run_id="r", trial="t",
        selection={"max_bytes": None, "max_val_loss": None}, metrics={"val_logloss": 0.5},
        sizes={"total_bytes": 1000}, embedding_dim=8)
    _write(tmp_path, manifest)
    return mappers


def _read(tmp_path) -> dict:
    return json.loads((tmp_path / "export.json").read_text())


def _write(tmp_path, manifest, *, redigest: bool = False) -> None:
    """Write export.json; `redigest` recomputes its digest, as a forger would."""
    if redigest:
        manifest = {**manifest, "digest": manifest_digest(manifest)}
    (tmp_path / "export.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def _edit_feature(tmp_path, index: int, *, redigest: bool = True, **changes) -> None:
    manifest = _read(tmp_path)
    manifest["features"][index].update(changes)
    _write(tmp_path, manifest, redigest=redigest)


def test_load_export_maps_like_the_mapper(tmp_path):
    mappers = _export_dir(tmp_path)
    mapping = load_export(tmp_path)
    assert mapping.features == ["C1", "C2"]
    assert mapping.manifest["format"] == EXPORT_FORMAT and mapping.manifest["format_version"] == 4
    ids = np.random.default_rng(0).integers(-1000, 1000, size=10_000)
    np.testing.assert_array_equal(mapping.transform("C1", ids), mappers["C1"].transform(ids))
    for got, want in zip(mapping.transform("C2", ids), mappers["C2"].transform(ids), strict=True):
        np.testing.assert_array_equal(got, want)
    with pytest.raises(KeyError, match=r"unknown feature 'C9'; this export maps \['C1', 'C2'\]"):
        mapping.transform("C9", ids)


def test_transform_ids_takes_any_integer_ids_and_refuses_the_rest(tmp_path):
    mappers = _export_dir(tmp_path)
    mapping, expected = load_export(tmp_path), mappers["C1"].transform(np.arange(7, dtype=np.int64))
    for ids in (list(range(7)), np.arange(7, dtype=np.int8), np.arange(7, dtype=np.uint32)):
        np.testing.assert_array_equal(mapping.transform_ids("C1", ids), expected)
    big = np.array([2**64 - 1], dtype=np.uint64)  # reinterpreted as int64 -1, like the mapper does
    np.testing.assert_array_equal(mapping.transform_ids("C1", big),
                                  mappers["C1"].transform(np.array([-1])))
    assert mapping.transform_ids("C1", []).shape == (0,)
    for bad, dtype in ((np.array([7.9]), "float64"), ([7.0, 8.0], "float64"),
                       (np.array([True]), "bool"),
                       (np.array(["7"]), "<U1"), (np.array([7], dtype=object), "object")):
        with pytest.raises(ValueError,
                           match=r"raw ids of feature 'C1' must be an integer array .*got dtype "
                                 rf"{dtype}"):
            mapping.transform_ids("C1", bad)


def test_transform_reads_int64_values_as_the_data_holds_them(tmp_path):
    # an int64 feature (a CSV column of integers, Parquet ints or integral floats): the same row
    # for 7, "7", "+007", 7.0 and np.int8(7); None, "" and NaN are the missing id -1
    mappers = _export_dir(tmp_path)
    mapping = load_export(tmp_path)
    want = mappers["C1"].transform(np.array([7, 7, 7, 7, 7, -1, -1, -1, -1]))
    got = mapping.transform("C1", [7, "7", "+007", 7.0, np.int8(7), None, "", float("nan"),
                                   2**64 - 1])
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(mapping.transform("C1", np.arange(7)), mappers["C1"].transform(
        np.arange(7)))
    for bad, why in ((7.5, "7.5 is not an integer id"), ("abc", "'abc' is not an integer id"),
                     (2**64, "18446744073709551616 is outside")):
        with pytest.raises(UserError, match=rf"feature 'C1' \(int64 ids\): {why}"):
            mapping.transform("C1", [1, bad])


def test_load_export_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="export.json: missing; .* is not a collide export"):
        load_export(tmp_path)
    (tmp_path / "export.json").write_text("{not json")
    with pytest.raises(ValueError, match=r"export\.json: not valid JSON"):
        load_export(tmp_path)
    (tmp_path / "export.json").write_text("[]")
    with pytest.raises(ValueError, match=r"export\.json: expected a JSON object, got list"):
        load_export(tmp_path)


def test_bundle_path_must_stay_inside_the_export(tmp_path):
    _export_dir(tmp_path, bundles={"C2": "../../etc"})
    with pytest.raises(ValueError,
                       match=r"export\.json: feature 'C2': bundle path '\.\./\.\./etc' escapes"):
        load_export(tmp_path)
    _edit_feature(tmp_path, 1, bundle=None)
    with pytest.raises(ValueError, match=r"feature 'C2': bundle path None escapes"):
        load_export(tmp_path)


def test_format_and_version_are_checked(tmp_path):
    (tmp_path / "export.json").write_text(json.dumps({"format_version": 1, "features": []}))
    with pytest.raises(ValueError, match=r"export\.json: format None, expected 'collide-export'; "
                                         r"not a collide export \(or one older than"):
        load_export(tmp_path)
    _export_dir(tmp_path)
    _write(tmp_path, {**_read(tmp_path), "format_version": 99}, redigest=True)
    with pytest.raises(ValueError,
                       match=rf"export\.json: format_version 99; this loader reads "
                             rf"{EXPORT_FORMAT_VERSION} only \(written by a newer collide"):
        load_export(tmp_path)
    _write(tmp_path, {**_read(tmp_path), "format": "other"}, redigest=True)
    with pytest.raises(ValueError,
                       match=r"export\.json: format 'other', expected 'collide-export'"):
        load_export(tmp_path)


def test_edited_export_json_is_refused_by_its_digest(tmp_path):
    _export_dir(tmp_path)
    _edit_feature(tmp_path, 0, redigest=False, nbytes=1)
    with pytest.raises(ValueError,
                       match=r"export\.json: digest '[0-9a-f]{64}' does not match its contents"):
        load_export(tmp_path)
    _write(tmp_path, {k: v for k, v in _read(tmp_path).items() if k != "digest"})
    with pytest.raises(ValueError, match=r"export\.json: digest None does not match its contents"):
        load_export(tmp_path)


@pytest.mark.parametrize(
    ("field", "value", "actual"),
    [("nbytes", 1, r"\d+"), ("strategy", "hash", "'frequency'"), ("table_sizes", [51], r"\[50\]"),
     ("combine", "sum", "'none'"), ("digest", "0" * 64, "'[0-9a-f]{64}'")],
)
def test_export_json_field_that_disagrees_with_the_bundle_is_refused(
    tmp_path, field, value, actual):
    """A forger who recomputes export.json's digest still cannot change what a bundle is."""
    _export_dir(tmp_path)
    _edit_feature(tmp_path, 0, **{field: value})
    recorded = re.escape(repr(value))
    with pytest.raises(ValueError,
                       match=rf"export\.json: feature 'C1': {field} is {recorded} in export\.json "
                                         rf"but {actual} in its bundle bundles/00-C1$"):
        load_export(tmp_path)


def test_swapped_bundle_is_refused(tmp_path):
    """A valid bundle of another mapper in place of the recorded one: the digests differ."""
    _export_dir(tmp_path)
    other = get_mapper("frequency", num_rows=50, hot_fraction=0.5, unseen="error").fit(*VOCAB)
    shutil.rmtree(tmp_path / "bundles" / "00-C1")
    save_bundle(other, tmp_path / "bundles" / "00-C1")  # same strategy, sizes and nbytes
    with pytest.raises(ValueError,
                       match=r"export\.json: feature 'C1': digest is '[0-9a-f]{64}' in "
                             r"export\.json "
                                         r"but '[0-9a-f]{64}' in its bundle bundles/00-C1"):
        load_export(tmp_path)


def test_feature_names_must_be_unique_non_empty_strings(tmp_path):
    _export_dir(tmp_path)
    _edit_feature(tmp_path, 1, name="C1")
    with pytest.raises(ValueError,
                       match=r"export\.json: feature names must be unique, repeated: \['C1'\]"):
        load_export(tmp_path)
    for bad in ("", 7, None):
        _edit_feature(tmp_path, 1, name=bad)
        with pytest.raises(ValueError,
                           match=r"export\.json: feature names must be non-empty strings, got "
                                 rf"{bad!r}"):
            load_export(tmp_path)
    _write(tmp_path, {**_read(tmp_path), "features": []}, redigest=True)
    with pytest.raises(ValueError,
                       match=r"export\.json: features must be a non-empty list of objects, got "
                             r"\[\]"):
        load_export(tmp_path)


def test_tampered_bundle_is_refused(tmp_path):
    _export_dir(tmp_path)
    arrays = tmp_path / "bundles" / "00-C1" / "arrays.npz"
    with np.load(arrays) as stored:
        data = {k: stored[k].copy() for k in stored.files}
    key = next(k for k in data if data[k].size)
    data[key].reshape(-1)[0] += 1
    np.savez(arrays, **data)
    with pytest.raises(ValueError, match="checksum"):
        load_export(tmp_path)


def test_ui_command_passes_the_store_through_the_environment():
    secret = "postgresql://user:hunter2@db.example/mlflow"
    argv, env = ui_command(secret, port=5123)
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "5123"]
    assert env == {"MLFLOW_BACKEND_STORE_URI": secret}
    assert not any("hunter2" in a for a in argv)  # process arguments are world-readable
    with pytest.raises(ValueError, match="port must be in 1..65535, got 0"):
        ui_command("sqlite:///x.db", port=0)
