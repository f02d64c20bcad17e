"""Means over seeds with Student-t confidence intervals, plain and paired by seed.

Seeds are replicates: a configuration's loss is the mean over its seeds, and the interval is
mean +- t_{(1 + level) / 2, n - 1} * sd / sqrt(n), sd with n - 1 degrees of freedom. With one
seed there is no interval (None), never a made-up zero. A paired difference takes the seeds
both sides have and the interval of the per-seed differences, which removes the part of the
noise two configurations share through the seed (the same data order and probe).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["LEVEL", "Estimate", "finite", "mean_ci", "paired_difference"]

LEVEL = 0.95  # the confidence level of every interval collide reports


@dataclass(frozen=True)
class Estimate:
    """A mean over n values and its interval half-width (None when n < 2)."""

    mean: float
    half_width: float | None
    n: int
    sd: float | None = None

    @property
    def low(self) -> float | None:
        return None if self.half_width is None else self.mean - self.half_width

    @property
    def high(self) -> float | None:
        return None if self.half_width is None else self.mean + self.half_width

    def excludes_zero(self) -> bool:
        """The interval lies wholly above or below 0 (False without an interval)."""
        return self.half_width is not None and (self.low > 0 or self.high < 0)


def finite(value: object) -> bool:
    """A real, finite number: a missing, None, bool, NaN or infinite metric is left out of every
    mean."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def mean_ci(values: Sequence[float], level: float = LEVEL) -> Estimate:
    """Mean of `values` and its t interval at `level`; values must be finite and non-empty."""
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    data = [float(v) for v in values]
    if not data:
        raise ValueError("mean_ci needs at least one value, got none")
    if not all(math.isfinite(v) for v in data):
        raise ValueError(f"mean_ci needs finite values, got {data}")
    n = len(data)
    mean = math.fsum(data) / n
    if n < 2:
        return Estimate(mean, None, n)
    from scipy.stats import t

    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in data) / (n - 1))
    return Estimate(mean, float(t.ppf((1 + level) / 2, n - 1)) * sd / math.sqrt(n), n, sd)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float],
                      level: float = LEVEL) -> Estimate | None:
    """Mean of a[s] - b[s] over the seeds s both have, with its t interval; None when none is
    shared."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    return mean_ci([a[s] - b[s] for s in shared], level)
