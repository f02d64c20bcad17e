"""`hash`: the hashing trick, row = h_seed(id) reduced into [0, num_rows).

Weinberger et al. (2009), "Feature hashing for large scale multitask learning". h is the
seeded splitmix64 mixer with multiply-shift range reduction (mappers/hashing.py), so any
int64 id, seen or not, gets a row; fit learns nothing (it only marks the mapper fitted).

nbytes = 8 (hash key) + 8 (num_rows) = 16.
"""

from __future__ import annotations

import numpy as np

from .base import KEY_BYTES, MAX_ROWS, SIZE_BYTES, Mapper, check_int
from .hashing import derive_key, hash_to_range


class HashMapper(Mapper):
    """Seeded hashing trick into one table of `num_rows` rows."""

    name = "hash"
    is_baseline = True
    report_rank = 1

    def __init__(self, *, num_rows: int, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.num_rows = check_int("num_rows", num_rows, minimum=1, maximum=MAX_ROWS)
        self._params = {"num_rows": self.num_rows, "seed": self.seed}
        self._hash_keys = np.array([derive_key(self.seed, 0)], dtype=np.uint64)

    def _fit(self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None) -> None:
        pass  # nothing to learn

    def _transform_flat(self, ids: np.ndarray) -> np.ndarray:
        return hash_to_range(ids, self._hash_keys[0], self.num_rows)

    @property
    def table_sizes(self) -> tuple[int, ...]:
        return (self.num_rows,)

    @property
    def nbytes(self) -> int:
        return KEY_BYTES + SIZE_BYTES
