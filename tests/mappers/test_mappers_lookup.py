"""IdIndex: exact lookup of int64 keys, against a Python dict."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from mappers.lookup import MISSING, IdIndex

INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=60, deadline=None)
@given(
    keys=st.sets(st.one_of(INT64, st.integers(-3, 3)), max_size=200),
    queries=st.lists(st.one_of(INT64, st.integers(-3, 3)), max_size=200),
)
def test_lookup_matches_a_dict(keys: set[int], queries: list[int]) -> None:
    key_array = np.array(sorted(keys), dtype=np.int64)
    table = {k: i for i, k in enumerate(key_array.tolist())}
    query = np.array(queries + key_array.tolist(), dtype=np.int64)
    found = IdIndex(key_array, np.arange(key_array.size)).lookup(query)
    expected = [table.get(q, MISSING) for q in query.tolist()]
    assert found.dtype == np.int64 and found.tolist() == expected


def test_lookup_at_scale_with_long_probe_runs() -> None:
    rng = np.random.default_rng(0)
    keys = np.unique(rng.integers(-(2**63), 2**63 - 1, size=200_000, dtype=np.int64))
    values = rng.integers(0, 2**31 - 1, size=keys.size)
    index = IdIndex(keys, values)
    queries = np.concatenate(
        [keys, rng.integers(-(2**63), 2**63 - 1, size=100_000, dtype=np.int64)]
    )
    positions = np.searchsorted(keys, queries).clip(max=keys.size - 1)
    expected = np.where(keys[positions] == queries, values[positions], MISSING)
    np.testing.assert_array_equal(index.lookup(queries), expected)
    assert index.memory_nbytes >= 12 * keys.size
