"""Where each embedding table lives in the fused weights of the sparse arch.

Tables of equal width are stacked into one weight matrix, a *group*: group 0 holds every
table of width D, group 1 (present only with QR ``concat`` features) every table of width
D/2. Each table owns a contiguous block of rows (``row_offset``), so a lookup of row r of
table t is a lookup of row ``row_offset[t] + r`` in its group. Within a group, single-valued
tables come first (one ``embedding`` call on a (B, S) index matrix), then multi-valued ones
(one ``embedding_bag`` call over sample-major bags); their outputs, concatenated on the
table axis, give the group's (B, T_g, D_g) tensor and a table's ``slot`` is its position
there. The batch builder and the model both read this plan, so they cannot disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

from models.config import DLRMConfig


@dataclass(frozen=True)
class TablePlace:
    """One table's place in the fused weights."""

    feature: int  # index into config.features
    group: int  # 0: width D, 1: width D/2
    slot: int  # position on the group's table axis
    row_offset: int  # first row of the table in the group's stacked weight
    num_rows: int
    multi_valued: bool
    mean_pooling: bool
    managed: bool = False  # rows assigned online (FeatureSpec.managed): batches hold raw ids


@dataclass(frozen=True)
class GroupPlan:
    """One stacked weight matrix and the tables in it (indices into ``TableLayout.tables``)."""

    dim: int
    num_rows: int
    single_tables: tuple[int, ...]  # looked up with one id per sample, in slot order
    multi_tables: tuple[int, ...]  # looked up as pooled bags, in slot order (after the singles)


@dataclass(frozen=True)
class CombinePlan:
    """How tables become features: slots in group 0 (group 1 for concat), per combine kind."""

    single: tuple[int, ...]  # combine == "none": the feature is its table
    add: tuple[tuple[int, ...], tuple[int, ...]]  # "sum" (double hash) and "add" (QR): a + b
    mult: tuple[tuple[int, ...], tuple[int, ...]]  # "mult" (QR): a * b
    concat: tuple[tuple[int, ...], tuple[int, ...]]  # "concat" (QR): [a, b], halves of width D/2
    feature_order: tuple[int, ...]  # feature index of each output position before reordering


@dataclass(frozen=True)
class TableLayout:
    tables: tuple[TablePlace, ...]  # every table, config order
    groups: tuple[GroupPlan, ...]
    combine: CombinePlan

    @property
    def managed(self) -> tuple[int, ...]:
        """Indices (config order) of the managed tables; all are single-valued, in group 0."""
        return tuple(t for t, p in enumerate(self.tables) if p.managed)

    @classmethod
    def from_config(cls, config: DLRMConfig) -> TableLayout:
        d = config.embedding_dim
        # (feature, group, rows, multi, mean) for every table in config order
        raw = []
        for fi, f in enumerate(config.features):
            group = 1 if f.combine == "concat" else 0
            mean = f.multi_valued and f.pooling == "mean"
            raw.extend((fi, group, rows, f.multi_valued, mean, f.managed)
                       for rows in f.table_sizes)

        places: list[TablePlace | None] = [None] * len(raw)
        groups = []
        for g, dim in enumerate((d, d // 2)):
            members = [t for t, r in enumerate(raw) if r[1] == g]
            if g == 1 and not members:
                break
            single = tuple(t for t in members if not raw[t][3])
            multi = tuple(t for t in members if raw[t][3])
            offset = 0
            for slot, t in enumerate(single + multi):
                fi, _, rows, is_multi, mean, managed = raw[t]
                places[t] = TablePlace(fi, g, slot, offset, rows, is_multi, mean, managed)
                offset += rows
            groups.append(GroupPlan(dim, offset, single, multi))
        tables = tuple(p for p in places if p is not None)
        assert len(tables) == len(raw)
        return cls(tables, tuple(groups), _combine_plan(config, tables))


def _combine_plan(config: DLRMConfig, tables: tuple[TablePlace, ...]) -> CombinePlan:
    slots_of: dict[int, list[int]] = {}
    for p in tables:
        slots_of.setdefault(p.feature, []).append(p.slot)
    kinds: dict[str, list[int]] = {"none": [], "add": [], "mult": [], "concat": []}
    for fi, f in enumerate(config.features):
        # a mixed feature is one table (its blocks' rows) whose lookup the sparse arch projects
        kinds[{"sum": "add", "mixed": "none"}.get(f.combine, f.combine)].append(fi)

    def pairs(kind: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
        return (
            tuple(slots_of[fi][0] for fi in kinds[kind]),
            tuple(slots_of[fi][1] for fi in kinds[kind]),
        )

    order = tuple(kinds["none"] + kinds["add"] + kinds["mult"] + kinds["concat"])
    return CombinePlan(
        single=tuple(slots_of[fi][0] for fi in kinds["none"]),
        add=pairs("add"),
        mult=pairs("mult"),
        concat=pairs("concat"),
        feature_order=order,
    )
