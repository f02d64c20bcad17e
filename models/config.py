"""DLRM configuration: what each sparse feature looks like and how big the MLPs are.

The configs are frozen dataclasses validated in ``__post_init__`` so that a bad sweep
point fails before any trial starts; ``dataclasses.asdict`` is what gets logged. The
size helpers at the bottom are pure arithmetic on a config: they never build a model,
so the size of a full (uncompressed) model can be computed without allocating it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

COMBINES = ("none", "sum", "mult", "add", "concat", "mixed")
POOLINGS = ("sum", "mean")
INTERACTIONS = ("dot", "cat")
BYTES_PER_FLOAT = 4


def _as_tuple(obj: object, field: str, name: str) -> None:
    """Freeze a list (e.g. from YAML/JSON) into the tuple the frozen dataclass stores."""
    value = getattr(obj, field)
    if isinstance(value, list):
        object.__setattr__(obj, field, tuple(value))
    elif not isinstance(value, tuple):
        raise TypeError(f"{name} must be a tuple or list of ints, got {type(value).__name__}")


def _check_positive_ints(name: str, values: tuple[int, ...], allow_empty: bool) -> None:
    if not values and not allow_empty:
        raise ValueError(f"{name} must not be empty, got {values}")
    for v in values:
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            raise ValueError(f"{name} must hold positive ints, got {values}")


@dataclass(frozen=True)
class FeatureSpec:
    """One categorical feature and the embedding table(s) behind it."""

    name: str
    table_sizes: tuple[int, ...]  # rows of each of its tables: 1 table, or 2 for double hash / QR
    # "none" (1 table) | "sum" (double hash) | "mult" | "add" | "concat" (QR) | "mixed" (1 table
    # of `blocks`: mixed dims)
    combine: str = "none"
    multi_valued: bool = False  # a bag of ids per sample, pooled into one vector
    pooling: str = "sum"  # "sum" | "mean": how a multi-valued bag is pooled
    # combine "mixed" only: ((rows, dim), ...) of its blocks, hottest first; the table's rows are
    # the blocks' in order, the first block has the embedding dim D and every other block a
    # (dim, D) projection (mappers/mixed_dim.py)
    blocks: tuple[tuple[int, int], ...] = ()
    # rows assigned online during training (mappers/mch.py): batches hold the raw ids, and the
    # model's `online` maps turn them into rows (models/online.py); one single-valued table
    managed: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"FeatureSpec.name must be a non-empty str, got {self.name!r}")
        _as_tuple(self, "table_sizes", f"table_sizes of feature {self.name!r}")
        _check_positive_ints(f"table_sizes of feature {self.name!r}", self.table_sizes, False)
        if self.combine not in COMBINES:
            raise ValueError(
                f"combine of feature {self.name!r} must be one of {COMBINES}, got {self.combine!r}"
            )
        expected = 1 if self.combine in ("none", "mixed") else 2
        if len(self.table_sizes) != expected:
            raise ValueError(
                f"feature {self.name!r} with combine={self.combine!r} needs {expected} table "
                f"size(s), got table_sizes={self.table_sizes}"
            )
        if self.pooling not in POOLINGS:
            raise ValueError(
                f"pooling of feature {self.name!r} must be one of {POOLINGS}, got {self.pooling!r}"
            )
        if not isinstance(self.multi_valued, bool):
            raise TypeError(f"multi_valued must be a bool, got {self.multi_valued!r}")
        self._check_blocks()
        if self.managed and (self.combine != "none" or self.multi_valued):
            raise ValueError(f"feature {self.name!r}: a managed table (mch) must be one "
                             "single-valued table (combine='none'), got "
                             f"combine={self.combine!r}, multi_valued={self.multi_valued}")

    def _check_blocks(self) -> None:
        blocks = tuple(tuple(b) for b in self.blocks) if isinstance(self.blocks, list | tuple) \
            else self.blocks
        object.__setattr__(self, "blocks", blocks)
        if self.combine != "mixed":
            if blocks:
                raise ValueError(f"feature {self.name!r}: blocks are for combine='mixed' only, "
                                 f"got blocks={blocks} with combine={self.combine!r}")
            return
        ok = isinstance(blocks, tuple) and len(blocks) >= 1 and all(
            len(b) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                for v in b) for b in blocks)
        if not ok or sum(rows for rows, _ in blocks) != self.table_sizes[0]:
            raise ValueError(f"feature {self.name!r} with combine='mixed' needs blocks of positive "
                             f"(rows, dim) whose rows sum to table_sizes[0]={self.table_sizes[0]}, "
                             f"got {blocks!r}")
        if self.multi_valued:
            raise ValueError(f"feature {self.name!r}: mixed-dimension blocks (mixed_dim) need a "
                             "single-valued feature, and it is multi-valued")


@dataclass(frozen=True)
class DLRMConfig:
    """DLRM architecture (Naumov et al., 2019, arXiv 1906.00091), torchrec-style.

    The bottom MLP is ``num_dense -> *bottom_mlp -> embedding_dim`` (its last layer is always
    the embedding dim, as the reference requires); the top MLP is
    ``interaction_dim -> *top_mlp -> 1`` (a logit).
    """

    num_dense: int  # dense (continuous) inputs per sample; 0 means no bottom MLP
    features: tuple[FeatureSpec, ...]  # sparse features, in input order
    embedding_dim: int = 16  # D: width of every feature's embedding vector
    bottom_mlp: tuple[int, ...] = (64, 32)  # hidden widths of the bottom MLP (D is appended)
    top_mlp: tuple[int, ...] = (64, 32)  # hidden widths of the top MLP (a 1-unit logit follows)
    interaction: str = "dot"  # "dot": pairwise dots, no self-interaction | "cat": concatenate

    def __post_init__(self) -> None:
        if isinstance(self.num_dense, bool) or not isinstance(self.num_dense, int):
            raise TypeError(f"num_dense must be an int, got {self.num_dense!r}")
        if self.num_dense < 0:
            raise ValueError(f"num_dense must be >= 0, got {self.num_dense}")
        if isinstance(self.features, list):
            object.__setattr__(self, "features", tuple(self.features))
        if not isinstance(self.features, tuple) or not self.features:
            raise ValueError(
                f"features must be a non-empty tuple of FeatureSpec, got {self.features!r}"
            )
        for f in self.features:
            if not isinstance(f, FeatureSpec):
                raise TypeError(f"features must hold FeatureSpec, got {type(f).__name__}")
        names = [f.name for f in self.features]
        if len(set(names)) != len(names):
            raise ValueError(f"feature names must be unique, got {names}")
        d = self.embedding_dim
        if isinstance(d, bool) or not isinstance(d, int) or d <= 0:
            raise ValueError(f"embedding_dim must be a positive int, got {d!r}")
        for f in self.features:
            dims = [dim for _, dim in f.blocks]
            if dims and (dims[0] != d or max(dims) != d):
                raise ValueError(f"feature {f.name!r}: its first block must have the embedding dim "
                                 f"{d} and no block a wider one, got block dims {dims}")
        concat = [f.name for f in self.features if f.combine == "concat"]
        if concat and d % 2:
            raise ValueError(
                f"embedding_dim must be even when a feature uses combine='concat' "
                f"(each half table has dim D/2), got {d} with {concat}"
            )
        for name in ("bottom_mlp", "top_mlp"):
            _as_tuple(self, name, name)
            _check_positive_ints(name, getattr(self, name), True)
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"interaction must be one of {INTERACTIONS}, got {self.interaction!r}")
        if self.interaction == "dot" and self.num_dense == 0 and len(self.features) < 2:
            raise ValueError(
                "interaction='dot' with num_dense=0 needs at least 2 features (it has no "
                f"dense vector to pair with), got {len(self.features)}; use interaction='cat'"
            )

    @property
    def num_features(self) -> int:  # F
        return len(self.features)

    def _shapes(self, f: FeatureSpec) -> list[tuple[int, int]]:
        """(rows, dim) of a feature's tables as trained; concat halves have dim D/2."""
        dim = self.embedding_dim // 2 if f.combine == "concat" else self.embedding_dim
        return [(rows, dim) for rows in f.table_sizes]

    @property
    def table_shapes(self) -> tuple[tuple[int, int], ...]:
        """(rows, dim) of every table in config order; concat halves have dim D/2."""
        return tuple(shape for f in self.features for shape in self._shapes(f))

    @property
    def stored_shapes(self) -> tuple[tuple[int, int], ...]:
        """(rows, dim) of every table as stored, config order: a mixed feature's blocks in place
        of its one table (trained padded to D, stored at their own dims)."""
        return tuple(shape for f in self.features
                     for shape in (f.blocks if f.combine == "mixed" else self._shapes(f)))

    @property
    def projection_shapes(self) -> tuple[tuple[int, int], ...]:
        """(dim, D) of every projection of a mixed feature's block (all blocks but the first)."""
        return tuple((dim, self.embedding_dim) for f in self.features for _, dim in f.blocks[1:])

    @property
    def interaction_dim(self) -> int:
        """Width of the interaction output, i.e. the top MLP's input."""
        n_dense_vec = 1 if self.num_dense > 0 else 0
        dense_width = self.embedding_dim * n_dense_vec
        if self.interaction == "cat":
            return dense_width + self.num_features * self.embedding_dim
        n = self.num_features + n_dense_vec
        return dense_width + n * (n - 1) // 2


def _mlp_param_count(widths: list[int]) -> int:
    return sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))


def embedding_bytes(config: DLRMConfig) -> int:
    """Bytes of all embedding tables in fp32: rows x dim x 4 summed over the stored tables,
    with the projections of mixed-dimension blocks (dim x D x 4 each)."""
    shapes = config.stored_shapes + config.projection_shapes
    return sum(rows * dim * BYTES_PER_FLOAT for rows, dim in shapes)


def dense_param_count(config: DLRMConfig) -> int:
    """Number of MLP parameters (weights + biases of bottom and top MLP)."""
    bottom = 0
    if config.num_dense > 0:
        bottom = _mlp_param_count([config.num_dense, *config.bottom_mlp, config.embedding_dim])
    top = _mlp_param_count([config.interaction_dim, *config.top_mlp, 1])
    return bottom + top


def dense_bytes(config: DLRMConfig) -> int:
    """Bytes of the MLPs in fp32."""
    return dense_param_count(config) * BYTES_PER_FLOAT


def embedding_init_bound(num_rows: int) -> float:
    """Half-width of the uniform init of a table, sqrt(1 / rows) as in reference DLRM."""
    return math.sqrt(1.0 / num_rows)
