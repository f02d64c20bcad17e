"""collision_stats on hand-made cases."""

from __future__ import annotations

import numpy as np
import pytest

from mappers import collision_stats

IDS = np.array([10, 11, 12, 13])
COUNTS = np.array([5, 1, 1, 3])


def test_all_distinct_rows_never_collide() -> None:
    stats = collision_stats(np.array([3, 0, 2, 1]), IDS, COUNTS)
    assert stats == {
        "num_ids": 4,
        "rows_used": 4,
        "max_ids_per_row": 1,
        "mean_ids_per_row": 1.0,
        "collision_rate": 0.0,
    }


def test_everything_in_one_row_always_collides() -> None:
    stats = collision_stats(np.zeros(4, dtype=np.int64), IDS, COUNTS)
    assert stats["collision_rate"] == 1.0 and stats["rows_used"] == 1
    assert stats["max_ids_per_row"] == 4 and stats["mean_ids_per_row"] == 4.0
    single = collision_stats(np.array([7]), np.array([1]), np.array([9]))
    assert single["collision_rate"] == 0.0  # one id alone in its row


def test_collision_rate_is_frequency_weighted() -> None:
    # ids 10 and 11 share row 0 (counts 5 + 1); 12 and 13 alone: (5 + 1) / 10
    stats = collision_stats(np.array([0, 0, 1, 2]), IDS, COUNTS)
    assert stats["collision_rate"] == pytest.approx(0.6)
    assert stats["mean_ids_per_row"] == pytest.approx(4 / 3)
    zero_counts = collision_stats(np.array([0, 0, 1, 2]), IDS, np.zeros(4))
    assert zero_counts["collision_rate"] == pytest.approx(0.5)  # unweighted fallback


def test_tuple_rows_are_one_combined_key() -> None:
    first = np.array([0, 0, 1, 1])
    second = np.array([0, 1, 0, 1])  # separates every pair that shares `first`
    assert collision_stats((first, second), IDS, COUNTS)["collision_rate"] == 0.0
    same = collision_stats((first, np.zeros(4, dtype=np.int64)), IDS, COUNTS)
    assert same["collision_rate"] == 1.0 and same["rows_used"] == 2


def test_purity_and_nmi_by_hand() -> None:
    clusters = np.array([0, 0, 1, 1])
    perfect = collision_stats(np.array([5, 5, 9, 9]), IDS, COUNTS, clusters=clusters)
    assert perfect["purity"] == 1.0 and perfect["nmi"] == pytest.approx(1.0)
    mixed = collision_stats(np.array([0, 0, 0, 1]), IDS, COUNTS, clusters=clusters)
    assert mixed["purity"] == pytest.approx(0.75)  # row 0 majority: 2 of 3; row 1: 1 of 1
    # H(C) = ln 2; rows {0,0,0,1}: H(R) = -(3/4 ln 3/4 + 1/4 ln 1/4); I = H(C) - H(C|R)
    h_c = np.log(2)
    h_r = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    h_c_given_r = 0.75 * -(2 / 3 * np.log(2 / 3) + 1 / 3 * np.log(1 / 3))
    expected = (h_c - h_c_given_r) / ((h_c + h_r) / 2)  # arithmetic normalisation (sklearn)
    assert mixed["nmi"] == pytest.approx(expected)
    independent = collision_stats(np.array([0, 1, 0, 1]), IDS, COUNTS, clusters=clusters)
    assert independent["nmi"] == pytest.approx(0.0, abs=1e-12) and independent["purity"] == 0.5


def test_empty_and_invalid_input() -> None:
    empty = collision_stats(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0))
    assert empty["collision_rate"] == 0.0 and empty["rows_used"] == 0
    with pytest.raises(
        ValueError, match=r"rows must be int arrays aligned with ids \(shape \(4,\)\)"
    ):
        collision_stats(np.zeros(3, dtype=np.int64), IDS, COUNTS)
    with pytest.raises(ValueError, match=r"counts must be >= 0 and aligned with ids"):
        collision_stats(np.zeros(4, dtype=np.int64), IDS, COUNTS[:2])
    with pytest.raises(ValueError, match=r"clusters must be ints aligned with ids"):
        collision_stats(np.zeros(4, dtype=np.int64), IDS, COUNTS, clusters=np.zeros(3, dtype=int))


def test_table_usage_counts_the_rows_no_training_id_reaches() -> None:
    stats = collision_stats(np.array([0, 0, 2, 2]), IDS, COUNTS, table_sizes=(5,))
    assert (stats["table_rows"], stats["rows_hit"]) == (5, 2)
    assert stats["unused_row_share"] == pytest.approx(0.6)
    # two tables: rows hit are counted table by table (3 of 4 and 2 of 3)
    pair = (np.array([0, 1, 2, 2]), np.array([0, 1, 0, 1]))
    stats = collision_stats(pair, IDS, COUNTS, table_sizes=(4, 3))
    assert (stats["table_rows"], stats["rows_hit"]) == (7, 5)
    assert stats["unused_row_share"] == pytest.approx(2 / 7)
    with pytest.raises(ValueError, match=r"table_sizes must give one size per table \(2\), got "
                                         r"\(4,\)"):
        collision_stats(pair, IDS, COUNTS, table_sizes=(4,))
