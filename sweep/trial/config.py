"""A trial's configuration: what one sweep point trains, and the model options every point shares.

`TrialConfig` holds a `ModelConfig`, a `models.TrainConfig` and a `models.ProbeConfig`; a
sweep's config holds the same three (`sweep.config.SweepConfig`), so every default is written
once, here or in `models`. Both are frozen dataclasses validated in `__post_init__`: a bad
value fails before any data is read or a Ray trial starts. The `help` in each field's metadata
is what `collide train --help` shows (`sweep.cli.options`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from mappers import MAPPERS, get_mapper
from models import DLRMConfig, FeatureSpec, ProbeConfig, TrainConfig
from sweep.datasets.base import option
from sweep.errors import ConfigError
from sweep.trial.precision import PRECISIONS, check_precisions

__all__ = [
    "FULL_THRESHOLD",
    "LEARNED_MIN_COUNT",
    "ModelConfig",
    "TrialConfig",
    "check_test_windows",
]

# Features with a train vocabulary <= this keep a full table: at dim 16 such a table is at most
# 1 KiB, and hashing it saves next to nothing while merging its few, usually informative values
# (measured in results/full_threshold.md).
FULL_THRESHOLD = 16
# Learned maps hash the ids seen fewer times than this in training. The probe is trained on the
# training labels, so a rare id's probe embedding memorises its few labels, and clustering rare
# ids by it groups them by label noise: training loss drops below the Bayes loss while
# validation loss rises (label leakage through the mapping). results/README.md ("What we
# found on the way: label leakage") measures it; results/selection/summary.md chose this default
# on validation loss only (20 on the synthetic data; 5 on MovieLens, within its interval).
LEARNED_MIN_COUNT = 20


def _default(cls: type, name: str) -> Any:
    """The default of field `name` of dataclass `cls`: one source for a default used twice."""
    return next(f.default for f in fields(cls) if f.name == name)


def check_test_windows(value: object) -> None:
    """test_windows must be a whole number of windows, at least 1 (1: the test split as one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"test_windows must be an int >= 1, got {value!r}")


@dataclass(frozen=True)
class ModelConfig:
    """The DLRM around the tables, and which features a strategy maps: shared by every point."""

    bottom_mlp: tuple[int, ...] = field(default=_default(DLRMConfig, "bottom_mlp"), metadata=option(
        "hidden widths of the bottom MLP; the embedding dim is appended"))
    top_mlp: tuple[int, ...] = field(default=_default(DLRMConfig, "top_mlp"), metadata=option(
        "hidden widths of the top MLP; a 1-unit logit follows"))
    interaction: str = field(default=_default(DLRMConfig, "interaction"), metadata=option(
        "'dot' (pairwise dot products) or 'cat' (concatenation)"))
    pooling: str = field(default=_default(FeatureSpec, "pooling"), metadata=option(
        "pooling of multi-valued features: 'sum' or 'mean'"))
    full_threshold: int = field(default=FULL_THRESHOLD, metadata=option(
        "features with a train vocabulary <= this keep a full table"))
    learned_min_count: int = field(default=LEARNED_MIN_COUNT, metadata=option(
        "learned maps hash ids seen fewer times in training (label leakage)"))

    def __post_init__(self) -> None:
        if isinstance(self.full_threshold, bool) or not isinstance(self.full_threshold, int) \
                or self.full_threshold < 0:
            raise ConfigError(f"full_threshold must be an int >= 0, got {self.full_threshold!r}")
        if isinstance(self.learned_min_count, bool) or not isinstance(self.learned_min_count, int) \
                or self.learned_min_count < 1:
            raise ConfigError("learned_min_count must be an int >= 1, got "
                              f"{self.learned_min_count!r}")
        self.architecture(embedding_dim=2)  # the MLPs, interaction and pooling, checked now

    def architecture(self, embedding_dim: int, num_dense: int = 1,
                     features: tuple[FeatureSpec, ...] | None = None) -> DLRMConfig:
        """The DLRM of these options; without `features`, a two-feature stand-in (to validate)."""
        stand_in = tuple(FeatureSpec(name, (2,), pooling=self.pooling) for name in ("a", "b"))
        try:
            return DLRMConfig(num_dense=num_dense, features=features or stand_in,
                              embedding_dim=embedding_dim,
                              bottom_mlp=tuple(self.bottom_mlp), top_mlp=tuple(self.top_mlp),
                              interaction=self.interaction)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"model: {exc}") from None


