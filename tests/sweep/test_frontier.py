"""Tests for sweep.frontier (frontier, table, selection) and sweep.frontier_report (writers)."""

from __future__ import annotations

import csv
import math

import numpy as np
import optuna
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sweep.frontier.pareto as pareto
from sweep.errors import UserError
from sweep.frontier import format_bytes, frontier_table, pareto_mask, select_point
from sweep.frontier.report import plot_pareto, write_pareto_csv, write_pareto_md

INF = math.inf
NAN = math.nan
# Few distinct values, so random point sets are full of ties and exact duplicates.
TIED_VALUES = st.sampled_from([0.0, 1.0, 2.0, 3.0])
TIED_VALUES_INF = st.sampled_from([-1.0, 0.0, 1.0, 2.0, INF])


def points(num_objectives: int, values=TIED_VALUES, max_size: int = 40):
    row = st.lists(values, min_size=num_objectives, max_size=num_objectives)
    return st.lists(row, min_size=1, max_size=max_size)


def dominates(a: np.ndarray, b: np.ndarray) -> bool:
    return bool(np.all(a <= b) and np.any(a < b))


def brute_force_mask(costs: np.ndarray) -> np.ndarray:
    """Reference O(n^2) frontier straight from the definition; NaN rows excluded."""
    valid = ~np.isnan(costs).any(axis=1)
    return np.array([
        valid[i] and not any(valid[j] and dominates(costs[j], costs[i]) for j in range(len(costs)))
        for i in range(len(costs))
    ], dtype=bool)


def optuna_front(costs: np.ndarray) -> set[int]:
    study = optuna.create_study(directions=["minimize"] * costs.shape[1])
    for values in costs.tolist():
        study.add_trial(optuna.trial.create_trial(params={}, distributions={}, values=values))
    return {trial.number for trial in study.best_trials}


@pytest.fixture(autouse=True)
def quiet_optuna():
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    yield
    optuna.logging.set_verbosity(verbosity)


# ---------------------------------------------------------------- pareto_mask: properties


@pytest.mark.parametrize("num_objectives", [2, 3])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_frontier_is_undominated_and_dominates_the_rest(num_objectives, data):
    costs = np.array(data.draw(points(num_objectives)), dtype=float)  # (n, k)
    mask = pareto_mask(costs)
    assert mask.shape == (len(costs),) and mask.dtype == bool
    front = costs[mask]
    for i in range(len(costs)):
        if mask[i]:
            assert not any(dominates(other, costs[i]) for other in costs)
        else:
            assert any(dominates(f, costs[i]) for f in front)
    # Exact duplicates share their fate.
    for i in range(len(costs)):
        same = np.all(costs == costs[i], axis=1)
        assert np.all(mask[same] == mask[i])


@pytest.mark.parametrize("num_objectives", [1, 2, 3, 4])
@settings(max_examples=50, deadline=None)
@given(data=st.data())
def test_frontier_equals_optuna_best_trials(num_objectives, data):
    costs = np.array(data.draw(points(num_objectives, TIED_VALUES_INF, 30)), dtype=float)
    assert set(np.flatnonzero(pareto_mask(costs)).tolist()) == optuna_front(costs)


@settings(max_examples=50, deadline=None)
@given(costs=points(3, st.sampled_from([0.0, 1.0, 2.0, INF, NAN])))
def test_nan_rows_never_on_frontier_and_dominate_nothing(costs):
    costs = np.array(costs, dtype=float)
    mask = pareto_mask(costs)
    has_nan = np.isnan(costs).any(axis=1)
    assert not mask[has_nan].any()
    np.testing.assert_array_equal(mask[~has_nan], pareto_mask(costs[~has_nan]))
    np.testing.assert_array_equal(mask, brute_force_mask(costs))


@pytest.mark.parametrize("num_objectives", [2, 3, 5])
def test_many_points_match_brute_force_across_blocks(num_objectives):
    rng = np.random.default_rng(0)
    n = 3 * pareto._KD_BLOCK + 17  # several blocks of the k-D path
    costs = rng.integers(0, 12, size=(n, num_objectives)).astype(float)
    costs[::50] = costs[1::50]  # duplicates across blocks
    costs[rng.random(n) < 0.05, 0] = INF
    np.testing.assert_array_equal(pareto_mask(costs), brute_force_mask(costs))


