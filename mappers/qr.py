"""`qr`: quotient-remainder compositional embeddings of a hashed id.

Shi et al. (2020), "Compositional Embeddings Using Complementary Partitions for
Memory-Efficient Recommendation Systems". QR maps an index x in [0, N) to the pair
(x // m, x % m): a quotient table of ceil(N / m) rows and a remainder table of m rows
(m = `collisions`, the number of indices sharing each quotient row); every x gets a
distinct pair, and the model combines the two vectors.

Raw ids are arbitrary int64, so QR is applied to a HASHED id: one seeded 64-bit hash h(id)
stands for a virtual index v in [0, N) with N = Q * m, and the pair is (v // m, v % m),
computed as the high and low 32 bits of h reduced into [0, Q) and [0, m) (equivalent in
distribution to hashing into [0, N) then dividing, without 128-bit arithmetic).

Row budget: `num_rows` is the TOTAL over both tables, so qr competes at equal rows with
every other strategy: table_sizes == (Q, m) with Q = num_rows - m and Q + m == num_rows.
Default collisions = num_rows // 2, the split that maximises the distinct pairs N = Q * m
(num_rows**2 / 4). Two ids share their whole embedding only if they share both rows.

combine is the QR operation `op`: "mult" (E_q[q] * E_r[r]), "add" (E_q[q] + E_r[r]) or
"concat" ([E_q[q], E_r[r]]). For "concat" the model gives EACH table dim D / 2, so the
concatenated vector has the trial's dim D and embedding_bytes = num_rows * D / 2 * 4.

nbytes = 8 (hash key) + 2 * 8 (table sizes) = 24.
"""

from __future__ import annotations

import numpy as np

from .base import KEY_BYTES, MAX_ROWS, SIZE_BYTES, Mapper, check_choice, check_int
from .hashing import MAX_RANGE, derive_key, hash_to_pair

QR_OPS = ("mult", "add", "concat")


class QRMapper(Mapper):
    """Quotient table of num_rows - collisions rows, remainder table of collisions rows."""

    name = "qr"
    report_rank = 3

    def __init__(
        self,
        *,
        num_rows: int,
        collisions: int | None = None,
        op: str = "mult",
        seed: int = 0,
    ) -> None:
        super().__init__(seed=seed)
        self.num_rows = check_int("num_rows", num_rows, minimum=2, maximum=MAX_ROWS)
        if collisions is None:
            collisions = self.num_rows // 2
        self.collisions = check_int(
            "collisions", collisions, minimum=1, maximum=min(self.num_rows - 1, MAX_RANGE)
        )
        self.op = check_choice("op", op, QR_OPS)
        self._params = {
            "num_rows": self.num_rows,
            "collisions": self.collisions,
            "op": self.op,
            "seed": self.seed,
        }
        self._hash_keys = np.array([derive_key(self.seed, 0)], dtype=np.uint64)

    @property
    def combine(self) -> str:  # type: ignore[override]
        return self.op

    def _fit(self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None) -> None:
        pass  # nothing to learn

    def _transform_flat(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        quotient_rows, remainder_rows = self.table_sizes
        return hash_to_pair(ids, self._hash_keys[0], quotient_rows, remainder_rows)

    @property
    def table_sizes(self) -> tuple[int, ...]:
        return (self.num_rows - self.collisions, self.collisions)

    @property
    def nbytes(self) -> int:
        return KEY_BYTES + 2 * SIZE_BYTES
