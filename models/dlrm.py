"""DLRM (Naumov et al., 2019, arXiv 1906.00091), shaped like torchrec's, read top to bottom.

Notation, used in every shape comment of this package:
    B  batch size
    N  dense inputs per sample (``num_dense``; may be 0)
    F  sparse features
    T  embedding tables; a feature has 1 table, or 2 for double hashing / QR embeddings
    D  embedding dim (QR ``concat`` tables have D/2, so the concatenation has D)

The model is four small modules, as in torchrec:
    DenseArch        (B, N)  -> (B, D)       bottom MLP
    SparseArch       lookups -> (B, F, D)    fused embedding lookups, then per-feature combine
    InteractionArch  (B, D), (B, F, D) -> (B, I)   pairwise dots (or concatenation)
    OverArch         (B, I)  -> (B,)         top MLP ending in one logit
The loss lives outside the model: ``binary_cross_entropy_with_logits(model(...), labels)``.
Embedding weights produce sparse gradients (only looked-up rows are touched), so the
tables want a sparse optimizer; see ``models.train``.
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from models.batch import GroupLookup
from models.config import DLRMConfig, embedding_init_bound
from models.layout import TableLayout
from models.mixed import MixedDims
from models.online import OnlineMaps


def mlp(widths: list[int], relu_last: bool) -> nn.Sequential:
    """Linear layers widths[0] -> ... -> widths[-1], ReLU between (and after, if relu_last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if relu_last or i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class DenseArch(nn.Module):
    """Bottom MLP, ReLU after every layer as in reference DLRM: (B, N) -> (B, D)."""

    def __init__(self, config: DLRMConfig):
        super().__init__()
        self.mlp = mlp([config.num_dense, *config.bottom_mlp, config.embedding_dim], relu_last=True)

    def forward(self, dense: Tensor) -> Tensor:
        return self.mlp(dense)


class SparseArch(nn.Module):
    """All embedding tables, fused into one weight per width (see ``models.layout``).

    Per group: single-valued tables are one ``embedding`` call on a (B, S) index matrix,
    multi-valued tables one ``embedding_bag`` call; then features are formed per combine
    kind (one vectorised op each, not a loop over features) and put in config order.
    """

    def __init__(self, config: DLRMConfig, layout: TableLayout, gather_unique: bool = False):
        super().__init__()
        self.layout = layout
        # training lookups of single-valued tables gather each distinct row once (unique_lookup;
        # TrainConfig.gather_unique)
        self.gather_unique = gather_unique
        self.weights = nn.ParameterList(
            nn.Parameter(torch.empty(g.num_rows, g.dim)) for g in layout.groups
        )
        plan = layout.combine
        self._kinds = [k for k in ("add", "mult", "concat") if getattr(plan, k)[0]]
        for kind in self._kinds:
            a, b = getattr(plan, kind)
            self.register_buffer(f"{kind}_a", torch.tensor(a), persistent=False)
            self.register_buffer(f"{kind}_b", torch.tensor(b), persistent=False)
        # single-table features that are slots 0..k-1 of group 0 are a view, not a gather
        self._single_prefix = plan.single == tuple(range(len(plan.single)))
        self.register_buffer(
            "single", torch.tensor(plan.single, dtype=torch.long), persistent=False
        )
        order = plan.feature_order
        self._reorder = order != tuple(range(len(order)))
        inverse = sorted(range(len(order)), key=order.__getitem__)
        self.register_buffer("inverse_order", torch.tensor(inverse), persistent=False)
        # mixed-dimension features (mappers/mixed_dim.py): masked and projected after the lookup
        mixed = any(f.combine == "mixed" for f in config.features)
        self.mixed = MixedDims(config, layout) if mixed else None
        # managed tables (models/online.py): their raw ids become rows through `online`
        managed = layout.managed
        self.online: OnlineMaps | None = None
        self.register_buffer("managed_slots", torch.tensor(
            [layout.tables[t].slot for t in managed], dtype=torch.long), persistent=False)
        self.register_buffer("managed_offsets", torch.tensor(
            [layout.tables[t].row_offset for t in managed], dtype=torch.long), persistent=False)
        self.reset_parameters(config)

    @torch.no_grad()
    def reset_parameters(self, config: DLRMConfig) -> None:
        """Uniform(+-sqrt(1/rows)) per table as reference DLRM; the second table of a QR
        ``mult`` feature starts near 1 so that the product starts like a plain table."""
        for t, (place, rows) in enumerate(
            zip(self.layout.tables, self.table_weights(), strict=True)
        ):
            bound = embedding_init_bound(place.num_rows)
            rows.uniform_(-bound, bound)
            second = t > 0 and self.layout.tables[t - 1].feature == place.feature
            if second and config.features[place.feature].combine == "mult":
                rows.add_(1.0)
        if self.mixed is not None:
            self.mixed.reset_tables(self.weights[0])
            self.mixed.reset_parameters()

    def table_weights(self) -> list[Tensor]:
        """Each table's (rows, dim) weight, a view into the fused weights, in config order."""
        return [
            self.weights[p.group][p.row_offset : p.row_offset + p.num_rows]
            for p in self.layout.tables
        ]

    def stored_tables(self) -> list[Tensor]:
        """Every table as stored, in ``config.stored_shapes`` order: views of the fused weights,
        a mixed feature's blocks each at its own dim."""
        out, mixed = [], 0
        for place, table in zip(self.layout.tables, self.table_weights(), strict=True):
            if self.mixed is not None and place.feature in self.mixed.features:
                out.extend(self.mixed.block_views(self.weights[0], mixed))
                mixed += 1
            else:
                out.append(table)
        return out

    def projections(self) -> list[Tensor]:
        """The (d_k, D) projections of mixed features' blocks, ``config.projection_shapes``
        order (views of the parameter)."""
        return [] if self.mixed is None else self.mixed.projection_views()

    def _lookup(self, group: int, lookup: GroupLookup) -> Tensor:
        """(B, T_g, D_g): every table of one group, in slot order."""
        weight = self.weights[group]
        outs = []
        if lookup.rows is not None:
            if self.gather_unique and torch.is_grad_enabled() and weight.requires_grad:
                outs.append(unique_lookup(lookup.rows, weight))  # (B, S, D_g)
            else:
                outs.append(F.embedding(lookup.rows, weight, sparse=True))  # (B, S, D_g)
        if lookup.bag_offsets is not None:
            pooled = F.embedding_bag(
                lookup.bag_rows,
                weight,
                lookup.bag_offsets,
                mode="sum",
                sparse=True,
                per_sample_weights=lookup.bag_weights,
            )  # (B * M, D_g)
            outs.append(
                pooled.view(-1, len(self.layout.groups[group].multi_tables), weight.shape[1])
            )
        return outs[0] if len(outs) == 1 else torch.cat(outs, dim=1)

    def _combine(self, kind: str, tables: Tensor) -> Tensor:
        """(B, F_kind, D) for the features of one two-table combine kind."""
        a = tables.index_select(1, getattr(self, f"{kind}_a"))  # (B, F_kind, D_g)
        b = tables.index_select(1, getattr(self, f"{kind}_b"))
        if kind == "add":  # double hashing ("sum") and QR "add"
            return a + b
        if kind == "mult":  # QR "mult"
            return a * b
        return torch.cat([a, b], dim=2)  # QR "concat": two D/2 halves

    def _remapped(self, lookups: tuple[GroupLookup, ...]) -> tuple[GroupLookup, ...]:
        """The lookups with the managed tables' raw ids made rows by the online maps (noted for
        their next update while the model trains)."""
        first = lookups[0]
        if self.online is None:
            raise ValueError("this model has managed tables (mch), whose batches hold raw ids: "
                             "give train() their online maps")
        observe = self.training and torch.is_grad_enabled()
        rows = self.online.rows(first.raw.cpu().numpy(), observe)  # (B, M)
        mapped = torch.from_numpy(rows).to(first.rows.device) + self.managed_offsets
        fused = first.rows.clone()
        fused[:, self.managed_slots] = mapped
        return (replace(first, rows=fused, raw=None), *lookups[1:])

    def forward(self, lookups: tuple[GroupLookup, ...]) -> Tensor:
        if lookups[0].raw is not None:
            lookups = self._remapped(lookups)
        groups = self.layout.groups
        tables = [
            self._lookup(g, lk) if groups[g].num_rows else None for g, lk in enumerate(lookups)
        ]
        parts = []  # (B, F_kind, D) per combine kind
        if len(self.single):
            k = len(self.single)
            x = tables[0]  # (B, T_0, D)
            parts.append(
                x.narrow(1, 0, k) if self._single_prefix else x.index_select(1, self.single)
            )
        for kind in self._kinds:
            parts.append(self._combine(kind, tables[1] if kind == "concat" else tables[0]))
        out = parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)  # (B, F, D)
        out = out.index_select(1, self.inverse_order) if self._reorder else out
        return out if self.mixed is None else self.mixed(out, lookups[0].rows)