@dataclass(frozen=True)
class TrialConfig:
    """One point end to end: data, strategy, size, dim and seed, and how to train it."""

    data: str  # absolute path of a prepared dataset (collide prepare --out)
    strategy: str = field(default="hash",
                          metadata=option(f"mapping strategy: {', '.join(MAPPERS)}"))
    compression: float | None = field(default=16.0, metadata=option(
        "rows per feature = ceil(train vocab / compression)"))
    rows: int | None = field(default=None, metadata=option(
        "explicit rows per feature instead of a compression"))
    dim: int = field(default=16, metadata=option("embedding dim"))
    seed: int = field(default=0, metadata=option(
        "seed of the mapper, the model's init, shuffling and the probe"))
    # strategy params, e.g. hot_fraction
    mapper_params: Mapping[str, Any] = field(default_factory=dict)
    test_windows: int = field(default=1, metadata=option(
        "also evaluate on K consecutive time windows of the test split; needs time-ordered data"))
    precisions: tuple[str, ...] = field(default=PRECISIONS, metadata=option(
        "also score the trained model with its tables stored at these precisions (fp16, int8 and "
        "int4 row-wise; fp32 is the model as trained): a point per precision, no training"))
    save_tables: bool = field(default=True, metadata=option(
        "write the trained embedding tables (fp32) with the outputs, for `collide export`; "
        "false: maps and metrics only (a full-size table can be gigabytes)"))
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    cache_dir: str = ".collide/probes"  # where probe embeddings are cached
    out_dir: str | None = None  # bundles (+ tables) + metrics.json; None: write nothing

    def __post_init__(self) -> None:
        if self.strategy not in MAPPERS:
            raise ConfigError(f"strategy must be one of {sorted(MAPPERS)}, got {self.strategy!r}")
        if not MAPPERS[self.strategy].takes_compression:  # its rows follow from the vocabulary
            object.__setattr__(self, "compression", None)
            object.__setattr__(self, "rows", None)
        elif (self.compression is None) == (self.rows is None):
            raise ConfigError("give exactly one of compression or rows, got "
                              f"compression={self.compression}, rows={self.rows}")
        if self.compression is not None and not (1 <= self.compression < math.inf):
            raise ConfigError(f"compression must be a finite number >= 1, got {self.compression}")
        if self.rows is not None and self.rows < 1:
            raise ConfigError(f"rows must be >= 1, got {self.rows}")
        if self.dim < 1:
            raise ConfigError(f"dim must be >= 1, got {self.dim}")
        check_test_windows(self.test_windows)
        try:
            object.__setattr__(self, "precisions", check_precisions(self.precisions,
                                                                    "precisions"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        self.mapper(num_rows=self.rows or 64)  # bad mapper params fail now, before any data is read
        self.model.architecture(self.dim)

    def mapper(self, num_rows: int, **params: Any) -> Any:
        """A new mapper of this trial's strategy and params (`num_rows` only for a strategy that
        takes a size); bad params are a ConfigError naming the strategy."""
        cls = MAPPERS[self.strategy]
        given = {**dict(self.mapper_params), **params}
        if cls.needs_embeddings:
            given.setdefault("min_count", self.model.learned_min_count)
        sized = {"num_rows": num_rows} if cls.takes_compression else {}
        if cls.takes_dim:
            if "dim" in given:
                raise ConfigError(f"strategy {self.strategy}: its dim is the trial's (the grid's "
                                  f"dims), so strategy_params must not set dim, got "
                                  f"{given['dim']!r}")
            sized["dim"] = self.dim
        try:
            return get_mapper(self.strategy, seed=self.seed, **sized, **given)
        except ValueError as exc:
            raise ConfigError(f"strategy {self.strategy}: {exc}") from None
