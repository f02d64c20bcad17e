"""`mixed_dim` (mappers/mixed_dim.py): blocks from the budget, ids by count into them, the hashed
overflow, the OOV row, and its bundle."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mappers import get_mapper, load_bundle, save_bundle
from mappers.bundle import describe_arrays
from mappers.mixed_dim import block_plan


def test_blocks_by_hand():
    # 100 rows at dim 16: 1600 floats; projections 8*16 + 4*16 + 2*16 = 224; 1376 / 4 = 344 each
    assert block_plan(100, 16, 4) == ((21, 16), (43, 8), (86, 4), (172, 2))
    assert block_plan(10, 16, 4) == ((1, 16), (2, 8))  # too small for 3 blocks
    assert block_plan(9, 16, 4) == ((9, 16),)  # not even for 2: one block at full dim
    assert block_plan(50, 2, 4) == ((24, 2), (49, 1))  # no block narrower than 1


@pytest.mark.parametrize("num_rows, dim, blocks", itertools.product(
    (1, 2, 7, 10, 33, 1000, 12345), (1, 2, 8, 16, 64), (1, 2, 4, 6)))
def test_blocks_never_exceed_the_budget(num_rows, dim, blocks):
    plan = block_plan(num_rows, dim, blocks)
    floats = sum(n * d for n, d in plan) + sum(d * dim for _, d in plan[1:])
    assert floats <= num_rows * dim and all(n >= 1 for n, _ in plan)
    assert plan[0][1] == dim and [d for _, d in plan] == sorted((d for _, d in plan), reverse=True)


def _vocab(size: int):
    ids = np.arange(1000, 1000 + size, dtype=np.int64)
    counts = np.arange(size, 0, -1, dtype=np.int64)  # id 1000 is the hottest
    return ids, counts


def test_hottest_ids_fill_the_blocks_in_order_and_the_rest_share_the_last():
    ids, counts = _vocab(2000)
    mapper = get_mapper("mixed_dim", num_rows=100, dim=16).fit(ids, counts)
    assert mapper.blocks == ((21, 16), (43, 8), (86, 4), (172, 2))
    capacity = 21 + 43 + 86 + 172
    rows = mapper.transform(ids)
    np.testing.assert_array_equal(rows[:capacity], np.arange(capacity))
    last = capacity - 172
    assert rows[capacity:].min() >= last and rows[capacity:].max() < capacity
    unseen = mapper.transform(np.arange(-500, 0, dtype=np.int64))
    assert unseen.min() >= last and unseen.max() < capacity
    # only the ids with a row of their own are stored: 12 bytes each, the header, 8 per block
    assert mapper.nbytes == 12 * capacity + 32 + 8 * 4
    assert mapper.table_sizes == (capacity,)


def test_a_small_vocabulary_keeps_only_the_rows_it_reaches():
    ids, counts = _vocab(30)
    mapper = get_mapper("mixed_dim", num_rows=100, dim=16).fit(ids, counts)
    assert mapper.blocks == ((21, 16), (9, 8))
    np.testing.assert_array_equal(mapper.transform(ids), np.arange(30))


def test_the_oov_row_is_the_last_row():
    ids, counts = _vocab(30)
    mapper = get_mapper("mixed_dim", num_rows=100, dim=16, unseen="oov_row").fit(ids, counts)
    assert mapper.blocks == ((21, 16), (10, 8))
    assert mapper.transform(np.array([-7, 5], dtype=np.int64)).tolist() == [30, 30]
    np.testing.assert_array_equal(mapper.transform(ids), np.arange(30))


def test_the_bundle_keeps_the_blocks_and_refuses_edited_ones(tmp_path):
    ids, counts = _vocab(2000)
    mapper = get_mapper("mixed_dim", num_rows=100, dim=16, seed=4).fit(ids, counts)
    save_bundle(mapper, tmp_path / "b")
    loaded = load_bundle(tmp_path / "b")
    assert loaded.blocks == mapper.blocks
    np.testing.assert_array_equal(loaded.transform(ids), mapper.transform(ids))
    manifest, arrays = mapper.to_bundle()
    arrays["blocks"] = arrays["blocks"].copy()
    arrays["blocks"][0, 0] += 1
    manifest["arrays"] = describe_arrays(arrays)
    with pytest.raises(ValueError, match="whose rows sum to the table's"):
        type(mapper).from_bundle(manifest, arrays)
