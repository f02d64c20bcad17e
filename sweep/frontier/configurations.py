"""Frontiers over configurations: a configuration (strategy x compression x dim x precision) is
ranked by its mean over seeds, not by its luckiest seed.

`precision_points(trials)` makes each trial row a point per table precision it was scored at
(sweep.trial.precision): the fp32 row as trained, then e.g. `hash-c16-d8-s0-int8` with that
precision's bytes and losses (the map and the MLPs are the same). Everything that ranks (the
Pareto files, `collide pareto`, `collide export`, `collide report`) ranks these points.

`configuration_rows(trials)` groups trial rows (`sweep.tracking.records.trial_rows`) by
configuration. A configuration row holds:

- `configuration` (e.g. `hash-c16-d8`), `strategy`, `compression`, `dim`;
- `seeds`: the seeds that were ranked (completed with a val loss), `n_seeds`, and
  `not_ranked`: how many of its trials were not (failed, excluded);
- the byte columns (`total_bytes`, ...): the mean over the ranked seeds, rounded to whole
  bytes (they agree across seeds; a learned map's size can differ only if its data does);
- for each loss and quality metric (`val_logloss`, `test_logloss`, `test_auc`, `test_ne`):
  the mean, `<metric>_ci` (the 95% half-width, None with one seed) and `<metric>_sd`;
- `median_seed`, `median_trial_id`, `median_run_id`, `median_name`: the seed whose val loss
  is the median of the configuration's (the lower of the two middle ones for an even count,
  so of two seeds it is the better one). Export writes that seed's bundles: with three or
  more seeds a typical seed, not the luckiest.

A configuration none of whose seeds was ranked keeps its row, with val_logloss None and
`excluded` saying why. `frontier_table` and `select_point` (sweep.frontier.pareto) work on
these rows as on trial rows.

`ranked_rows(trials, per_trial)` is what the Pareto files, `collide pareto` and `collide
export` rank: configurations when some configuration ran more than one seed, the trials
themselves otherwise or when `per_trial` asks for them.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from mappers import MAPPERS, baseline_strategy, strategy_traits
from mappers.portable import PRECISIONS
from sweep.frontier.stats import ALPHA, finite, holm, mean_ci, p_value
from sweep.names import configuration_name

__all__ = ["BASELINE", "COMPARED", "CONFIGURATION_KEYS", "METRICS", "apply_holm",
           "comparison_columns", "comparisons",
           "configuration_key", "configuration_rows", "has_replicates", "per_seed",
           "pooled_comparisons",
           "precision_points", "ranked_rows",
           "strategy_rank",
           "verdict"]

# what the reports compare every strategy with, paired by seed (`hash`)
BASELINE = baseline_strategy()
# The strategies some strategy is also compared with (`compared_with`), e.g. a learned map with
# `frequency`: what the embedding adds to access counts. Each gets its vs_<name> columns.
COMPARED = tuple(dict.fromkeys(other for cls in MAPPERS.values() for other in cls.compared_with))

CONFIGURATION_KEYS = ("strategy", "compression", "dim", "precision")
# what a point at a lower precision takes from the trial's `precision.<p>.*` metrics
PRECISION_METRICS = ("embedding_bytes", "total_bytes", "compression_ratio", "val_logloss",
                     "test_logloss", "test_auc", "test_ne")
METRICS = ("val_logloss", "test_logloss", "test_auc", "test_ne")
log = logging.getLogger(__name__)

BYTE_COLUMNS = ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes")
MEAN_COLUMNS = ("compression_ratio", "collision_rate", "unseen_value_rate", "fallback_value_rate",
                "unused_row_share", "mean_ids_per_row", "max_ids_per_row", "nmi", "purity",
                "signal_captured", "total_seconds", "probe_train_seconds")


def configuration_key(row: Mapping[str, Any]) -> tuple:
    """(strategy, compression, dim, precision) of a trial row; a strategy that takes no
    compression (`full`) has none; a row without a precision is fp32."""
    strategy = row.get("strategy")
    compression = row.get("compression") if strategy_traits(strategy).takes_compression else None
    return (strategy, compression, row.get("dim"), row.get("precision") or "fp32")


def precision_points(trials: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Each trial row as its fp32 point, then one point per lower precision the trial was scored
    at (its `precision.<p>.*` metrics): trial_id and name end in `-<p>`; the bytes and losses
    are that precision's; the test windows (fp32 only) are left out."""
    points = []
    for row in trials:
        base = {k: v for k, v in row.items() if not k.startswith("precision.")}
        base["precision"] = row.get("precision") or "fp32"
        points.append(base)
        if row.get("excluded") is not None:
            continue
        for precision in PRECISIONS[1:]:
            prefix = f"precision.{precision}."
            if not finite(row.get(prefix + "total_bytes")):
                continue
            point = {k: v for k, v in base.items() if not k.startswith("window.")}
            point.update({"precision": precision, "trial_id": f"{row.get('trial_id')}-{precision}",
                          "name": f"{row.get('name')}-{precision}"})
            point.update({m: row.get(prefix + m) for m in PRECISION_METRICS})
            for column in ("embedding_bytes", "total_bytes"):  # MLflow keeps metrics as floats
                point[column] = int(point[column]) if finite(point[column]) else None
            points.append(point)
    return points


