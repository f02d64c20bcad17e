"""From encoded arrays to model batches: ``EncodedSplit`` in, ``Batch`` out.

``FusedSplit`` converts a split once into the layout of the fused embedding weights
(see ``models.layout``): per group, the single-valued tables are stacked into one int64
(N, S) matrix with each table's row offset already added, and the multi-valued tables
into one value vector plus an (N + 1, M) matrix of bag starts. A batch is then a handful
of ``index_select`` calls, whatever the number of features: no Python loop over features,
no per-batch copies beyond the batch itself. Dense inputs and labels are wrapped with
``torch.from_numpy`` (no copy; read-only memmaps are fine, they are never written).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from models.layout import TableLayout


@dataclass
class EncodedSplit:
    """One data split as arrays: what the trainer takes.

    ``tables`` has one entry per table in config order (features in order, each feature's
    tables in order): an int64 row vector [N] for a single-valued feature, or a pair
    ``(rows [nnz], offsets [N + 1])`` for a multi-valued one (sample i's bag is
    ``rows[offsets[i]:offsets[i + 1]]``).
    """

    dense: np.ndarray  # float32 [N, num_dense]
    labels: np.ndarray  # float32 [N], values in {0, 1}
    tables: list  # see above

    def __post_init__(self) -> None:
        self.dense = np.asarray(self.dense, dtype=np.float32)
        self.labels = np.asarray(self.labels, dtype=np.float32)
        if self.dense.ndim != 2:
            raise ValueError(f"dense must be 2-D [N, num_dense], got shape {self.dense.shape}")
        n = self.dense.shape[0]
        if self.labels.shape != (n,):
            raise ValueError(f"labels must have shape ({n},) like dense, got {self.labels.shape}")
        if not np.isin(self.labels, (0.0, 1.0)).all():
            raise ValueError("labels must be 0 or 1, got other values")
        if not isinstance(self.tables, list | tuple):
            raise TypeError(f"tables must be a list, got {type(self.tables).__name__}")
        for t, entry in enumerate(self.tables):
            if isinstance(entry, tuple):
                if len(entry) != 2:
                    raise ValueError(f"tables[{t}] must be (rows, offsets), got {len(entry)} items")
                rows, offsets = entry
                if np.shape(offsets) != (n + 1,) or np.shape(rows) != (np.size(rows),):
                    raise ValueError(
                        f"tables[{t}] must be rows [nnz] and offsets [{n + 1}], got shapes "
                        f"{np.shape(rows)} and {np.shape(offsets)}"
                    )
                if offsets[0] != 0 or offsets[-1] != len(rows):
                    raise ValueError(
                        f"tables[{t}] offsets must run from 0 to len(rows)={len(rows)}"
                    )
                if np.any(np.diff(offsets) < 0):
                    raise ValueError(f"tables[{t}] offsets must be non-decreasing")
            elif np.shape(entry) != (n,):
                raise ValueError(f"tables[{t}] must be rows of shape ({n},), got {np.shape(entry)}")

    @property
    def num_samples(self) -> int:
        return int(self.dense.shape[0])


@dataclass
class GroupLookup:
    """The lookups of one batch into one fused weight (one group of the layout)."""

    rows: Tensor | None  # (B, S) int64 rows of the single-valued tables
    bag_rows: Tensor | None  # (nnz,) int64 rows of all bags, sample-major: (b0,t0), (b0,t1), ...
    bag_offsets: Tensor | None  # (B * M,) int64 start of each bag in bag_rows
    bag_weights: Tensor | None  # (nnz,) float32 pooling weight (1/len in mean bags), None: all 1
    # (B, M) int64 raw ids of the managed tables (layout.managed order); their columns of `rows`
    # hold placeholders until the model's online maps replace them (models/online.py)
    raw: Tensor | None = None

    def to(self, device: torch.device) -> GroupLookup:
        def move(x: Tensor | None) -> Tensor | None:
            return None if x is None else x.to(device, non_blocking=True)

        return GroupLookup(*(move(x) for x in (self.rows, self.bag_rows, self.bag_offsets,
                                               self.bag_weights, self.raw)))


@dataclass
class Batch:
    dense: Tensor  # (B, num_dense) float32
    labels: Tensor  # (B,) float32
    lookups: tuple[GroupLookup, ...]  # one per group of the layout

    def to(self, device: torch.device) -> Batch:
        return Batch(
            self.dense.to(device, non_blocking=True),
            self.labels.to(device, non_blocking=True),
            tuple(lk.to(device) for lk in self.lookups),
        )


def _tensor(array: np.ndarray) -> Tensor:
    """torch.from_numpy without a copy; read-only arrays are only ever read."""
    if array.flags.writeable:
        return torch.from_numpy(array)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        return torch.from_numpy(array)


def _checked_rows(rows: np.ndarray, num_rows: int, t: int) -> np.ndarray:
    rows = np.asarray(rows)
    if not np.issubdtype(rows.dtype, np.integer):
        raise TypeError(f"tables[{t}] rows must be integers, got dtype {rows.dtype}")
    if rows.size and (rows.min() < 0 or rows.max() >= num_rows):
        raise ValueError(
            f"tables[{t}] rows must be in [0, {num_rows}), got range [{rows.min()}, {rows.max()}]"
        )
    return rows


@dataclass
class _FusedGroup:
    """One group's lookup arrays for a whole split (see the module docstring)."""

    rows: Tensor | None = None  # (N, S) int64 single-valued rows, row offsets added
    values: Tensor | None = None  # (nnz,) int64 rows of all multi-valued tables, offsets added
    starts: Tensor | None = (
        None  # (N + 1, M) int64: bag (i, m) is values[starts[i, m]:starts[i + 1, m]]
    )
    mean: Tensor | None = None  # (M,) bool mean pooling per multi-valued table; None: all sum
    raw: Tensor | None = None  # (N, M) int64 raw ids of the managed tables