def test_anticorrelated_points_are_all_on_the_frontier():
    rng = np.random.default_rng(1)
    x = np.sort(rng.random(5000))
    costs2 = np.stack([x, 1.0 - x], axis=1)  # (5000, 2) a line: nobody dominates anybody
    assert pareto_mask(costs2).all()
    plane = rng.random((2000, 2))
    costs3 = np.column_stack([plane, 2.0 - plane.sum(axis=1)])  # on the plane x+y+z=2
    assert pareto_mask(costs3).all()


# ---------------------------------------------------------------- pareto_mask: edge cases


def test_empty_input_gives_empty_mask():
    for empty in ([], np.empty((0,)), np.empty((0, 2)), np.empty((0, 3))):
        mask = pareto_mask(empty)
        assert mask.shape == (0,) and mask.dtype == bool


def test_single_point_is_the_frontier():
    np.testing.assert_array_equal(pareto_mask([[5.0, 7.0]]), [True])
    np.testing.assert_array_equal(pareto_mask([[5.0, 7.0, INF]]), [True])


@pytest.mark.parametrize("num_objectives", [1, 2, 3])
def test_all_duplicates_are_all_on_the_frontier(num_objectives):
    assert pareto_mask(np.full((6, num_objectives), 2.5)).all()


def test_ties_on_one_axis_keep_only_the_strictly_better():
    costs = [[1, 5], [1, 3], [1, 3], [2, 3], [0, 9]]
    np.testing.assert_array_equal(pareto_mask(costs), [False, True, True, False, True])


def test_inf_is_an_ordinary_value():
    costs = [[INF, 0.0], [INF, 0.0], [0.0, INF], [-0.0, 5.0], [0.0, 5.0], [INF, INF]]
    # [0, inf] loses to [0, 5]; the two [inf, 0] tie; -0.0 equals 0.0; [inf, inf] loses.
    np.testing.assert_array_equal(
        pareto_mask(costs), [True, True, False, True, True, False]
    )
    np.testing.assert_array_equal(pareto_mask([[INF, INF], [INF, INF]]), [True, True])
    np.testing.assert_array_equal(pareto_mask([[-INF, 3.0], [0.0, 1.0]]), [True, True])


def test_nan_points_are_never_on_the_frontier():
    costs = [[NAN, 0.0], [1.0, 1.0], [0.0, NAN], [2.0, 2.0]]
    np.testing.assert_array_equal(pareto_mask(costs), [False, True, False, False])
    assert not pareto_mask([[NAN, NAN], [NAN, 1.0]]).any()


def test_integer_and_bool_costs():
    np.testing.assert_array_equal(pareto_mask(np.array([[3, 1], [1, 3], [3, 3]])), [1, 1, 0])
    np.testing.assert_array_equal(pareto_mask([[True, False], [True, True]]), [True, False])


