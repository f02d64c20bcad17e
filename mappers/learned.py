"""Shared machinery of fitted (learned) mappers: explicit id table, hash fallback, unseen ids.

A learned strategy decides a row for every id of the SORTED training vocabulary
(`_learn_rows`). This base class then:

- learns rows only for ids seen at least `min_count` times (default 1: all), and stores the
  hottest `max_explicit_ids` of them (all when None) as explicit (key, row) pairs in an
  `IdIndex`; every other id takes the fallback: a seeded hash into the strategy's
  fallback range [lo, hi) (e.g. the tail rows of `frequency`). `min_count` matters when
  the embeddings were learned from the same labels (the probe): a rare id's embedding
  memorises its few training labels, so clustering rare ids by it groups them by label
  noise and leaks training labels into the rows (measured: results/README.md);
- applies the unseen-id policy to ids absent from the explicit table:
  "hash" (default: the fallback hash), "oov_row" (one reserved row: the LAST of the
  num_rows budget, so learned rows use [0, num_rows - 1)), or "error" (UnseenIdError);
- counts them in `num_unseen_`. With max_explicit_ids set, ids beyond the cap cannot be told
  apart from unseen ids, so the cap requires unseen="hash" and num_unseen_ then counts
  every id served by the fallback (an upper bound on truly unseen ids).

nbytes = 12 * (number of explicit ids) + 32 (hash key, num_rows, fallback range).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import NamedTuple

import numpy as np

from .base import (
    ID_BYTES,
    LEARNED_HEADER_BYTES,
    MAX_ROWS,
    UNSEEN_POLICIES,
    Mapper,
    UnseenIdError,
    check_choice,
    check_int,
    check_optional_int,
)
from .hashing import derive_key, hash_to_range
from .lookup import IdIndex

_SHOWN_UNSEEN = 5  # ids quoted in an unseen="error" message


class LearnedRows(NamedTuple):
    """What a strategy learned: rows aligned with the sorted vocabulary + its layout."""

    rows: np.ndarray  # (V,) int64 row of each training id
    fallback: tuple[int, int]  # [lo, hi): range the fallback hash maps into
    num_rows: int  # total rows of the (single) table
    oov_row: int  # reserved row for unseen="oov_row" (unused by other policies)


def hottest(ids: np.ndarray, counts: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k hottest ids: by count descending, ties by smaller id first."""
    k = min(k, ids.size)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    return np.lexsort((ids, -counts))[:k]