def _fuse_single(split: EncodedSplit, layout: TableLayout,
                 tables: tuple[int, ...]) -> tuple[Tensor, Tensor | None]:
    """(the (N, S) rows with offsets added, the (N, M) raw ids of the managed tables or None): a
    managed table's entry holds raw ids, and its column of rows a placeholder (its first row)."""
    matrix = np.empty((split.num_samples, len(tables)), dtype=np.int64)  # the one copy
    managed = [t for t in tables if layout.tables[t].managed]
    raw = np.empty((split.num_samples, len(managed)), dtype=np.int64) if managed else None
    for j, t in enumerate(tables):
        entry = split.tables[t]
        if isinstance(entry, tuple):
            raise TypeError(f"tables[{t}] is single-valued: pass rows, not (rows, offsets)")
        place = layout.tables[t]
        if place.managed:
            raw[:, managed.index(t)] = np.asarray(entry, dtype=np.int64)
            matrix[:, j] = place.row_offset
            continue
        np.add(_checked_rows(entry, place.num_rows, t), place.row_offset, out=matrix[:, j])
    return torch.from_numpy(matrix), None if raw is None else torch.from_numpy(raw)


def _fuse_multi(
    split: EncodedSplit, layout: TableLayout, tables: tuple[int, ...]
) -> tuple[Tensor, Tensor]:
    values, starts, base = [], np.empty((split.num_samples + 1, len(tables)), np.int64), 0
    for m, t in enumerate(tables):
        entry = split.tables[t]
        if not isinstance(entry, tuple):
            raise TypeError(f"tables[{t}] is multi-valued: pass (rows, offsets)")
        place = layout.tables[t]
        rows = _checked_rows(entry[0], place.num_rows, t)
        values.append(np.add(rows, place.row_offset, dtype=np.int64))
        starts[:, m] = np.asarray(entry[1], dtype=np.int64) + base
        base += len(rows)
    return torch.from_numpy(np.concatenate(values)), torch.from_numpy(starts)