def has_replicates(trials: Iterable[Mapping[str, Any]]) -> bool:
    """Some configuration ran more than one trial (several seeds)."""
    keys = [configuration_key(row) for row in trials]
    return len(set(keys)) < len(keys)


def ranked_rows(trials: list[Mapping[str, Any]], per_trial: bool = False) -> tuple[list[dict], str]:
    """(the rows to rank, "configurations" | "trials"): see the module docstring."""
    replicated = has_replicates(trials)
    if per_trial and not replicated:
        log.warning("per-trial ranking has no effect here: every configuration of this sweep ran "
                    "one seed, so its frontier is over trials already")
    if per_trial or not replicated:
        return [dict(row) for row in trials], "trials"
    return configuration_rows(trials), "configurations"


def configuration_rows(trials: Iterable[Mapping[str, Any]]) -> list[dict]:
    """One row per configuration, in order of strategy, compression, dim (see the module
    docstring)."""
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for row in trials:
        groups.setdefault(configuration_key(row), []).append(row)
    return [_configuration(key, groups[key]) for key in sorted(groups, key=_order)]


def _order(key: tuple) -> tuple:
    strategy, compression, dim, precision = key
    return (str(strategy), compression is not None, compression or 0.0, dim or 0,
            PRECISIONS.index(precision) if precision in PRECISIONS else len(PRECISIONS))


def _ranked(row: Mapping[str, Any]) -> bool:
    return finite(row.get("val_logloss")) and row.get("excluded") is None


def _configuration(key: tuple, trials: list[Mapping[str, Any]]) -> dict:
    strategy, compression, dim, precision = key
    ranked = sorted((t for t in trials if _ranked(t)),
                    key=lambda t: (t.get("seed") is None, t.get("seed") or 0))
    row: dict[str, Any] = {
        "configuration": configuration_name(str(strategy), compression, dim,
                                            precision=precision) if dim is not None
        else str(strategy),
        "strategy": strategy, "compression": compression, "dim": dim, "precision": precision,
        "seeds": [t.get("seed") for t in ranked], "n_seeds": len(ranked), "not_ranked": len(trials)
        - len(ranked),
    }
    for column in BYTE_COLUMNS:
        values = [t[column] for t in ranked if finite(t.get(column))]
        row[column] = round(sum(values) / len(values)) if values else None
    for column in MEAN_COLUMNS:
        values = [t[column] for t in ranked if finite(t.get(column))]
        row[column] = sum(values) / len(values) if values else None
    for metric in METRICS:
        values = [t[metric] for t in ranked if finite(t.get(metric))]
        estimate = mean_ci(values) if values else None
        row[metric] = estimate.mean if estimate else None
        row[f"{metric}_ci"] = estimate.half_width if estimate else None
        row[f"{metric}_sd"] = estimate.sd if estimate else None
    median = _median_trial(ranked)
    for field in ("seed", "trial_id", "run_id", "name"):
        row[f"median_{field}"] = median.get(field) if median else None
    row["excluded"] = None if ranked else "no seed completed: " + "; ".join(
        f"{t.get('name') or t.get('trial_id')}: {t.get('excluded') or t.get('status')}"
        for t in trials)
    return row


