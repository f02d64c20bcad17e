"""Pareto frontier of a sweep (size vs loss) and selection of one point for export.

Pure functions, numpy only. Every objective is minimised. A point ``a`` *dominates* ``b``
when ``a <= b`` on every objective and ``a < b`` on at least one; a point is on the
frontier when no other point dominates it.

Ties and duplicates: exact duplicates do not dominate each other, so when a point is on the
frontier every copy of it is too; a point that ties another on some objectives is dominated
only if it is strictly worse on at least one other. This is Optuna's rule for
``study.best_trials`` (``optuna/study/_multi_objective.py``: ``_is_pareto_front`` runs on
``np.unique`` rows and maps the result back to every duplicate); the tests check that both
give the same set on random point sets with ties. ``-0.0`` and ``0.0`` are equal.

NaN: a point with NaN in any objective is never on the frontier and dominates nothing; it is
treated as a failed trial (Optuna refuses NaN values and marks a trial whose objective
returned NaN as failed, so it never reaches ``best_trials``).
``+inf`` and ``-inf`` are ordinary values: any finite value beats ``+inf`` on that axis, and
two equal infinities tie like any other equal values.

Trial rows are mappings (one per trial) holding at least the x and y keys, by default
``total_bytes`` (the Pareto x-axis, see docs/DESIGN.md: embedding + mapping + dense bytes) and
``val_logloss``. A row whose x or y is missing, None or NaN is a failed trial: it stays in
the table with ``on_frontier`` False. Ties in sorting and selection are broken by the other
objective, then by ``trial_id`` (numbers numerically, others as text; rows without one keep
their input order).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from sweep.errors import UserError

__all__ = ["format_bytes", "frontier_table", "pareto_mask", "select_point"]

# Rows of the k-D path compared in one numpy step; memory is (block x frontier x k) bools.
_KD_BLOCK = 256


def pareto_mask(costs: ArrayLike) -> np.ndarray:
    """Boolean mask of the non-dominated rows of ``costs`` (n_points, n_objectives).

    Minimisation on every column. O(n log n) for one or two objectives (sort, then a
    running minimum); for three or more, the lexicographically sorted unique rows are
    checked block-wise against the frontier found so far, O(n x frontier size x k).
    Returns a (n_points,) bool array; empty input gives an empty mask.
    """
    arr = np.asarray(costs)
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"costs must be a real numeric array, got dtype {arr.dtype}")
    if arr.size == 0 and arr.ndim in (1, 2):
        return np.zeros(arr.shape[0], dtype=bool)
    if arr.ndim != 2:
        raise ValueError(
            f"costs must be a 2-D array (n_points, n_objectives), got shape {arr.shape}"
        )
    if arr.dtype.kind == "f":
        values = arr.astype(np.float64) + 0.0  # + 0.0 turns -0.0 into 0.0
    elif arr.dtype.kind == "b":
        values = arr.astype(np.int64)
    else:
        values = arr
    mask = np.zeros(len(values), dtype=bool)
    if values.dtype.kind == "f":
        valid = ~np.isnan(values).any(axis=1)
    else:
        valid = np.ones(len(values), dtype=bool)
    if not valid.any():
        return mask
    # np.unique sorts rows lexicographically, so a row can only be dominated by an earlier one.
    unique, inverse = np.unique(values[valid], axis=0, return_inverse=True)
    mask[valid] = _front_of_unique_sorted(unique)[inverse.reshape(-1)]
    return mask


def _front_of_unique_sorted(unique: np.ndarray) -> np.ndarray:
    """Frontier mask of unique, lexicographically sorted rows (m, k)."""
    num_points, num_objectives = unique.shape
    on_front = np.zeros(num_points, dtype=bool)
    if num_objectives == 1:
        on_front[0] = True  # the minimum; its duplicates were merged by np.unique
    elif num_objectives == 2:
        # Row i (i > 0) is dominated iff some earlier row is <= on y: x is sorted, rows differ.
        running_min = np.minimum.accumulate(unique[:, 1])
        on_front[0] = True
        on_front[1:] = unique[1:, 1] < running_min[:-1]
    else:
        _front_kd(unique, on_front)
    return on_front


def _front_kd(unique: np.ndarray, on_front: np.ndarray) -> None:
    """Fill ``on_front`` for k >= 3 objectives, block by block in sorted order.

    If a row is dominated, some frontier row dominates it (dominance is transitive) and that
    row sorts earlier, so each block is compared with the frontier so far plus itself.
    """
    num_points = len(unique)
    front = np.empty(0, dtype=np.intp)
    for start in range(0, num_points, _KD_BLOCK):
        block_idx = np.arange(start, min(start + _KD_BLOCK, num_points))
        block = unique[block_idx][:, None, :]  # (b, 1, k)
        candidates = unique[np.concatenate([front, block_idx])][None, :, :]  # (1, m, k)
        dominates = (candidates <= block).all(axis=2) & (candidates < block).any(axis=2)
        new_front = block_idx[~dominates.any(axis=1)]
        on_front[new_front] = True
        front = np.concatenate([front, new_front])


def frontier_table(
    rows: Iterable[Mapping[str, Any]], x: str = "total_bytes", y: str = "val_logloss"
) -> list[dict[str, Any]]:
    """Every trial row, copied, with ``on_frontier`` set, sorted by ``x`` (failed rows last).

    Sort order: x, then y, then trial id, then input order. A failed trial (x or y missing,
    None or NaN) is kept with ``on_frontier`` False. An existing ``on_frontier`` is replaced.
    """
    rows = _as_rows(rows, "rows")
    points = _points(rows, x, y)  # (n, 2)
    mask = pareto_mask(points)
    table = [{**row, "on_frontier": bool(flag)} for row, flag in zip(rows, mask, strict=True)]
    order = sorted(range(len(rows)), key=lambda i: _sort_key(points[i], rows[i], i))
    return [table[i] for i in order]


def select_point(
    table: Iterable[Mapping[str, Any]],
    max_bytes: float | None = None,
    max_val_loss: float | None = None,
    *,
    x: str = "total_bytes",
    y: str = "val_logloss",
) -> Mapping[str, Any]:
    """The frontier row to export: give exactly one of ``max_bytes`` or ``max_val_loss``.

    ``max_bytes=B``: lowest ``y`` among frontier rows with ``x <= B`` (ties: smaller x, then
    trial id). ``max_val_loss=L``: smallest ``x`` among frontier rows with ``y <= L`` (ties:
    lower y, then trial id). The frontier is recomputed from x and y, so any trial rows work;
    the chosen input row itself is returned. No row qualifies -> ValueError.
    """
    if (max_bytes is None) == (max_val_loss is None):
        raise UserError(
            "give exactly one of max_bytes or max_val_loss, "
            f"got max_bytes={max_bytes!r}, max_val_loss={max_val_loss!r}"
        )
    rows = _as_rows(table, "table")
    # what is being ranked
    noun = "configuration" if any("configuration" in row for row in rows) else "trial"
    points = _points(rows, x, y)  # (n, 2)
    complete = ~np.isnan(points).any(axis=1)
    if not complete.any():
        raise UserError(
            f"no completed {noun} with both {x!r} and {y!r} among {len(rows)} rows; "
            "nothing to select"
        )
    front = np.flatnonzero(pareto_mask(points))
    if max_bytes is not None:
        budget = _check_bound("max_bytes", max_bytes, non_negative=True)
        fits = [i for i in front if points[i, 0] <= budget]
        if not fits:
            smallest = float(points[complete, 0].min())
            raise UserError(
                f"no {noun} fits max_bytes={max_bytes!r} ({format_bytes(budget)}): the smallest "
                f"{x} among completed {noun}s is {smallest:.17g} ({format_bytes(smallest)})"
            )
        best = min(fits, key=lambda i: (points[i, 1], points[i, 0], _trial_key(rows[i], i)))
    else:
        bound = _check_bound("max_val_loss", max_val_loss, non_negative=False)
        fits = [i for i in front if points[i, 1] <= bound]
        if not fits:
            lowest = float(points[complete, 1].min())
            raise UserError(
                f"no {noun} reaches max_val_loss={max_val_loss!r}: the lowest {y} among "
                f"completed {noun}s is {lowest:.17g}"
            )
        best = min(fits, key=lambda i: (points[i, 0], points[i, 1], _trial_key(rows[i], i)))
    return rows[best]


def format_bytes(num_bytes: float) -> str:
    """Human-readable binary size: 512 -> '512 B', 1536 -> '1.5 KiB', 3 * 2**20 -> '3.0 MiB'."""
    value = float(num_bytes)
    if not math.isfinite(value):
        return str(value)
    units = ("B", "KiB", "MiB", "GiB", "TiB", "PiB")
    power = 0
    while abs(value) >= 1024 and power < len(units) - 1:
        value /= 1024
        power += 1
    return f"{value:g} B" if power == 0 else f"{value:.1f} {units[power]}"


def _as_rows(rows: Iterable[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    if isinstance(rows, Mapping | str | bytes):
        raise TypeError(f"{name} must be an iterable of row mappings, got {type(rows).__name__}")
    rows = list(rows)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(
                f"{name}[{i}] must be a mapping of trial fields, got {type(row).__name__}"
            )
    return rows


def _metric(row: Mapping[str, Any], key: str, index: int) -> float:
    """The row's value for ``key`` as float; NaN when missing or None (a failed trial)."""
    value = row.get(key)
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"row {index} field {key!r} must be a real number or missing, got {value!r}"
        )
    return float(value)