class FusedSplit:
    """A split converted once to fused lookup arrays; ``batch(indices)`` builds a Batch.

    With a CUDA ``device`` the whole split is moved to the GPU once, so batches are built
    there without host-to-device copies.
    """

    def __init__(
        self, split: EncodedSplit, layout: TableLayout, device: str | torch.device = "cpu"
    ):
        if len(split.tables) != len(layout.tables):
            raise ValueError(
                f"split has {len(split.tables)} tables, the model config has {len(layout.tables)}"
            )
        device = torch.device(device)
        self.num_samples = split.num_samples
        self.dense = _tensor(split.dense).to(device)  # (N, num_dense)
        self.labels = _tensor(split.labels).to(device)  # (N,)
        self.groups: list[_FusedGroup] = []
        for group in layout.groups:
            fused = _FusedGroup()
            if group.single_tables:
                rows, raw = _fuse_single(split, layout, group.single_tables)
                fused.rows = rows.to(device)
                fused.raw = None if raw is None else raw.to(device)
            if group.multi_tables:
                values, starts = _fuse_multi(split, layout, group.multi_tables)
                fused.values, fused.starts = values.to(device), starts.to(device)
                mean = [layout.tables[t].mean_pooling for t in group.multi_tables]
                if any(mean):
                    fused.mean = torch.tensor(mean, device=device)
            self.groups.append(fused)

    def moved(self, move: Callable[[Tensor], Tensor]) -> FusedSplit:
        """A copy of this split with every tensor replaced by ``move(tensor)``, e.g.
        ``Tensor.pin_memory`` or ``lambda t: t.to(device, non_blocking=True)``."""
        out = copy.copy(self)
        out.dense, out.labels = move(self.dense), move(self.labels)
        out.groups = []
        for g in self.groups:
            fused = _FusedGroup()
            for name in ("rows", "values", "starts", "mean", "raw"):
                value = getattr(g, name)
                setattr(fused, name, None if value is None else move(value))
            out.groups.append(fused)
        return out

    def batch(self, indices: Tensor) -> Batch:
        """The samples at ``indices`` (int64 (B,), on this split's device) as a Batch."""
        lookups = []
        for g in self.groups:
            rows = None if g.rows is None else g.rows.index_select(0, indices)  # (B, S)
            bags = (None, None, None) if g.values is None else self._bags(g, indices)
            raw = None if g.raw is None else g.raw.index_select(0, indices)  # (B, M)
            lookups.append(GroupLookup(rows, *bags, raw=raw))
        return Batch(
            self.dense.index_select(0, indices),
            self.labels.index_select(0, indices),
            tuple(lookups),
        )

    @staticmethod
    def _bags(g: _FusedGroup, indices: Tensor) -> tuple[Tensor, Tensor, Tensor | None]:
        """Vectorised ragged gather of the bags of ``indices`` for all multi-valued tables."""
        begin = g.starts.index_select(0, indices)  # (B, M)
        lengths = (g.starts.index_select(0, indices + 1) - begin).flatten()  # (B * M,)
        offsets = torch.cumsum(lengths, 0) - lengths  # (B * M,) exclusive prefix sum
        total = int(lengths.sum())
        # element k of bag j sits at values[begin[j] + k] and goes to position offsets[j] + k
        shift = torch.repeat_interleave(begin.flatten() - offsets, lengths, output_size=total)
        positions = torch.arange(total, device=g.values.device) + shift
        weights = None
        if g.mean is not None:
            per_bag = torch.where(g.mean, 1.0 / lengths.view(-1, len(g.mean)).clamp(min=1), 1.0)
            weights = torch.repeat_interleave(per_bag.flatten().float(), lengths, output_size=total)
        return g.values.index_select(0, positions), offsets, weights
