from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from sweep.datasets.cache import prepare
from sweep.datasets.criteo import CriteoSource
from sweep.datasets.dense import (
    DenseTransform,
    apply_dense_transforms,
    choose_transform,
    parse_dense_transform,
)
from sweep.datasets.table import TableSource


def write_skewed(path: Path, n: int = 400, seed: int = 0) -> tuple[Path, np.ndarray, np.ndarray]:
    """A table whose `weight` spans 10^1..10^6 with a heavy tail, and a plain `age`."""
    rng = np.random.default_rng(seed)
    weight = np.round(np.exp(rng.normal(6.0, 2.5, n)).clip(10, 1.5e6))
    age = rng.integers(17, 90, n)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["y", "weight", "age", "k"])
        for i in range(n):
            writer.writerow([i % 2, int(weight[i]), age[i], f"k{i % 7}"])
    return path, weight, age.astype(np.float64)


def test_auto_fits_on_the_train_rows_only_and_the_stats_match_a_hand_computation(tmp_path):
    path, weight, age = write_skewed(tmp_path / "t.csv")
    ds = prepare(TableSource.from_params(path=path, label="y", dense=("weight", "age"),
                                         categorical=("k",)),
                 tmp_path / "p")
    weight_t, age_t = ds.manifest["dense_transforms"]
    assert (weight_t["column"], weight_t["kind"]) == ("weight", "log1p_standardize")
    assert "skewness" in weight_t["reason"]
    assert (age_t["column"], age_t["kind"]) == ("age", "standardize")
    train = np.asarray(ds.split) == 0
    # val and test rows exist, and must not enter the statistics
    assert 0 < train.sum() < len(train)
    logged = np.log1p(weight.astype(np.float32).astype(np.float64))
    assert weight_t["mean"] == pytest.approx(logged[train].mean(), rel=1e-12)
    assert weight_t["std"] == pytest.approx(logged[train].std(), rel=1e-12)
    # the whole column gives other stats
    assert weight_t["mean"] != pytest.approx(logged.mean(), rel=1e-6)
    assert age_t["mean"] == pytest.approx(age[train].mean()) and age_t["std"] == pytest.approx(
        age[train].std())
    dense = np.asarray(ds.dense)
    np.testing.assert_allclose(dense[:, 0], (logged - weight_t["mean"]) / weight_t["std"],
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(dense[:, 1], (age - age_t["mean"]) / age_t["std"], rtol=1e-5,
                               atol=1e-6)
    # serving: the manifest's entries turn raw values into exactly the prepared ones
    raw = np.stack([weight, age], axis=1)
    np.testing.assert_array_equal(apply_dense_transforms(ds.manifest["dense_transforms"], raw),
                                  dense)


def test_requested_kinds_per_column(tmp_path):
    path, weight, age = write_skewed(tmp_path / "t.csv")
    ds = prepare(TableSource.from_params(path=path, label="y", dense=("weight", "age"),
                                         categorical=("k",),
                                         dense_transform="weight=log1p,age=none"), tmp_path / "p")
    kinds = [(t["kind"], t["reason"]) for t in ds.manifest["dense_transforms"]]
    assert kinds == [("log1p", "requested"), ("none", "requested")]
    np.testing.assert_allclose(np.asarray(ds.dense)[:, 0], np.log1p(weight), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(ds.dense)[:, 1], age.astype(np.float32))


def test_choose_transform_rules():
    rng = np.random.default_rng(0)
    assert choose_transform(np.full(50, 3.0))[0] == "none"
    assert choose_transform(rng.normal(40, 10, 5000))[0] == "standardize"
    assert choose_transform(np.exp(rng.normal(0, 2, 5000)))[0] == "log1p_standardize"  # skew
    spread = np.concatenate([rng.normal(5, 1, 4900), rng.normal(-5e4, 100, 50),
                             rng.normal(5e4, 100, 50)])
    kind, reason = choose_transform(spread)  # symmetric, so no skew, but a huge range
    assert kind == "log1p_standardize" and reason.startswith("range")


def test_signed_log1p_and_clip():
    t = DenseTransform("x", "log1p")
    np.testing.assert_allclose(t.apply(np.array([-3.0, 0.0, 3.0])), [-np.log(4), 0, np.log(4)],
                               rtol=1e-6)
    clipped = DenseTransform("x", "log1p", clip_min=0.0)
    np.testing.assert_allclose(clipped.apply(np.array([-3.0, 3.0])), [0, np.log(4)], rtol=1e-6)


def test_criteo_records_its_reference_transform(criteo_sample, tmp_path):
    ds = prepare(CriteoSource.from_params(path=criteo_sample), tmp_path / "p")
    entries = ds.manifest["dense_transforms"]
    assert [e["column"] for e in entries] == [f"I{i}" for i in range(1, 14)]
    assert all(e["kind"] == "log1p" and e["clip_min"] == 0.0 for e in entries)
    raw = np.array([[int(v) if v else 0 for v in line.split("\t")[1:14]]
                    for line in criteo_sample.read_text().splitlines()], dtype=np.float64)
    np.testing.assert_array_equal(apply_dense_transforms(entries, raw), np.asarray(ds.dense))


@pytest.mark.parametrize(("value", "columns", "message"), [
    ("log2", ("a",), r"dense_transform must be one of \('auto', 'none', 'log1p', 'standardize', "
                     r"'log1p_standardize'\) or COL=KIND pairs, got 'log2'"),
    ("b=log1p", ("a",),
     r"dense_transform names \['b'\], which are not dense columns; dense: \['a'\]"),
    ({"a": "sqrt"}, ("a",), r"dense_transform of column 'a' must be one of .*, got 'sqrt'"),
    (3, ("a",), r"dense_transform must be a kind or a mapping of column to kind, got 3"),
])
def test_dense_transform_errors(value, columns, message):
    with pytest.raises(ValueError, match=message):
        parse_dense_transform(value, columns)


def test_a_bad_manifest_entry_is_refused():
    with pytest.raises(ValueError, match=r"std a finite number > 0, got mean 0.0, std 0.0"):
        DenseTransform.from_json({"column": "x", "kind": "standardize", "std": 0.0})
    with pytest.raises(ValueError, match=r"needs column and kind"):
        DenseTransform.from_json({"column": "x", "kind": "none", "scale": 2})
    with pytest.raises(ValueError, match=r"raw dense values must have shape \(n, 1\)"):
        apply_dense_transforms([{"column": "x", "kind": "none"}], np.zeros((3, 2)))