class _UniqueRows(torch.autograd.Function):
    """`weight[rows]` for sorted unique `rows`, whose gradient is a sparse tensor of one row per
    distinct row, in order, so a table optimizer needs no sort-and-sum of its own (autograd may
    drop the tensor's coalesced flag when it stores the gradient; `models.optim` checks the
    order instead)."""

    @staticmethod
    def forward(ctx, rows: Tensor, weight: Tensor) -> Tensor:  # noqa: ANN001 - autograd's
        ctx.save_for_backward(rows)
        ctx.shape = weight.shape
        return weight.index_select(0, rows)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[None, Tensor]:  # noqa: ANN001 - autograd's
        (rows,) = ctx.saved_tensors
        return None, torch.sparse_coo_tensor(rows.unsqueeze(0), grad.contiguous(), ctx.shape,
                                             check_invariants=False, is_coalesced=True)


def unique_lookup(rows: Tensor, weight: Tensor) -> Tensor:
    """`F.embedding(rows, weight, sparse=True)`, gathering each distinct row once: the rows are
    deduplicated (`torch.unique`), looked up, and expanded back to `rows`' shape. The backward
    pass sums each distinct row's gradient once, into a sparse gradient of sorted unique rows."""
    unique, inverse = torch.unique(rows, sorted=True, return_inverse=True)
    return _UniqueRows.apply(unique, weight)[inverse]


