"""`collide report`: what one sweep says about the strategies, from MLflow alone.

`gather(trials)` turns a sweep's trial rows (sweep.tracking.records.trial_rows) into the report's
tables; `sweep.frontier.evidence_files.write_report` writes them (`sweep.api.report` reads a
sweep from MLflow and does both).
Everything is over configurations (strategy x compression x dim; seeds are replicates, see
sweep.frontier.configurations), on *test* metrics: the report evaluates, it selects nothing.

- configurations.csv: every configuration, mean and 95% CI of test logloss / NE / AUC over
  its seeds, its bytes with and without the map's own bytes, and whether it is on each of
  the two frontiers below.
- frontier.png: test logloss against total_bytes (mapping included: the honest axis), and
  beside it against total_bytes - mapping_bytes, so the cost of a learned map shows. One
  series per strategy, mean +- CI, frontier points ringed and joined by a step line.
- matched.csv: at each (compression, dim), each strategy's test metrics and its difference
  from `hash` in test logloss, paired by seed (mean +- CI of the per-seed differences), and
  for the learned maps the same against `frequency` (what the embedding adds to counts).
  Same compression = same embedding rows; the learned maps' extra bytes are in total_bytes.
- per strategy, over all matched cells: how often it has the lower mean loss than `hash`, how
  often the paired CI says better or worse, and the spread of the differences;
- which strategies make up the frontier, over which size ranges;
- trials.csv: every trial's point (each precision it was scored at), by configuration and seed:
  the per-seed values behind every mean, for a reader's own analysis;
- collision statistics per (strategy, compression): frequency-weighted collision rate, the
  unseen and fallback rates, table usage (the share of the mapped tables' rows no training id
  reaches, mean and max training ids per row hit), and NMI / purity against the planted
  clusters where the data has them (synthetic).

Determinism: rows are sorted on their keys, numbers are written with fixed formats (CSV:
repr, exact), and nothing depends on time or order of reading, so the same MLflow data gives
byte-identical tables (the PNG is not promised to be).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from mappers import strategy_traits
from mappers.portable import PRECISIONS
from sweep.frontier.configurations import (
    BASELINE,
    apply_holm,
    comparisons,
    configuration_key,
    configuration_rows,
    per_seed,
    pooled_comparisons,
    precision_points,
    strategy_rank,
)
from sweep.frontier.pareto import pareto_mask
from sweep.frontier.staleness import (
    staleness_rows,
)
from sweep.frontier.stats import chance_count, finite

__all__ = ["COLLISION_COLUMNS", "TEST_METRICS", "gather"]

log = logging.getLogger(__name__)

TEST_METRICS = ("test_logloss", "test_ne", "test_auc")
COLLISION_COLUMNS = ("collision_rate", "unseen_value_rate", "fallback_value_rate",
                     "unused_row_share", "mean_ids_per_row", "max_ids_per_row", "nmi", "purity")


def gather(trials: list[Mapping[str, Any]]) -> dict[str, Any]:
    """The report's tables from trial rows: configurations, matched, versus, segments, collisions,
    staleness, and the sweep's compute."""
    points = precision_points(trials)  # a point per trial and table precision
    configurations = sorted(configuration_rows(points), key=lambda r: (
        strategy_rank(r["strategy"]), r["compression"] is not None, r["compression"] or 0.0,
        r["dim"] or 0, PRECISIONS.index(r["precision"])))
    for row in configurations:
        bytes_ = row.get("total_bytes")
        row["bytes_without_mapping"] = (None if bytes_ is None else bytes_
                                        - (row.get("mapping_bytes") or 0))
    _flag_frontier(configurations, "total_bytes", "on_frontier")
    _flag_frontier(configurations, "bytes_without_mapping", "on_frontier_without_mapping")
    losses = per_seed(points, "test_logloss")
    matched = _matched(configurations, losses)
    apply_holm(matched)  # every matched cell against hash is one family; each vs_<other> another
    pooled = _pooled(configurations, losses)
    apply_holm(pooled)
    return {
        "configurations": configurations,
        "matched": matched,
        "pooled": pooled,
        "versus": _versus(matched),
        "tests": _tests(matched),
        "vocabulary": _vocabulary(trials),
        "trials": sorted(points, key=lambda r: (
            strategy_rank(r["strategy"]), r.get("compression") or 0.0, r.get("dim") or 0,
            PRECISIONS.index(r["precision"]), r.get("seed") if r.get("seed") is not None else -1,
            str(r.get("trial_id")))),
        "segments": _segments(configurations),
        "collisions": _collisions(trials),
        "staleness": staleness_rows(trials),
        "num_trials": len(trials),
        "seeds": sorted({t.get("seed") for t in trials if t.get("seed") is not None}),
        "compute": _compute(trials),
    }


