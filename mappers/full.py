"""`full`: one row per training id, the uncompressed reference.

Row i is the i-th id of the SORTED unique training vocabulary, i.e. the id's position in
np.unique(ids); the rest of the system relies on this alignment. The table always has
V + 1 rows: row V is the out-of-vocabulary row, where unseen ids go under the default
unseen="oov_row". unseen="hash" hashes them into the training rows [0, V) instead, and
unseen="error" raises. Every id is stored (no max_explicit_ids: that is `frequency`).

nbytes = 12 * V + 32.
"""

from __future__ import annotations

import numpy as np

from .base import UNSEEN_POLICIES, check_choice
from .learned import LearnedMapper, LearnedRows


class FullMapper(LearnedMapper):
    """Identity-like map: row = position in the sorted vocabulary; V + 1 rows."""

    name = "full"
    takes_compression = False
    report_rank = 0

    def __init__(self, *, unseen: str = "oov_row", seed: int = 0) -> None:
        check_choice("unseen", unseen, UNSEEN_POLICIES)
        super().__init__(num_rows=None, unseen=unseen, max_explicit_ids=None, seed=seed)
        self._params = {"unseen": self.unseen, "seed": self.seed}

    def _learn_rows(
        self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None
    ) -> LearnedRows:
        vocab_size = ids.size
        return LearnedRows(
            rows=np.arange(vocab_size, dtype=np.int64),
            fallback=(0, max(vocab_size, 1)),  # V == 0: the only row is the OOV row
            num_rows=vocab_size + 1,
            oov_row=vocab_size,
        )
