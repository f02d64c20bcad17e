from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.datasets.prepared import take_bags


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 99), max_size=5), min_size=1, max_size=30), st.data())
def test_take_bags_equals_a_python_loop(bags, data):
    offsets = np.concatenate([[0], np.cumsum([len(b) for b in bags])]).astype(np.int64)
    values = np.array([v for b in bags for v in b], dtype=np.int64)
    rows = np.array(data.draw(st.lists(st.integers(0, len(bags) - 1), max_size=40)), dtype=np.int64)
    got_values, got_offsets = take_bags(values, offsets, rows)
    expected = [bags[r] for r in rows]
    assert got_offsets.tolist() == np.concatenate(
        [[0], np.cumsum([len(b) for b in expected])]).tolist()
    assert got_values.tolist() == [v for b in expected for v in b]