def _compute(trials: list[Mapping[str, Any]]) -> dict[str, Any]:
    """What the sweep's trials cost: the sum of their seconds (those that recorded them), and of
    their probes' training, once per seed (a seed's learned trials share one probe)."""
    seconds = [float(t["total_seconds"]) for t in trials if finite(t.get("total_seconds"))]
    probes: dict[Any, float] = {}
    learned_seeds = set()
    for t in trials:
        if not strategy_traits(t.get("strategy")).needs_embeddings:
            continue
        learned_seeds.add(t.get("seed"))
        if finite(t.get("probe_train_seconds")):
            probes[t.get("seed")] = max(probes.get(t.get("seed"), 0.0),
                                        float(t["probe_train_seconds"]))
    return {"trial_seconds": sum(seconds), "trials_timed": len(seconds),
            "probe_seconds": sum(probes.values()), "probes_timed": len(probes),
            "probes": len(learned_seeds)}


def _flag_frontier(rows: list[dict], x: str, flag: str) -> None:
    ranked = [r for r in rows if finite(r.get(x)) and finite(r.get("test_logloss"))]
    mask = pareto_mask([[float(r[x]), float(r["test_logloss"])] for r in ranked]) if ranked else []
    for row in rows:
        row[flag] = False
    for row, on in zip(ranked, mask, strict=True):
        row[flag] = bool(on)


