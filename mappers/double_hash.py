"""`double_hash`: two independent hashes into two half tables; the model sums the vectors.

Frequency-/double-hashing baseline of "Learning to Collide" (Ghaemmaghami et al., 2022),
after Zhang et al. (2020), "Model size reduction using frequency based double hashing".
A budget of num_rows rows is split into tables of ceil(num_rows / 2) and
floor(num_rows / 2) rows; table t uses the hash key of stream t, so two ids collide in
both tables only with probability ~1 / (R0 * R1). transform returns (rows0, rows1) and
combine == "sum": the embedding of an id is E0[rows0] + E1[rows1].

nbytes = 2 * 8 (hash keys) + 2 * 8 (table sizes) = 32.
"""

from __future__ import annotations

import numpy as np

from .base import KEY_BYTES, MAX_ROWS, SIZE_BYTES, Mapper, check_int
from .hashing import derive_key, hash_to_range


class DoubleHashMapper(Mapper):
    """Two seeded hashes into tables of ceil(R/2) and floor(R/2) rows, vectors summed."""

    name = "double_hash"
    combine = "sum"
    report_rank = 2

    def __init__(self, *, num_rows: int, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.num_rows = check_int("num_rows", num_rows, minimum=2, maximum=MAX_ROWS)
        self._params = {"num_rows": self.num_rows, "seed": self.seed}
        self._hash_keys = np.array([derive_key(self.seed, t) for t in (0, 1)], dtype=np.uint64)

    def _fit(self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None) -> None:
        pass  # nothing to learn

    def _transform_flat(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        first, second = self.table_sizes
        return (
            hash_to_range(ids, self._hash_keys[0], first),
            hash_to_range(ids, self._hash_keys[1], second),
        )

    @property
    def table_sizes(self) -> tuple[int, ...]:
        return ((self.num_rows + 1) // 2, self.num_rows // 2)

    @property
    def nbytes(self) -> int:
        return 2 * KEY_BYTES + 2 * SIZE_BYTES
