"""Dense-column transforms: fitted on the training split, stored in the manifest, applied the same
way at serving time.

A raw dense column can span 10^6 with a heavy tail; fed to the bottom MLP as it is, it wrecks
training. Each dense column gets one of

    none                 x
    log1p                sign(x) * log(1 + |x|)      (x >= 0: the usual log(1 + x))
    standardize          (x - mean) / std
    log1p_standardize    (log1p(x) - mean) / std     mean, std of log1p(x)

`clip_min` (optional) clamps x from below first; the criteo source records its reference
transform (negative -> 0, then log1p, done while parsing) this way. mean and std come from
the TRAIN rows only (float64); a constant column keeps std 1.

`auto` picks per column, on the train rows, and the choice and its reason are recorded:
- a constant column -> none;
- heavy skew (|skewness| > 2) or a large range (the 99th percentile of |x| above 100 x
  max(median |x|, 1)) -> log1p_standardize;
- anything else -> standardize.

Use `DenseTransform.from_json(entry).apply(values)` (or `apply_dense_transforms`) to transform
raw values the way the prepared data was transformed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from mappers.portable import DENSE_KINDS, dense_transform, dense_values, signed_log1p
from sweep.errors import DataError

__all__ = ["AUTO", "DENSE_TRANSFORMS", "SOURCE_DEFAULT", "DenseTransform", "apply_dense_transforms",
           "choose_transform",
           "fit_dense_transform", "parse_dense_transform"]

DENSE_TRANSFORMS = DENSE_KINDS  # the serving loader applies them (mappers.portable)
AUTO = "auto"
SOURCE_DEFAULT = "source default"  # the reason recorded for a column nobody asked to transform
SKEW_LIMIT = 2.0  # |skewness| above this: log1p first
RANGE_LIMIT = 100.0  # q99(|x|) / max(median |x|, 1) above this: log1p first


@dataclass(frozen=True)
class DenseTransform:
    """The fitted transform of one dense column (see the module docstring)."""

    column: str
    kind: str  # one of DENSE_TRANSFORMS
    mean: float = 0.0  # subtracted after the log step (standardize kinds)
    std: float = 1.0  # divided by after the log step (standardize kinds)
    clip_min: float | None = None  # x = max(x, clip_min) first; None: no clipping
    reason: str = ""  # why this kind: "requested", or auto's reason

    def __post_init__(self) -> None:
        if self.kind not in DENSE_TRANSFORMS:
            raise DataError(f"dense transform of column {self.column!r} must be one of "
                            f"{DENSE_TRANSFORMS}, got {self.kind!r}")
        if not (math.isfinite(self.mean) and math.isfinite(self.std) and self.std > 0):
            raise DataError(f"dense transform of column {self.column!r}: mean must be finite and "
                            f"std a finite number > 0, got mean {self.mean!r}, std {self.std!r}")

    def apply(self, values: np.ndarray) -> np.ndarray:
        """float32 [n] of raw values [n]. Values are rounded to float32 first, as prepare stores
        them,
        so serving gets exactly the prepared values."""
        return dense_transform(values, self.kind, self.mean, self.std, self.clip_min)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, entry: Mapping) -> DenseTransform:
        if not isinstance(entry, Mapping):
            raise DataError(f"a dense transform must be an object, got {entry!r}")
        unknown = sorted(set(entry) - {f for f in cls.__dataclass_fields__})
        if unknown or "column" not in entry or "kind" not in entry:
            raise DataError("a dense transform needs column and kind (and only mean, std, "
                            f"clip_min, reason); got {sorted(entry)}")
        return cls(**dict(entry))


def choose_transform(train_values: np.ndarray) -> tuple[str, str]:
    """(kind, reason) that `auto` picks for a column's train values (see the module docstring)."""
    x = np.asarray(train_values, dtype=np.float64)
    if len(x) == 0 or float(x.std()) == 0.0:
        return "none", "constant on the train split"
    std = float(x.std())
    skew = float(np.mean(((x - x.mean()) / std) ** 3))
    magnitude = np.abs(x)
    median, q99 = (float(v) for v in np.quantile(magnitude, [0.5, 0.99]))
    spread = q99 / max(median, 1.0)
    if abs(skew) > SKEW_LIMIT:
        return "log1p_standardize", f"skewness {skew:.1f} (|skewness| > {SKEW_LIMIT:g})"
    if spread > RANGE_LIMIT:
        return ("log1p_standardize",
                f"range: q99(|x|) {q99:.4g} is {spread:.0f} x max(median |x|, 1)")
    return "standardize", f"skewness {skew:.1f}, q99(|x|) {q99:.4g}: no log needed"


def fit_dense_transform(column: str, requested: str, train_values: np.ndarray) -> DenseTransform:
    """The transform `requested` (a kind or `auto`) of a column, fitted on its train values."""
    if requested == AUTO:
        kind, reason = choose_transform(train_values)
    else:
        kind, reason = requested, "requested"
    DenseTransform(column, kind)  # validates the kind
    x = np.asarray(train_values, dtype=np.float64)
    if kind in ("log1p", "log1p_standardize"):
        x = signed_log1p(x)
    mean, std = 0.0, 1.0
    if kind in ("standardize", "log1p_standardize") and len(x):
        mean, std = float(x.mean()), float(x.std())
        if std == 0.0:
            std = 1.0
            reason += "; constant on the train split, so std 1"
    return DenseTransform(column, kind, mean=mean, std=std, reason=reason)


def parse_dense_transform(value: str | Mapping[str, str], columns: Sequence[str]) -> dict[str, str]:
    """Requested kind per dense column from one kind for all (`auto`, `log1p`, ...), a mapping
    {column: kind}, or the text `COL=KIND,COL=KIND` (columns not named get `auto`)."""
    allowed = (AUTO, *DENSE_TRANSFORMS)
    if isinstance(value, str) and "=" in value:
        pairs = [part.split("=", 1) for part in value.split(",") if part.strip()]
        value = {name.strip(): kind.strip() for name, kind in pairs}
    if isinstance(value, str):
        if value not in allowed:
            raise DataError(f"dense_transform must be one of {allowed} or COL=KIND pairs, got "
                            f"{value!r}")
        return {c: value for c in columns}
    if not isinstance(value, Mapping):
        raise DataError("dense_transform must be a kind or a mapping of column to kind, got "
                        f"{value!r}")
    unknown = sorted(set(value) - set(columns))
    if unknown:
        raise DataError(f"dense_transform names {unknown}, which are not dense columns; dense: "
                        f"{list(columns)}")
    for name, kind in value.items():
        if kind not in allowed:
            raise DataError(f"dense_transform of column {name!r} must be one of {allowed}, got "
                            f"{kind!r}")
    return {c: value.get(c, AUTO) for c in columns}


def apply_dense_transforms(transforms: Sequence[Mapping], raw: np.ndarray) -> np.ndarray:
    """float32 [n, num_dense] of raw dense values [n, num_dense], with one manifest entry per
    column."""
    checked = [DenseTransform.from_json(entry).to_json() for entry in transforms]
    try:
        return dense_values(checked, raw)
    except ValueError as exc:
        raise DataError(str(exc)) from None
