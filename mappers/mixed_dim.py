"""`mixed_dim`: mixed-dimension embeddings (Ginart et al., 2019, arXiv 1909.11810; the reference
DLRM's `--md-flag`): frequent ids get wide rows, rare ids narrow ones, and every block narrower
than the grid's dim is projected up to it.

Blocks and dims follow from the budget. A compression c gives a feature what it gives every
other strategy, num_rows = ceil(V / c) rows at the grid's dim D, that is F = num_rows * D floats.
Block k (k = 0 .. K-1, K = num_blocks, default 4) has dim d_k = D >> k (blocks whose dim would
be 0 are left out); each block but the first has a (d_k, D) projection. The projections' floats
come off the budget first, and the rest is split equally in floats: block k gets
n_k = floor((F - sum_{k>=1} d_k * D) / (K * d_k)) rows. Where the budget cannot give every block
a row, fewer blocks are used; at one block the map is `frequency` with every row hot.

Ids are ranked by training count (ties: smaller id first, as in `frequency`): the hottest n_0
get the rows of block 0, the next n_1 those of block 1, and so on. Ids beyond the blocks' rows,
and unseen ids under unseen="hash", are hashed into the last block's rows, sharing them. When
the ids run out first, the rows (and blocks) no id reaches are not kept: the feature then uses
less than its budget, and its bytes say so. Under unseen="oov_row" the last kept row is the OOV
row.

Rows are global over the blocks: block k holds rows [o_k, o_k + n_k), o_k = n_0 + ... + n_{k-1},
so the map is one row per id, stored and exported like any learned map; `blocks` gives
((n_0, d_0), (n_1, d_1), ...). nbytes = 12 per explicit id + 32 (as every learned map) + 8 per
block (its rows and dim as int32). The blocks' rows (n_k x d_k floats) and the projections
(d_k x D floats each) are embedding bytes (models.config.embedding_bytes).
"""

from __future__ import annotations

import numpy as np

from .base import check_int
from .learned import LearnedMapper, LearnedRows, hottest

BLOCK_BYTES = 8  # a block's rows and dim, as int32


def block_plan(num_rows: int, dim: int, num_blocks: int) -> tuple[tuple[int, int], ...]:
    """((rows, dim), ...) of the blocks a budget of `num_rows` rows at `dim` buys (module
    docstring), before the vocabulary trims them."""
    floats = num_rows * dim
    dims = [dim >> k for k in range(num_blocks) if dim >> k >= 1]
    for k in range(len(dims), 1, -1):
        spare = floats - dim * sum(dims[1:k])
        sizes = [spare // (k * d) for d in dims[:k]]
        if spare > 0 and min(sizes) >= 1:
            return tuple(zip(sizes, dims[:k], strict=True))
    return ((num_rows, dim),)


def trim_blocks(plan: tuple[tuple[int, int], ...], needed: int) -> tuple[tuple[int, int], ...]:
    """The blocks of `plan` cut to the first `needed` (>= 1) rows."""
    kept, left = [], needed
    for rows, dim in plan:
        if left <= 0:
            break
        kept.append((min(rows, left), dim))
        left -= rows
    return tuple(kept)


class MixedDimMapper(LearnedMapper):
    """Frequency blocks of decreasing dim, each projected to the grid's dim (module docstring)."""

    name = "mixed_dim"
    combine = "mixed"
    takes_dim = True
    needs_single_valued = True
    report_rank = 7
    # besides hash: against the paper's best at the same budget
    compared_with = ("frequency_embedding",)

    def __init__(
        self,
        *,
        num_rows: int,
        dim: int = 16,
        num_blocks: int = 4,
        unseen: str = "hash",
        max_explicit_ids: int | None = None,
        min_count: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(num_rows=num_rows, unseen=unseen, max_explicit_ids=max_explicit_ids,
                         min_count=min_count, seed=seed)
        self.dim = check_int("dim", dim, 1)
        self.num_blocks = check_int("num_blocks", num_blocks, 1, 16)
        self._params = {**self._params, "dim": self.dim, "num_blocks": self.num_blocks}
        self.plan = block_plan(self.num_rows, self.dim, self.num_blocks)

    def explicit_cap(self) -> int | None:
        """Under unseen="hash" ids beyond the blocks' rows need no storage (they are hashed)."""
        if self.unseen != "hash":
            return self.max_explicit_ids
        capacity = sum(rows for rows, _ in self.plan)
        return capacity if self.max_explicit_ids is None else min(capacity,
                                                                  self.max_explicit_ids)

    def _learn_rows(
        self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None
    ) -> LearnedRows:
        oov = self.unseen == "oov_row"
        blocks = trim_blocks(self.plan, max(ids.size, 1) + oov)  # a row for ids, + the OOV row
        total = sum(rows for rows, _ in blocks)
        usable = total - 1 if oov else total
        last = total - blocks[-1][0]
        fallback = (last, usable) if last < usable else (0, usable)
        rows = self.fallback_rows(ids, fallback)
        ranked = hottest(ids, counts, usable)
        rows[ranked] = np.arange(ranked.size)
        self.blocks_ = np.asarray(blocks, dtype=np.int64).reshape(-1, 2)
        return LearnedRows(rows=rows, fallback=fallback, num_rows=total, oov_row=total - 1)

    @property
    def blocks(self) -> tuple[tuple[int, int], ...]:
        """((rows, dim), ...) of the fitted blocks, hottest first."""
        self._check_fitted("blocks")
        return tuple((int(r), int(d)) for r, d in self.blocks_)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {**super()._state_arrays(), "blocks": self.blocks_}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:
        arrays = dict(arrays)
        blocks = arrays.pop("blocks", None)
        super()._load_state(arrays)
        ok = (blocks is not None and blocks.dtype == np.int64 and blocks.ndim == 2
              and blocks.shape[1] == 2 and 1 <= blocks.shape[0] <= self.num_blocks
              and bool(np.all(blocks > 0)) and int(blocks[:, 0].sum()) == int(self.layout_[0])
              and int(blocks[0, 1]) == self.dim)
        if not ok:
            raise ValueError("bundle learned state is inconsistent: need int64 'blocks' [K, 2] of "
                             f"positive (rows, dim), at most {self.num_blocks}, whose rows sum to "
                             f"the table's {int(self.layout_[0])} and whose first dim is "
                             f"{self.dim}")
        self.blocks_ = blocks

    @property
    def table_sizes(self) -> tuple[int, ...]:
        self._check_fitted("table_sizes")  # the vocabulary trims the blocks
        return (int(self.layout_[0]),)

    @property
    def nbytes(self) -> int:
        return super().nbytes + BLOCK_BYTES * int(self.blocks_.shape[0])
