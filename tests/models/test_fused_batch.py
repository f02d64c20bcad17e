from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from models_testdata import random_split

from models import DLRMConfig, EncodedSplit, FeatureSpec, FusedSplit, TableLayout


def _layout(features, d=4):
    return TableLayout.from_config(DLRMConfig(2, features, embedding_dim=d))


def test_layout_stacks_tables_per_width_with_row_offsets(all_kinds):
    layout = _layout(all_kinds)
    assert [g.dim for g in layout.groups] == [4, 2]
    for g, group in enumerate(layout.groups):
        places = [layout.tables[t] for t in group.single_tables + group.multi_tables]
        assert [p.slot for p in places] == list(range(len(places)))
        assert all(p.group == g for p in places)
        offsets = np.cumsum([0] + [p.num_rows for p in places])
        assert [p.row_offset for p in places] == offsets[:-1].tolist()
        assert group.num_rows == offsets[-1]
        assert all(not p.multi_valued for p in places[: len(group.single_tables)])


def test_single_valued_rows_are_one_matrix_with_offsets_added():
    features = (FeatureSpec("a", (3,)), FeatureSpec("b", (5,)), FeatureSpec("c", (2, 4), "sum"))
    split = EncodedSplit(
        np.zeros((3, 2), np.float32),
        np.array([0, 1, 0], np.float32),
        [np.array([0, 2, 1]), np.array([4, 0, 3]), np.array([1, 1, 0]), np.array([3, 2, 0])],
    )
    batch = FusedSplit(split, _layout(features)).batch(torch.tensor([2, 0]))
    # offsets: a 0, b 3, c1 8, c2 10
    assert batch.lookups[0].rows.tolist() == [[1, 6, 8, 10], [0, 7, 9, 13]]
    assert batch.labels.tolist() == [0.0, 0.0]
    assert batch.lookups[0].bag_rows is None


def test_ragged_gather_matches_python_loop():
    features = (
        FeatureSpec("x", (7,)),
        FeatureSpec("bag_sum", (6,), multi_valued=True),
        FeatureSpec("bag_mean", (5, 4), "add", multi_valued=True, pooling="mean"),
    )
    split = random_split(features, 2, 30, seed=4, max_bag=3)
    layout = _layout(features)
    idx = torch.tensor([5, 0, 29, 5, 17, 3])
    lk = FusedSplit(split, layout).batch(idx).lookups[0]
    want_rows, want_offsets, want_weights = [], [], []
    for i in idx.tolist():  # sample-major: each sample's bags in table order
        for t in layout.groups[0].multi_tables:
            rows, offsets = split.tables[t]
            bag = rows[offsets[i] : offsets[i + 1]] + layout.tables[t].row_offset
            want_offsets.append(len(want_rows))
            want_rows.extend(bag.tolist())
            w = 1 / len(bag) if layout.tables[t].mean_pooling and len(bag) else 1.0
            want_weights.extend([w] * len(bag))
    assert lk.bag_rows.tolist() == want_rows
    assert lk.bag_offsets.tolist() == want_offsets
    np.testing.assert_allclose(lk.bag_weights.numpy(), want_weights, rtol=1e-6)


def test_read_only_memmaps_are_used_without_copy_or_warning(tmp_path):
    features = (FeatureSpec("a", (4,)), FeatureSpec("b", (3,)))
    n = 6
    arrays = {
        "dense": np.arange(n * 2, dtype=np.float32).reshape(n, 2),
        "labels": np.array([0, 1, 1, 0, 1, 0], np.float32),
        "a": np.array([0, 1, 2, 3, 0, 1]),
        "b": np.array([2, 2, 1, 0, 0, 1]),
    }
    maps = {}
    for name, a in arrays.items():
        np.save(tmp_path / f"{name}.npy", a)
        maps[name] = np.load(tmp_path / f"{name}.npy", mmap_mode="r", allow_pickle=False)
    split = EncodedSplit(maps["dense"], maps["labels"], [maps["a"], maps["b"]])
    assert np.shares_memory(split.dense, maps["dense"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fused = FusedSplit(split, _layout(features))
    assert np.shares_memory(fused.dense.numpy(), maps["dense"])
    assert fused.batch(torch.tensor([4])).dense.tolist() == [[8.0, 9.0]]


def test_encoded_split_validation():
    d, y = np.zeros((3, 1), np.float32), np.zeros(3, np.float32)
    with pytest.raises(ValueError, match=r"dense must be 2-D \[N, num_dense\], got shape \(3,\)"):
        EncodedSplit(np.zeros(3), y, [])
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\) like dense, got \(2,\)"):
        EncodedSplit(d, y[:2], [])
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        EncodedSplit(d, np.array([0, 1, 2], np.float32), [])
    with pytest.raises(ValueError, match=r"tables\[0\] must be rows of shape \(3,\), got \(2,\)"):
        EncodedSplit(d, y, [np.zeros(2, np.int64)])
    with pytest.raises(ValueError, match=r"tables\[0\] offsets must run from 0 to len\(rows\)=2"):
        EncodedSplit(d, y, [(np.zeros(2, np.int64), np.array([0, 1, 1, 1]))])
    with pytest.raises(ValueError, match=r"tables\[0\] offsets must be non-decreasing"):
        EncodedSplit(d, y, [(np.zeros(2, np.int64), np.array([0, 2, 1, 2]))])


def test_fused_split_rejects_mismatched_tables():
    features = (FeatureSpec("a", (4,)), FeatureSpec("b", (3,), multi_valued=True))
    layout = _layout(features)
    d, y = np.zeros((2, 2), np.float32), np.zeros(2, np.float32)
    bag = (np.array([0, 1]), np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="split has 1 tables, the model config has 2"):
        FusedSplit(EncodedSplit(d, y, [np.array([0, 1])]), layout)
    with pytest.raises(
        ValueError, match=r"tables\[0\] rows must be in \[0, 4\), got range \[0, 4\]"
    ):
        FusedSplit(EncodedSplit(d, y, [np.array([0, 4]), bag]), layout)
    with pytest.raises(TypeError, match=r"tables\[1\] is multi-valued: pass \(rows, offsets\)"):
        FusedSplit(EncodedSplit(d, y, [np.array([0, 1]), np.array([0, 1])]), layout)
    with pytest.raises(TypeError, match=r"tables\[0\] is single-valued"):
        FusedSplit(EncodedSplit(d, y, [bag, bag]), layout)
    with pytest.raises(TypeError, match=r"tables\[0\] rows must be integers, got dtype float64"):
        FusedSplit(EncodedSplit(d, y, [np.array([0.0, 1.0]), bag]), layout)