class LearnedMapper(Mapper):
    """Base of fitted single-table mappers: subclasses implement `_learn_rows`."""

    def __init__(
        self,
        *,
        num_rows: int | None,
        unseen: str = "hash",
        max_explicit_ids: int | None = None,
        min_count: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        self.unseen = check_choice("unseen", unseen, UNSEEN_POLICIES)
        self.min_count = check_int("min_count", min_count, 1)
        min_rows = 2 if self.unseen == "oov_row" else 1
        self.num_rows = (
            None if num_rows is None else check_int("num_rows", num_rows, min_rows, MAX_ROWS)
        )
        self.max_explicit_ids = check_optional_int("max_explicit_ids", max_explicit_ids, 0)
        if self.max_explicit_ids is not None and self.unseen != "hash":
            raise ValueError(
                f"max_explicit_ids={self.max_explicit_ids} requires unseen='hash' (ids beyond "
                f"the cap are hashed and cannot be told apart from unseen ids), "
                f"got unseen={self.unseen!r}"
            )
        if self.min_count > 1 and self.unseen != "hash":
            raise ValueError(
                f"min_count={self.min_count} requires unseen='hash' (rarer ids are hashed and "
                f"cannot be told apart from unseen ids), got unseen={self.unseen!r}"
            )
        self._params = {
            "num_rows": self.num_rows,
            "unseen": self.unseen,
            "max_explicit_ids": self.max_explicit_ids,
            "min_count": self.min_count,
            "seed": self.seed,
        }
        self._hash_keys = np.array([derive_key(self.seed, 0)], dtype=np.uint64)

    # -- strategy hook
    @abstractmethod
    def _learn_rows(
        self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None
    ) -> LearnedRows:
        """Rows for the sorted vocabulary, within the usable rows (see `usable_rows`)."""

    def explicit_cap(self) -> int | None:
        """How many of the hottest ids to store explicitly (None: all): max_explicit_ids."""
        return self.max_explicit_ids

    def usable_rows(self) -> int:
        """Rows available to training ids: num_rows, less the reserved OOV row if any."""
        assert self.num_rows is not None
        return self.num_rows - 1 if self.unseen == "oov_row" else self.num_rows

    def oov_row(self) -> int:
        """The reserved row of unseen="oov_row": the last row of the budget."""
        assert self.num_rows is not None
        return self.num_rows - 1

    def fallback_rows(self, ids: np.ndarray, fallback: tuple[int, int]) -> np.ndarray:
        """The seeded hash of `ids` into the range [lo, hi)."""
        lo, hi = fallback
        return hash_to_range(ids, self._hash_keys[0], hi - lo, offset=lo)

    # -- Mapper hooks
    def _fit(self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None) -> None:
        if self.min_count > 1:  # rarer ids take the fallback hash, like unseen ones
            eligible = counts >= self.min_count
            ids, counts = ids[eligible], counts[eligible]
            embeddings = None if embeddings is None else embeddings[eligible]
        learned = self._learn_rows(ids, counts, embeddings)
        lo, hi = learned.fallback
        assert 0 <= lo < hi <= learned.num_rows and 0 <= learned.oov_row < learned.num_rows
        assert learned.rows.shape == ids.shape
        assert ids.size == 0 or 0 <= learned.rows.min() <= learned.rows.max() < learned.num_rows
        cap = self.explicit_cap()
        if cap is not None and cap < ids.size:
            keep = np.sort(hottest(ids, counts, cap))
        else:
            keep = slice(None)
        self._set_state(
            keys=ids[keep],
            rows=learned.rows[keep].astype(np.int32),
            layout=np.array([learned.num_rows, lo, hi, learned.oov_row], dtype=np.int64),
        )

    def _set_state(self, keys: np.ndarray, rows: np.ndarray, layout: np.ndarray) -> None:
        self.keys_ = keys  # (K,) int64 sorted explicit ids
        self.rows_ = rows  # (K,) int32 their rows
        self.layout_ = layout  # (4,) int64 [num_rows, fallback lo, fallback hi, oov_row]
        self._index = IdIndex(keys, rows)

    def _transform_flat(self, ids: np.ndarray) -> np.ndarray:
        rows = self._index.lookup(ids)
        missing = np.flatnonzero(rows < 0)
        if missing.size == 0:
            return rows
        self.num_unseen_ += int(missing.size)
        _, lo, hi, oov_row = (int(v) for v in self.layout_)
        if self.unseen == "error":
            shown = np.unique(ids[missing])[:_SHOWN_UNSEEN].tolist()
            raise UnseenIdError(
                f"{missing.size} of {ids.size} ids are not in the fitted vocabulary "
                f"(unseen='error'), e.g. {shown}"
            )
        if self.unseen == "oov_row":
            rows[missing] = oov_row
        else:
            rows[missing] = self.fallback_rows(ids[missing], (lo, hi))
        return rows

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"keys": self.keys_, "rows": self.rows_, "layout": self.layout_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        missing = {"keys", "rows", "layout"} - set(arrays)
        if missing:
            raise ValueError(f"bundle lacks learned-state arrays {sorted(missing)}")
        keys, rows, layout = arrays["keys"], arrays["rows"], arrays["layout"]
        ok = (
            keys.dtype == np.int64
            and rows.dtype == np.int32
            and layout.dtype == np.int64
            and keys.ndim == 1
            and rows.shape == keys.shape
            and layout.shape == (4,)
            and bool(np.all(keys[1:] > keys[:-1]))
        )
        num_rows, lo, hi = (int(v) for v in layout[:3]) if layout.shape == (4,) else (0, 0, 0)
        ok = ok and 0 <= lo < hi <= num_rows and 0 <= int(layout[3]) < num_rows
        ok = ok and (rows.size == 0 or (rows.min() >= 0 and rows.max() < num_rows))
        if not ok:
            raise ValueError(
                "bundle learned state is inconsistent: need sorted unique int64 'keys', "
                "int32 'rows' in range and aligned, int64 'layout' [num_rows, lo, hi, oov_row]"
            )
        self._set_state(keys, rows, layout)

    @property
    def table_sizes(self) -> tuple[int, ...]:
        if not self._fitted and self.num_rows is not None:
            return (self.num_rows,)  # known before fit for a fixed budget
        self._check_fitted("table_sizes")
        return (int(self.layout_[0]),)

    @property
    def nbytes(self) -> int:
        self._check_fitted("nbytes")
        return ID_BYTES * int(self.keys_.size) + LEARNED_HEADER_BYTES
