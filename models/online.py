"""Maps that change during training (managed collisions: `mappers/mch.py`), as the model and the
trainer see them.

A managed table's batches hold raw ids, not rows (`FeatureSpec.managed`, `GroupLookup.raw`).
The model's `online` maps (`SparseArch.online`, given to `models.train.train`) turn them into
rows on every forward pass, and note them while the model trains (in training mode, with
gradients on), so validation and test never move the map. Every `remap_every` training
batches the trainer calls `update()`; each row it returns now stands for another id, so the
trainer re-initialises the row as a new table row (uniform(+-sqrt(1/rows)), seeded) and resets
its optimizer state (`reset_rows`). After training nothing updates the maps: they are frozen.

Early stopping keeps the maps' `state()` with the best weights and restores both, since
weights without the map they were trained with would be wrong.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np
import torch
from torch import Tensor

__all__ = ["OnlineMaps", "reset_rows"]


@runtime_checkable
class OnlineMaps(Protocol):
    """What the model and the trainer need of the maps of the managed tables."""

    tables: tuple[int, ...]  # the managed tables (config order), as layout.managed
    remap_every: int  # training batches between updates

    def rows(self, raw: np.ndarray, observe: bool) -> np.ndarray:
        """int64 (B, M) rows of the raw ids (B, M), column m for table tables[m]; with `observe`,
        note the ids for the next update."""

    def update(self) -> list[np.ndarray]:
        """Apply what was observed; per managed table, the int64 rows whose id changed."""

    def state(self) -> object:
        """A copy of the maps' state (early stopping keeps it with the best weights)."""

    def restore(self, state: object) -> None:
        """Put back a `state()`."""


@torch.no_grad()
def reset_rows(optimizer: torch.optim.Optimizer, param: Tensor, rows: Tensor) -> None:
    """Reset the per-row state of `param`'s rows `rows` in `optimizer` as if they had never been
    trained: moments to zero, Adagrad accumulators to their initial value. Per-parameter step
    counters stay (they are not per row)."""
    state = optimizer.state.get(param)
    if not state:
        return
    group = next(g for g in optimizer.param_groups if any(p is param for p in g["params"]))
    for key, value in state.items():
        if not isinstance(value, Tensor) or value.dim() == 0 or value.shape[0] != param.shape[0]:
            continue
        initial = group.get("initial_accumulator_value", 0.0) if key in ("sum", "state_sum") \
            else 0.0
        value.index_fill_(0, rows, initial)