def test_bad_costs_are_rejected():
    with pytest.raises(ValueError, match=r"costs must be a 2-D array .* got shape \(3,\)"):
        pareto_mask([1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match=r"got shape \(2, 2, 2\)"):
        pareto_mask(np.zeros((2, 2, 2)))
    with pytest.raises(TypeError, match="costs must be a real numeric array, got dtype <U1"):
        pareto_mask([["a", "b"]])


# ---------------------------------------------------------------- frontier_table


def trial(trial_id, total_bytes, val_logloss, strategy="hash", **extra):
    row = {"trial_id": trial_id, "strategy": strategy, "total_bytes": total_bytes}
    if val_logloss is not None:
        row["val_logloss"] = val_logloss
    return {**row, **extra}


ROWS = [
    trial("t3", 4000, 0.46, "frequency_embedding", compression=0.1, dim=8, seed=0,
          test_logloss=0.47, compression_ratio=25.0),
    trial("t1", 1000, 0.50, "hash", compression=0.01, dim=4, seed=0,
          test_logloss=0.51, compression_ratio=100.0),
    trial("t2", 2000, 0.52, "hash", compression=0.05, dim=4, seed=1),  # dominated by t1
    trial("t4", 100000, 0.44, "full", compression=1.0, dim=16, seed=0, compression_ratio=1.0),
    trial("t5", 3000, None, "qr"),  # failed: no val_logloss
    trial("t6", 4000, 0.46, "embedding"),  # exact tie with t3
    {"trial_id": "t7", "strategy": "embedding", "val_logloss": 0.1},  # failed: no bytes
    trial("t8", 50000, NAN, "hash"),  # failed: NaN loss
]


def test_frontier_table_flags_sorts_and_keeps_failed_trials():
    table = frontier_table(ROWS)
    assert [r["trial_id"] for r in table] == ["t1", "t2", "t5", "t3", "t6", "t8", "t4", "t7"]
    front = {r["trial_id"] for r in table if r["on_frontier"]}
    assert front == {"t1", "t3", "t6", "t4"}
    assert all("on_frontier" not in r for r in ROWS)  # input rows are not mutated
    assert len(table) == len(ROWS)


def test_frontier_table_ties_on_x_sorted_by_y_then_trial_id():
    rows = [trial(10, 5, 0.3), trial(9, 5, 0.3), trial(2, 5, 0.4), trial(1, 7, 0.2)]
    table = frontier_table(rows)
    assert [r["trial_id"] for r in table] == [9, 10, 2, 1]
    assert [r["on_frontier"] for r in table] == [True, True, False, True]


def test_frontier_table_custom_axes_and_empty():
    rows = [{"bytes": 1, "loss": 2.0}, {"bytes": 2, "loss": 1.0}, {"bytes": 3, "loss": 3.0}]
    table = frontier_table(rows, x="bytes", y="loss")
    assert [r["on_frontier"] for r in table] == [True, True, False]
    assert frontier_table([]) == []


def test_frontier_table_rejects_bad_rows():
    with pytest.raises(TypeError, match=r"row 0 field 'total_bytes' must be a real number"):
        frontier_table([{"total_bytes": "1 MB", "val_logloss": 0.4}])
    with pytest.raises(TypeError, match=r"rows\[1\] must be a mapping of trial fields, got int"):
        frontier_table([{"total_bytes": 1, "val_logloss": 0.4}, 3])
    with pytest.raises(TypeError, match="rows must be an iterable of row mappings, got dict"):
        frontier_table({"total_bytes": 1, "val_logloss": 0.4})


# ---------------------------------------------------------------- select_point


def test_budget_picks_lowest_loss_that_fits():
    assert select_point(ROWS, max_bytes=3999)["trial_id"] == "t1"
    assert select_point(ROWS, max_bytes=4000)["trial_id"] == "t3"  # tie t3/t6 -> trial id
    assert select_point(ROWS, max_bytes=10**9)["trial_id"] == "t4"
    assert select_point(ROWS, max_bytes=INF)["trial_id"] == "t4"
    chosen = select_point(ROWS, max_bytes=1000)
    assert chosen is ROWS[1]  # the input row itself


def test_loss_bound_picks_smallest_model():
    assert select_point(ROWS, max_val_loss=0.5)["trial_id"] == "t1"
    assert select_point(ROWS, max_val_loss=0.49)["trial_id"] == "t3"
    assert select_point(ROWS, max_val_loss=0.44)["trial_id"] == "t4"
    assert select_point(frontier_table(ROWS), max_val_loss=0.46)["trial_id"] == "t3"


def test_selection_ties_broken_by_trial_id():
    rows = [trial("b", 10, 0.3), trial("a", 10, 0.3), trial("c", 20, 0.2)]
    assert select_point(rows, max_bytes=15)["trial_id"] == "a"
    assert select_point(rows, max_val_loss=0.3)["trial_id"] == "a"


def test_nothing_qualifies_names_budget_and_smallest_value():
    with pytest.raises(
        ValueError,
        match=r"no trial fits max_bytes=500 \(500 B\): the smallest total_bytes among "
        r"completed trials is 1000 \(1000 B\)",
    ):
        select_point(ROWS, max_bytes=500)
    with pytest.raises(
        ValueError,
        match=r"no trial reaches max_val_loss=0.4: the lowest val_logloss among completed "
        r"trials is 0.44",
    ):
        select_point(ROWS, max_val_loss=0.4)
    with pytest.raises(ValueError, match=r"no completed trial with both 'total_bytes' and "
                       r"'val_logloss' among 2 rows"):
        select_point([ROWS[4], ROWS[6]], max_bytes=10**9)
    configurations = [{**row, "configuration": f"c{i}"} for i, row in enumerate(ROWS)]
    with pytest.raises(ValueError,
                       match=r"no configuration fits max_bytes=500 \(500 B\): the smallest "
                             r"total_bytes "
                       r"among completed configurations is 1000"):
        select_point(configurations, max_bytes=500)


def test_both_or_neither_bound_is_an_error():
    message = r"give exactly one of max_bytes or max_val_loss, got max_bytes="
    with pytest.raises(ValueError, match=message + r"None, max_val_loss=None"):
        select_point(ROWS)
    with pytest.raises(ValueError, match=message + r"1000, max_val_loss=0.5"):
        select_point(ROWS, max_bytes=1000, max_val_loss=0.5)


def test_bad_bounds_are_rejected():  # the user's bounds: UserError, exit 2 on the command line
    with pytest.raises(UserError, match="max_bytes must be a non-negative number, got -1"):
        select_point(ROWS, max_bytes=-1)
    with pytest.raises(UserError, match="max_val_loss must be a number, not NaN, got nan"):
        select_point(ROWS, max_val_loss=NAN)
    with pytest.raises(UserError, match="max_bytes must be a real number, got '1MB'"):
        select_point(ROWS, max_bytes="1MB")


def test_format_bytes():
    assert format_bytes(512) == "512 B"
    assert format_bytes(1536) == "1.5 KiB"
    assert format_bytes(3 * 2**20) == "3.0 MiB"
    assert format_bytes(INF) == "inf"


# ---------------------------------------------------------------- writers


def test_csv_round_trip_keeps_flags_and_values(tmp_path):
    table = frontier_table(ROWS)
    path = write_pareto_csv(table, tmp_path / "out" / "pareto.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        read = list(csv.DictReader(handle))
    assert [r["trial_id"] for r in read] == [r["trial_id"] for r in table]
    assert {r["trial_id"]: r["on_frontier"] for r in read} == {
        r["trial_id"]: str(r["on_frontier"]) for r in table
    }
    by_id = {r["trial_id"]: r for r in read}
    assert float(by_id["t3"]["val_logloss"]) == 0.46 and by_id["t3"]["total_bytes"] == "4000"
    assert by_id["t5"]["val_logloss"] == "" and by_id["t8"]["val_logloss"] == "nan"
    assert list(read[0])[:3] == ["trial_id", "strategy", "compression"]


def test_markdown_lists_frontier_rows_and_counts(tmp_path):
    path = write_pareto_md(frontier_table(ROWS), tmp_path / "pareto.md", title="Demo sweep")
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Demo sweep\n")
    lines = text.splitlines()
    header = next(line for line in lines if line.startswith("| strategy"))
    assert header == (
        "| strategy | compression | dim | precision | seed | total_bytes | total_bytes (raw) | "
        "val_logloss | test_logloss | compression_ratio |"
    )
    rows = [line for line in lines if line.startswith("| ") and line != header]
    assert rows == [  # rows of no precision (not from a trial) leave it empty
        "| hash | 0.01 | 4 |  | 0 | 1000 B | 1000 | 0.5 | 0.51 | 100.0x |",
        "| frequency_embedding | 0.1 | 8 |  | 0 | 3.9 KiB | 4000 | 0.46 | 0.47 | 25.0x |",
        "| embedding |  |  |  |  | 3.9 KiB | 4000 | 0.46 |  |  |",
        "| full | 1 | 16 |  | 0 | 97.7 KiB | 100000 | 0.44 |  | 1.0x |",
    ]
    assert "8 trials: 5 ranked, 3 not ranked (no total_bytes or val_logloss); " \
        "4 on the frontier." in text


def test_markdown_without_completed_trials(tmp_path):
    text = write_pareto_md(frontier_table([ROWS[4]]), tmp_path / "p.md").read_text()
    assert "No completed trials, so no frontier." in text
    assert "1 trials: 0 ranked, 1 not ranked" in text


def test_markdown_says_why_a_trial_is_not_ranked(tmp_path):
    stopped = {"trial_id": "t9", "name": "hash-c64-d8-s0", "total_bytes": 10, "val_logloss": None,
               "excluded": "stopped early by the scheduler after 1 epoch(s)"}
    text = write_pareto_md(frontier_table([ROWS[0], stopped]), tmp_path / "p.md").read_text()
    assert ("Not ranked:\n\n- hash-c64-d8-s0: stopped early by the scheduler after 1 epoch(s)"
            in text)
    with pytest.raises(ValueError, match=r"table\[0\] has no 'on_frontier' field"):
        write_pareto_md(ROWS, tmp_path / "q.md")


def test_plot_writes_a_png(tmp_path):
    import matplotlib

    backend = matplotlib.get_backend()
    path = plot_pareto(frontier_table(ROWS), tmp_path / "plots" / "pareto.png")
    data = path.read_bytes()
    assert len(data) > 1000 and data[:8] == b"\x89PNG\r\n\x1a\n"
    assert matplotlib.get_backend() == backend  # no global backend switch
    empty = plot_pareto(frontier_table([]), tmp_path / "empty.png", title="nothing yet")
    assert empty.stat().st_size > 0
