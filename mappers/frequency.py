"""`frequency`: the hottest ids get rows of their own; the tail is hashed into the rest.

The frequency baseline of "Learning to Collide" (Ghaemmaghami et al., 2022; cf. Zhang et
al., 2020). With K = floor(hot_fraction * num_rows), the K ids with the largest counts
(ties: smaller id first) get dedicated rows 0..K-1 in that order, and every other id,
training or unseen, is hashed into the tail rows [K, usable), where usable = num_rows, or
num_rows - 1 under unseen="oov_row" (the last row is then the OOV row; K is capped at
usable). Fewer than K training ids: all are hot and the tail is [V, usable).

When the hot ids take every usable row (hot_fraction == 1 and V >= num_rows), no tail rows
remain: the remaining ids are then hashed over ALL usable rows, sharing them with hot ids,
rather than being crammed into one row.

Tail ids are hashed with the same seeded hash whether stored or not, so under unseen="hash"
(the default) only the hot ids are stored: the same rows as storing all, at
nbytes = 12 * min(K, V, max_explicit_ids) + 32; num_unseen_ then counts the tail ids too
(an upper bound, see mappers/learned.py). Under unseen="oov_row" or "error" every training
id is stored (nbytes = 12 * V + 32), since seen tail ids must be told apart from unseen ones.
"""

from __future__ import annotations

import math

import numpy as np

from .base import check_float
from .learned import LearnedMapper, LearnedRows, hottest


def hot_layout(
    ids: np.ndarray, counts: np.ndarray, num_hot: int, usable_rows: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """(indices of the hot ids, in row order 0..H-1; [lo, hi) of the rows left for the rest).

    H = min(num_hot, V, usable_rows). If no rows are left, the rest share all usable rows.
    """
    hot = hottest(ids, counts, min(num_hot, usable_rows))
    rest = (hot.size, usable_rows) if hot.size < usable_rows else (0, usable_rows)
    return hot, rest


def num_hot_ids(hot_fraction: float, num_rows: int) -> int:
    """K = floor(hot_fraction * num_rows), robust to float error (0.3 * 10 -> 3)."""
    return int(math.floor(hot_fraction * num_rows + 1e-9))


class FrequencyMapper(LearnedMapper):
    """Dedicated rows for the top floor(hot_fraction * num_rows) ids; hash for the rest."""

    name = "frequency"
    report_rank = 4

    def __init__(
        self,
        *,
        num_rows: int,
        hot_fraction: float = 0.5,
        unseen: str = "hash",
        max_explicit_ids: int | None = None,
        min_count: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(
            num_rows=num_rows,
            unseen=unseen,
            max_explicit_ids=max_explicit_ids,
            min_count=min_count,
            seed=seed,
        )
        self.hot_fraction = check_float("hot_fraction", hot_fraction, 0.0, 1.0, low_open=True)
        self._params = {**self._params, "hot_fraction": self.hot_fraction}

    def explicit_cap(self) -> int | None:
        """Under unseen="hash" the tail needs no storage: keep the hot ids only."""
        if self.unseen != "hash":
            return self.max_explicit_ids
        hot = min(num_hot_ids(self.hot_fraction, self.num_rows), self.usable_rows())
        return hot if self.max_explicit_ids is None else min(hot, self.max_explicit_ids)

    def _learn_rows(
        self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None
    ) -> LearnedRows:
        assert self.num_rows is not None
        num_hot = num_hot_ids(self.hot_fraction, self.num_rows)
        hot, rest = hot_layout(ids, counts, num_hot, self.usable_rows())
        rows = self.fallback_rows(ids, rest)
        rows[hot] = np.arange(hot.size)
        return LearnedRows(rows=rows, fallback=rest, num_rows=self.num_rows, oov_row=self.oov_row())
