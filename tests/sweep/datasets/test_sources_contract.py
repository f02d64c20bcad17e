"""The contract every data source in `sweep.datasets.SOURCES` keeps, run against each.

For each source, its smallest example (a few rows written here, or generated) must:
- prepare into the one prepared form: a manifest that agrees with the arrays, non-empty
  train / val / test splits, and a train vocabulary per feature that is sorted, unique, and
  counts exactly the feature's training values;
- be reused from its cache by the same call, and rebuilt when an option changes;
- refuse an unknown option and a bad split fraction with a `DataError` naming them;
- describe every option (a help text per Config field; file options marked as paths).

A new source adds its smallest example to EXAMPLES; a test checks that none is missing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from sweep.datasets import SOURCES, Source, get_source, load_prepared, prepare
from sweep.datasets.base import path_options
from sweep.datasets.prepared import read_manifest
from sweep.errors import DataError


def _criteo(tmp: Path) -> dict:
    lines = []
    for k in range(40):
        fields = [str(k % 2), *[str(k + i) for i in range(13)],
                  *[f"{(7 * j + k) % 5 + 1:x}" for j in range(26)]]
        lines.append("\t".join(fields))
    (tmp / "train.txt").write_text("\n".join(lines) + "\n")
    return {"path": str(tmp / "train.txt"), "progress": False}


def _recbole(tmp: Path) -> dict:
    d = tmp / "tiny"
    d.mkdir()
    rows = [f"u{k % 7}\ti{k % 11}\t{1 + k % 5}\t{k}" for k in range(40)]
    (d / "tiny.inter").write_text("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
                                  + "\n".join(rows) + "\n")
    return {"path": str(d)}


def _table(tmp: Path) -> dict:
    rows = [f"{k % 2},{k * 0.5},c{k % 6}" for k in range(40)]
    (tmp / "t.csv").write_text("y,x,c\n" + "\n".join(rows) + "\n")
    (tmp / "t.yaml").write_text("label: y\ndense: [x]\ncategorical: [c]\n")
    return {"path": str(tmp / "t.csv"), "schema_file": str(tmp / "t.yaml")}


def _synthetic(tmp: Path) -> dict:
    return {"num_rows": 200, "vocab_sizes": (5, 30), "num_dense": 1}


# source name -> the options of its smallest example, written under a temporary directory
EXAMPLES: dict[str, Callable[[Path], dict]] = {
    "synthetic": _synthetic,
    "criteo": _criteo,
    "recbole": _recbole,
    "table": _table,
}


def test_every_source_has_an_example():
    assert set(EXAMPLES) == set(SOURCES), "add the new source's smallest example to EXAMPLES"


@pytest.fixture(params=sorted(SOURCES))
def example(request, tmp_path) -> tuple[str, dict, Path]:
    name = request.param
    return name, EXAMPLES[name](tmp_path), tmp_path


def test_prepares_into_the_one_prepared_form(example):
    name, params, tmp = example
    dataset = prepare(get_source(name, **params), tmp / "prepared")
    manifest = dataset.manifest
    assert manifest["source"] == name and manifest["num_rows"] == dataset.num_rows > 0
    sizes = manifest["split_sizes"]
    assert all(sizes[split] > 0 for split in ("train", "val", "test"))
    assert sum(sizes.values()) == dataset.num_rows
    assert np.asarray(dataset.labels).shape == (dataset.num_rows,)
    assert set(np.unique(np.asarray(dataset.labels))) <= {0.0, 1.0}
    assert np.asarray(dataset.dense).shape == (dataset.num_rows, len(manifest["dense"]))
    assert np.isfinite(np.asarray(dataset.dense)).all()
    train = np.asarray(dataset.split) == 0
    assert [f["name"] for f in manifest["features"]] == dataset.feature_names
    for feature in manifest["features"]:
        vocab = dataset.vocab[feature["name"]]
        ids, counts = np.asarray(vocab.ids), np.asarray(vocab.counts)
        assert feature["vocab_size"] == len(ids) > 0
        assert np.all(ids[1:] > ids[:-1]), "the train vocabulary is sorted and unique"
        values = dataset.sparse[feature["name"]].rows_of(train)
        seen, seen_counts = np.unique(values, return_counts=True)
        np.testing.assert_array_equal(ids, seen)  # the training split's ids, and only those
        np.testing.assert_array_equal(counts, seen_counts)
    assert read_manifest(dataset.path) == manifest
    assert load_prepared(dataset.path).fingerprint == dataset.fingerprint


def test_the_same_call_reuses_the_cache_and_a_changed_option_rebuilds(example):
    name, params, tmp = example
    first = prepare(get_source(name, **params), tmp / "a")
    stamp = (first.path / "manifest.json").stat().st_mtime_ns
    again = prepare(get_source(name, **params), tmp / "a")
    assert again.fingerprint == first.fingerprint
    assert (again.path / "manifest.json").stat().st_mtime_ns == stamp  # not written again
    changed = prepare(get_source(name, **{**params, "val_fraction": 0.2}), tmp / "a")
    assert changed.fingerprint != first.fingerprint


def test_bad_options_are_data_errors_naming_them(example):
    name, params, _ = example
    with pytest.raises(DataError,
                       match=rf"unknown option\(s\) \['no_such_option'\] for source '{name}'"):
        get_source(name, **params, no_such_option=1)
    with pytest.raises(DataError, match=r"val_fraction must be in \(0, 1\), got 1.5"):
        get_source(name, **{**params, "val_fraction": 1.5})


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_every_option_is_described(name):
    source: type[Source] = SOURCES[name]
    for f in dataclasses.fields(source.Config):
        assert f.metadata.get("help"), f"{name}: option {f.name} has no help text"
    for option in path_options(source.Config):
        assert option in {f.name for f in dataclasses.fields(source.Config)}
    assert (source.__module__ and source.name == name and source.version >= 1)
