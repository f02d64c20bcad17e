"""Means over seeds with Student-t confidence intervals, plain and paired by seed.

Seeds are replicates: a configuration's loss is the mean over its seeds, and the interval is
mean +- t_{(1 + level) / 2, n - 1} * sd / sqrt(n), sd with n - 1 degrees of freedom. With one
seed there is no interval (None), never a made-up zero. A paired difference takes the seeds
both sides have and the interval of the per-seed differences, which removes the part of the
noise two configurations share through the seed (the same data order and probe).

Many cells tested at once: `p_value` is the two-sided paired t-test of an estimate against 0,
and `holm` adjusts a family of p-values (Holm, 1979) so that the chance of any false "clear"
verdict in the family stays at most 1 - LEVEL. `chance_count` is how many of m uncorrected
intervals would exclude 0 by chance alone if nothing differed: (1 - LEVEL) x m.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ALPHA", "LEVEL", "Estimate", "chance_count", "finite", "holm", "mean_ci",
           "p_value", "paired_difference"]

LEVEL = 0.95  # the confidence level of every interval collide reports
ALPHA = 1 - LEVEL  # the level of every test: an interval excludes 0 exactly when p < ALPHA


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


def p_value(estimate: Estimate | None) -> float | None:
    """Two-sided p of the t-test of `estimate`'s mean against 0 (n - 1 degrees of freedom): the
    interval at LEVEL excludes 0 exactly when p < ALPHA. None without an interval (n < 2)."""
    if estimate is None or estimate.sd is None:
        return None
    if estimate.sd == 0:
        return 1.0 if estimate.mean == 0 else 0.0
    from scipy.stats import t

    statistic = estimate.mean / (estimate.sd / math.sqrt(estimate.n))
    return float(2 * t.sf(abs(statistic), estimate.n - 1))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment of a family of p-values, in their order (None stays None and is
    not counted): sorted ascending, the i-th of m becomes the largest over j <= i of
    min(1, (m - j + 1) p_j). A hypothesis is rejected at ALPHA when its adjusted p < ALPHA."""
    tested = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(tested):
        running = max(running, min(1.0, (len(tested) - rank) * p))
        adjusted[i] = running
    return adjusted


def chance_count(tests: int) -> float:
    """How many of `tests` uncorrected intervals at LEVEL would exclude 0 by chance alone when no
    difference is real: ALPHA x tests."""
    return ALPHA * tests