def _matched(configurations: list[dict], values: dict[tuple, dict[int, float]]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for row in configurations:
        if row["compression"] is not None and row["n_seeds"]:
            groups.setdefault((row["compression"], row["dim"], PRECISIONS.index(row["precision"])),
                              []).append(row)
    table = []
    for cell in sorted(groups):
        for row in sorted(groups[cell], key=lambda r: strategy_rank(r["strategy"])):
            entry = {k: row.get(k)
                     for k in ("compression", "dim", "precision", "strategy", "n_seeds",
                               "total_bytes",
                                               "mapping_bytes", *TEST_METRICS,
                               *(f"{m}_ci" for m in TEST_METRICS))}
            table.append({**entry, **comparisons(values, configuration_key(row))})
    return table


def _pooled(configurations: list[dict], values: dict[tuple, dict[int, float]]) -> list[dict]:
    """Per strategy, compression and precision: its cells of every dim pooled (per seed, the mean
    of the per-dim differences), against hash and its `compared_with`: the dims barely change a
    comparison, so the cells that differ only by dim are one test, not several."""
    dims: dict[tuple, set[int]] = {}
    for row in configurations:
        if row["compression"] is not None and row["n_seeds"] and row["strategy"] != BASELINE:
            dims.setdefault((row["strategy"], row["compression"], row["precision"]),
                            set()).add(row["dim"])
    table = []
    for strategy, compression, precision in sorted(dims, key=lambda k: (
            PRECISIONS.index(k[2]), k[1], strategy_rank(k[0]))):
        cell_dims = sorted(dims[(strategy, compression, precision)])
        table.append({"strategy": strategy, "compression": compression, "precision": precision,
                      "dims": cell_dims,
                      **pooled_comparisons(values, strategy, compression, precision, cell_dims)})
    return table


def _tests(matched: list[dict]) -> dict[str, Any]:
    """The matched family against hash: how many cells were tested, how many uncorrected intervals
    exclude 0, how many chance alone would give, and how many stay clear after Holm."""
    tested = [r for r in matched if r.get("vs_hash_p") is not None]
    clear = sum(r["vs_hash_verdict"] in (f"better than {BASELINE}", f"worse than {BASELINE}")
                for r in tested)
    after = sum(r["vs_hash_holm_verdict"] in (f"better than {BASELINE}", f"worse than {BASELINE}")
                for r in tested)
    return {"tested": len(tested), "clear": clear, "chance": chance_count(len(tested)),
            "clear_after_holm": after}


def _vocabulary(trials: Iterable[Mapping[str, Any]]) -> list[dict]:
    """Per feature, over the trials that logged it (`vocab.<feature>.ids` / `.learned`): the
    training vocabulary, the ids seen at least model.learned_min_count times (what a learned map
    keeps), and whether the feature keeps a full table (1) or is mapped (0): least and most over
    the trials (they differ only where the data varies with the seed); the feature `all` sums
    them."""
    found: dict[str, dict[str, list[float]]] = {}
    for t in trials:
        for key, value in t.items():
            if key.startswith("vocab.") and finite(value):
                feature, _, what = key[len("vocab."):].rpartition(".")
                found.setdefault(feature, {}).setdefault(what, []).append(float(value))
    table = []
    for feature in sorted(found, key=lambda f: (f == "all", f)):
        row: dict[str, Any] = {"feature": feature}
        for what in ("ids", "learned", "full"):
            values = found[feature].get(what, [])
            row[f"{what}_min"] = int(min(values)) if values else None
            row[f"{what}_max"] = int(max(values)) if values else None
        table.append(row)
    return table


def _versus(matched: list[dict]) -> list[dict]:
    """Per strategy, over the matched (compression, dim) cells it shares with hash: how many cells,
    in how many its paired difference from hash is negative, in how many the paired CI says
    better / worse (uncorrected, and after Holm over every cell), and the mean, lowest and highest
    of the per-cell differences."""
    table = []
    for strategy in sorted({r["strategy"] for r in matched if r["strategy"] != BASELINE},
                           key=strategy_rank):
        cells = [r for r in matched if r["strategy"] == strategy and finite(r["vs_hash"])]
        if not cells:
            continue
        differences = [r["vs_hash"] for r in cells]
        table.append({"strategy": strategy, "cells": len(cells),
                      "lower": sum(d < 0 for d in differences),
                      "better": sum(r["vs_hash_verdict"] == "better than hash" for r in cells),
                      "worse": sum(r["vs_hash_verdict"] == "worse than hash" for r in cells),
                      "better_holm": sum(r["vs_hash_holm_verdict"] == "better than hash"
                                         for r in cells),
                      "worse_holm": sum(r["vs_hash_holm_verdict"] == "worse than hash"
                                        for r in cells),
                      "mean": math.fsum(differences) / len(differences), "lowest": min(differences),
                      "highest": max(differences)})
    return table


def _segments(configurations: list[dict]) -> list[dict]:
    """Runs of consecutive frontier configurations (by total_bytes) of one strategy."""
    front = sorted((r for r in configurations if r["on_frontier"]),
                   key=lambda r: (r["total_bytes"], r["test_logloss"]))
    segments: list[dict] = []
    for row in front:
        if segments and segments[-1]["strategy"] == row["strategy"]:
            segments[-1]["to_bytes"] = row["total_bytes"]
            segments[-1]["configurations"].append(row["configuration"])
        else:
            segments.append({"strategy": row["strategy"], "from_bytes": row["total_bytes"],
                             "to_bytes": row["total_bytes"],
                             "configurations": [row["configuration"]]})
    return segments


def _collisions(trials: Iterable[Mapping[str, Any]]) -> list[dict]:
    groups: dict[tuple, list[Mapping[str, Any]]] = {}
    for t in trials:
        if t.get("excluded") is None and strategy_traits(t.get("strategy")).takes_compression:
            groups.setdefault((t.get("strategy"), t.get("compression")), []).append(t)
    table = []
    for strategy, compression in sorted(groups, key=lambda k: (strategy_rank(k[0]), k[1] or 0.0)):
        members = groups[(strategy, compression)]
        row: dict[str, Any] = {"strategy": strategy, "compression": compression,
                               "trials": len(members)}
        for column in COLLISION_COLUMNS:
            values = [float(t[column]) for t in members if finite(t.get(column))]
            row[column] = math.fsum(values) / len(values) if values else None
        table.append(row)
    return table