class InteractionArch(nn.Module):
    """Feature interaction: (B, D) dense vector (or None) and (B, F, D) -> (B, I).

    ``dot``: the dense vector joins the F embeddings, and the output is the dense vector
    followed by all pairwise dot products without self-interaction, as reference DLRM.
    ``cat``: the dense vector followed by the flattened embeddings.
    """

    def __init__(self, config: DLRMConfig):
        super().__init__()
        self.kind = config.interaction
        n = config.num_features + (1 if config.num_dense > 0 else 0)
        li, lj = torch.tril_indices(n, n, offset=-1)
        self.register_buffer("pair_index", li * n + lj, persistent=False)  # (n(n-1)/2,)

    def forward(self, dense: Tensor | None, sparse: Tensor) -> Tensor:
        if self.kind == "cat":
            flat = sparse.flatten(1)  # (B, F * D)
            return flat if dense is None else torch.cat([dense, flat], dim=1)
        z = sparse if dense is None else torch.cat([dense.unsqueeze(1), sparse], dim=1)  # (B, n, D)
        gram = torch.bmm(z, z.transpose(1, 2))  # (B, n, n)
        pairs = gram.flatten(1).index_select(1, self.pair_index)  # (B, n(n-1)/2)
        return pairs if dense is None else torch.cat([dense, pairs], dim=1)


class OverArch(nn.Module):
    """Top MLP with ReLUs, ending in one linear logit: (B, I) -> (B,)."""

    def __init__(self, config: DLRMConfig):
        super().__init__()
        self.mlp = mlp([config.interaction_dim, *config.top_mlp, 1], relu_last=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.mlp(x).squeeze(1)


class DLRM(nn.Module):
    """DLRM(config)(dense (B, N), lookups) -> logits (B,)."""

    def __init__(self, config: DLRMConfig):
        super().__init__()
        self.config = config
        self.layout = TableLayout.from_config(config)
        self.dense_arch = DenseArch(config) if config.num_dense > 0 else None
        self.sparse_arch = SparseArch(config, self.layout)
        self.interaction_arch = InteractionArch(config)
        self.over_arch = OverArch(config)

    def forward(self, dense: Tensor, lookups: tuple[GroupLookup, ...]) -> Tensor:
        dense_vec = None if self.dense_arch is None else self.dense_arch(dense)  # (B, D)
        sparse = self.sparse_arch(lookups)  # (B, F, D)
        return self.over_arch(self.interaction_arch(dense_vec, sparse))  # (B,)

    def embedding_parameters(self) -> list[nn.Parameter]:
        """The fused embedding weights (sparse gradients); mixed features' projections are
        dense parameters."""
        return list(self.sparse_arch.weights)

    def dense_parameters(self) -> list[nn.Parameter]:
        """The MLP parameters (dense gradients)."""
        ids = {id(p) for p in self.embedding_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]
