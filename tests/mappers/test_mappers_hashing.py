"""hash / double_hash / qr and the hashing primitives."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mapper_testdata import VOCAB, fitted
from scipy.stats import chisquare

from mappers import get_mapper
from mappers.hashing import derive_key, hash_to_pair, hash_to_range, mix64

SEQUENTIAL = np.arange(1_000_000, dtype=np.int64)


def test_hash_spreads_sequential_ids_uniformly() -> None:
    rows = get_mapper("hash", num_rows=1000, seed=0).fit(*VOCAB[:2]).transform(SEQUENTIAL)
    counts = np.bincount(rows, minlength=1000)
    assert counts.size == 1000
    assert chisquare(counts).pvalue > 0.001


def test_hash_is_not_modulo() -> None:
    rows = get_mapper("hash", num_rows=1000).fit(*VOCAB[:2]).transform(SEQUENTIAL[:1000])
    assert np.mean(rows == SEQUENTIAL[:1000] % 1000) < 0.01


def test_different_seeds_give_different_rows() -> None:
    a = get_mapper("hash", num_rows=1000, seed=0).fit(*VOCAB[:2]).transform(SEQUENTIAL)
    b = get_mapper("hash", num_rows=1000, seed=1).fit(*VOCAB[:2]).transform(SEQUENTIAL)
    assert np.mean(a == b) < 0.01  # ~1/1000 by chance


def test_double_hash_tables_are_independent_and_split_the_budget() -> None:
    mapper = get_mapper("double_hash", num_rows=21).fit(*VOCAB[:2])
    assert mapper.table_sizes == (11, 10) and mapper.combine == "sum"
    first, second = mapper.transform(SEQUENTIAL[:220_000])
    joint = np.bincount(first * 10 + second, minlength=110)
    assert chisquare(joint).pvalue > 0.001  # every (row0, row1) pair equally likely


@pytest.mark.parametrize("op", ["mult", "add", "concat"])
def test_qr_tables_sum_to_num_rows_and_op_is_combine(op: str) -> None:
    mapper = get_mapper("qr", num_rows=100, collisions=8, op=op).fit(*VOCAB[:2])
    assert mapper.table_sizes == (92, 8) and sum(mapper.table_sizes) == 100
    assert mapper.combine == op
    quotient, remainder = mapper.transform(SEQUENTIAL[:184_000])
    joint = np.bincount(quotient * 8 + remainder, minlength=92 * 8)
    assert chisquare(joint).pvalue > 0.001  # uniform over the Q * m virtual ids


def test_qr_default_collisions_balance_the_tables() -> None:
    assert get_mapper("qr", num_rows=101).table_sizes == (51, 50)


def test_qr_rejects_bad_op_and_collisions() -> None:
    with pytest.raises(ValueError, match=r"op must be one of 'mult', 'add', 'concat', got 'mul'"):
        get_mapper("qr", num_rows=10, op="mul")
    with pytest.raises(ValueError, match=r"collisions must be an int in \[1, 9\], got 10"):
        get_mapper("qr", num_rows=10, collisions=10)


@pytest.mark.parametrize("name", ["hash", "double_hash", "qr"])
def test_hash_family_nbytes_is_constant(name: str) -> None:
    small = fitted(name)
    big = get_mapper(name, num_rows=10**6).fit(np.arange(5000), np.ones(5000, dtype=np.int64))
    assert small.nbytes == big.nbytes <= 64
    assert small.num_unseen_ == 0
    small.transform(np.arange(10**4))
    assert small.num_unseen_ == 0


@settings(max_examples=50, deadline=None)
@given(
    ids=st.lists(st.integers(-(2**63), 2**63 - 1), max_size=50),
    size=st.integers(1, 2**32),
    seed=st.integers(0, 2**63 - 1),
)
def test_hash_to_range_in_range_for_any_int64(ids: list[int], size: int, seed: int) -> None:
    rows = hash_to_range(np.array(ids, dtype=np.int64), derive_key(seed, 0), size)
    assert rows.dtype == np.int64 and np.all((rows >= 0) & (rows < size))
    high, low = hash_to_pair(np.array(ids, dtype=np.int64), derive_key(seed, 1), size, 7)
    assert np.all((high >= 0) & (high < size) & (low >= 0) & (low < 7))


def test_mix64_is_injective_on_a_sample_and_keys_differ() -> None:
    x = np.concatenate([SEQUENTIAL, -SEQUENTIAL[1:], [np.iinfo(np.int64).min]])
    assert np.unique(mix64(x, derive_key(0, 0))).size == x.size
    keys = {int(derive_key(seed, stream)) for seed in range(50) for stream in range(4)}
    assert len(keys) == 200
