"""The shuffle of a split read in blocks (models.stream): every row once per epoch, the same
order for the same seed; blocks cut and joined without losing a bag; evaluations within an
epoch (eval_every_rows)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from models_testdata import random_split

from models import (
    DLRMConfig,
    EncodedSplit,
    FeatureSpec,
    InMemoryBlocks,
    TrainConfig,
    concat_splits,
    evaluations_per_epoch,
    train,
)
from models.stream import shuffled_windows


def _numbered(n: int) -> EncodedSplit:
    """n rows whose dense value is the row's number."""
    return EncodedSplit(dense=np.arange(n, dtype=np.float32)[:, None],
                        labels=(np.arange(n) % 2).astype(np.float32),
                        tables=[np.zeros(n, dtype=np.int64)])


def _epoch(split: InMemoryBlocks, generator: torch.Generator, window_blocks: int) -> list[int]:
    visited = []
    for rows, order in shuffled_windows(split, generator, window_blocks):
        visited += rows.dense[order.numpy(), 0].astype(int).tolist()
    return visited


@pytest.mark.parametrize(("n", "block_rows", "window_blocks"),
                         [(100_003, 1000, 8), (5000, 5000, 8), (999, 10, 1), (7, 3, 2)])
def test_every_row_is_visited_once_per_epoch_in_a_seeded_order(n, block_rows, window_blocks):
    split = InMemoryBlocks(_numbered(n), block_rows=block_rows)
    generator = torch.Generator().manual_seed(11)
    first, second = _epoch(split, generator, window_blocks), _epoch(split, generator, window_blocks)
    assert sorted(first) == list(range(n)) and sorted(second) == list(range(n))
    if n > 10:
        assert first != second  # each epoch has its own order
        assert first != list(range(n))
    again = torch.Generator().manual_seed(11)
    assert _epoch(split, again, window_blocks) == first
    assert _epoch(split, again, window_blocks) == second


def test_a_window_mixes_rows_of_distant_blocks():
    split = InMemoryBlocks(_numbered(64_000), block_rows=1000)
    rows, order = next(shuffled_windows(split, torch.Generator().manual_seed(0), 8))
    blocks = {int(v) // 1000 for v in rows.dense[order[:256].numpy(), 0]}
    assert len(blocks) == 8  # a batch of 256 draws from all 8 blocks of its window
    assert max(blocks) - min(blocks) > 8  # and the blocks are not neighbours


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.lists(st.integers(1, 25), min_size=1, max_size=6), st.data())
def test_blocks_cut_and_joined_give_the_split_back(n, cuts, data):
    features = (FeatureSpec("a", (5,)), FeatureSpec("bag", (4,), multi_valued=True))
    split = random_split(features, 2, n, seed=data.draw(st.integers(0, 9)))
    bounds = sorted({0, n, *(c % n for c in cuts)})
    blocks = InMemoryBlocks(split, bounds=bounds)
    order = data.draw(st.permutations(range(blocks.num_blocks)))
    joined = concat_splits([blocks.block(i) for i in sorted(order)])
    np.testing.assert_array_equal(joined.dense, split.dense)
    np.testing.assert_array_equal(joined.tables[0], split.tables[0])
    np.testing.assert_array_equal(joined.tables[1][0], split.tables[1][0])
    np.testing.assert_array_equal(joined.tables[1][1], split.tables[1][1])


def test_bounds_must_rise_from_zero_to_the_rows():
    with pytest.raises(ValueError, match="block bounds must rise from 0 to the split's 10 rows"):
        InMemoryBlocks(_numbered(10), bounds=[0, 5, 5, 10])


def test_evaluations_within_an_epoch_come_every_n_rows_and_not_at_its_end():
    features = (FeatureSpec("a", (50,)),)
    split = random_split(features, 2, 10_000, seed=1)
    config = DLRMConfig(num_dense=2, features=features, embedding_dim=4, bottom_mlp=(4,),
                        top_mlp=(4,))
    seen: list[tuple[int, int]] = []
    result = train(config, TrainConfig(batch_size=100, epochs=2, eval_every_rows=2500,
                                       early_stopping_patience=None),
                   split, split, val_sample=random_split(features, 2, 300, seed=2),
                   on_eval=lambda epoch, entry: seen.append((epoch, entry["rows_trained"])))
    assert seen == [(1, 2500), (1, 5000), (1, 7500), (2, 12500), (2, 15000), (2, 17500)]
    assert evaluations_per_epoch(10_000, 2500) == 3 and evaluations_per_epoch(10_000, None) == 0
    assert len(result.history) == 2


def test_eval_every_rows_needs_a_validation_split():
    features = (FeatureSpec("a", (5,)),)
    split = random_split(features, 1, 50)
    config = DLRMConfig(num_dense=1, features=features, embedding_dim=2, bottom_mlp=(2,),
                        top_mlp=(2,))
    with pytest.raises(ValueError, match="eval_every_rows needs a validation split"):
        train(config, TrainConfig(eval_every_rows=10), split, None)