def _points(rows: list[Mapping[str, Any]], x: str, y: str) -> np.ndarray:
    """(n, 2) float64 array of (x, y) per row, NaN where missing."""
    points = [(_metric(row, x, i), _metric(row, y, i)) for i, row in enumerate(rows)]
    return np.array(points, dtype=np.float64).reshape(len(rows), 2)


def _trial_key(row: Mapping[str, Any], index: int) -> tuple[int, float, str]:
    """Deterministic tie-break: numeric trial ids, then textual ones, then input order."""
    trial_id = row.get("trial_id")
    if trial_id is None:
        return (2, float(index), "")
    if isinstance(trial_id, numbers.Real) and not isinstance(trial_id, bool):
        return (0, float(trial_id), "")
    return (1, 0.0, str(trial_id))


def _sort_key(point: np.ndarray, row: Mapping[str, Any], index: int) -> tuple:
    x, y = float(point[0]), float(point[1])
    return (
        math.isnan(x),
        0.0 if math.isnan(x) else x,
        math.isnan(y),
        0.0 if math.isnan(y) else y,
        _trial_key(row, index),
    )


def _check_bound(name: str, value: Any, *, non_negative: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise UserError(f"{name} must be a real number, got {value!r}")
    bound = float(value)
    if math.isnan(bound) or (non_negative and bound < 0):
        allowed = "a non-negative number" if non_negative else "a number, not NaN"
        raise UserError(f"{name} must be {allowed}, got {value!r}")
    return bound