def _median_trial(ranked: list[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The trial of median val loss (lower middle for an even count; ties by seed)."""
    if not ranked:
        return None
    by_loss = sorted(ranked, key=lambda t: (t["val_logloss"], t.get("seed") or 0))
    return by_loss[(len(by_loss) - 1) // 2]


def strategy_rank(strategy: Any) -> tuple:
    """Sort key: each strategy's `report_rank` (its trait), then its name."""
    return (strategy_traits(strategy).report_rank, str(strategy))


def verdict(strategy: str, difference: Any, has_baseline: bool) -> str:
    """What a paired difference from the baseline (`hash`) says, in words (the verdict column)."""
    if strategy == BASELINE:
        return "baseline"
    if not has_baseline:
        return f"no {BASELINE} run to compare"
    if difference is None:
        return f"no seed shared with {BASELINE}"
    if difference.half_width is None:
        return "one seed: no interval"
    if not difference.excludes_zero():
        return "no clear difference"
    return f"better than {BASELINE}" if difference.mean < 0 else f"worse than {BASELINE}"


def per_seed(trials: Iterable[Mapping[str, Any]], metric: str) -> dict[tuple, dict[int, float]]:
    """{configuration key: {seed: metric}} over the ranked trials that have `metric`."""
    values: dict[tuple, dict[int, float]] = {}
    for t in trials:
        if t.get("excluded") is None and finite(t.get(metric)) and t.get("seed") is not None:
            values.setdefault(configuration_key(t), {})[int(t["seed"])] = float(t[metric])
    return values


def comparison_columns() -> tuple[str, ...]:
    """The columns `comparisons` and `apply_holm` fill, in order: the four of the uncorrected
    comparison with hash first."""
    columns = ["vs_hash", "vs_hash_ci", "vs_hash_pairs", "vs_hash_verdict", "vs_hash_p",
               "vs_hash_p_holm", "vs_hash_holm_verdict"]
    for other in COMPARED:
        columns += [f"vs_{other}", f"vs_{other}_ci", f"vs_{other}_pairs", f"vs_{other}_p",
                    f"vs_{other}_p_holm"]
    return tuple(columns)


def comparisons(values: Mapping[tuple, Mapping[int, float]], key: tuple) -> dict[str, Any]:
    """Configuration `key` (strategy, compression, dim, precision) against the baseline (`hash`) at
    the same compression, dim and precision, and against each strategy of its `compared_with` (a
    learned map: against `frequency`), each paired by seed over `values` (per_seed): vs_hash,
    vs_hash_ci, vs_hash_pairs, vs_hash_verdict (the uncorrected interval's), vs_hash_p (two-sided
    paired t-test), and vs_<other>, vs_<other>_ci, vs_<other>_pairs, vs_<other>_p for every one of
    COMPARED (None and 0 where it is not compared). The Holm columns are the family's: apply_holm.
    """
    strategy, compression, dim, precision = key
    return pooled_comparisons(values, strategy, compression, precision, [dim])


def pooled_comparisons(values: Mapping[tuple, Mapping[int, float]], strategy: str,
                       compression: float, precision: str, dims: list[int]) -> dict[str, Any]:
    """`comparisons`' columns for the cells of `strategy` at `compression` and `precision` that
    differ only by dim, pooled: per seed, the mean over `dims` of the per-cell difference, then the
    t interval over seeds (one dim: the cell's own paired difference). A seed counts when both
    sides ran it at every dim; a side missing at some dim leaves the comparison out (None)."""

    def pooled(other: str) -> Any:
        cells = [(values.get((strategy, compression, dim, precision)),
                  values.get((other, compression, dim, precision))) for dim in dims]
        if not cells or any(mine is None or theirs is None for mine, theirs in cells):
            return None
        seeds = sorted(set.intersection(*(set(mine) & set(theirs) for mine, theirs in cells)))
        if not seeds:
            return None
        return mean_ci([math.fsum(mine[s] - theirs[s] for mine, theirs in cells) / len(cells)
                        for s in seeds])

    has_baseline = all((BASELINE, compression, dim, precision) in values for dim in dims)
    difference = pooled(BASELINE) if has_baseline and strategy != BASELINE else None
    out: dict[str, Any] = {**_difference_columns("vs_hash", difference),
                           "vs_hash_verdict": verdict(strategy, difference, has_baseline)}
    for other in COMPARED:
        out.update(_difference_columns(f"vs_{other}", pooled(other) if other in strategy_traits(
            strategy).compared_with else None))
    return out


def _difference_columns(prefix: str, difference: Any) -> dict[str, Any]:
    return {prefix: difference.mean if difference else None,
            f"{prefix}_ci": difference.half_width if difference else None,
            f"{prefix}_pairs": difference.n if difference else 0,
            f"{prefix}_p": p_value(difference)}


def apply_holm(rows: list[dict]) -> None:
    """Holm-adjust, in place, each comparison's p-values over `rows` as one family (every row that
    has a p): vs_hash_p_holm, vs_<other>_p_holm, and vs_hash_holm_verdict, the verdict at ALPHA
    after the correction ("better than hash" / "worse than hash" / "no clear difference", or the
    uncorrected verdict where there is no test)."""
    for prefix in ("vs_hash", *(f"vs_{other}" for other in COMPARED)):
        for row, adjusted in zip(rows, holm([row.get(f"{prefix}_p") for row in rows]),
                                 strict=True):
            row[f"{prefix}_p_holm"] = adjusted
    for row in rows:
        adjusted = row.get("vs_hash_p_holm")
        row["vs_hash_holm_verdict"] = (
            row.get("vs_hash_verdict") if adjusted is None
            else "no clear difference" if adjusted >= ALPHA
            else f"better than {BASELINE}" if row["vs_hash"] < 0 else f"worse than {BASELINE}")
