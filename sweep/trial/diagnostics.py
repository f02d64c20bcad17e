"""What a trained trial says beyond its loss: collisions, unseen and rare values, the signal
captured, and the test metrics per time window (`window.<k>.*`).

Everything here reads the prepared data and the fitted mappers; nothing trains.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from mappers import collision_stats
from models import metrics, score
from sweep.datasets import PreparedDataset

__all__ = ["collisions", "frequency_weighted_mean", "signal_metrics", "table_usage", "unseen_rate",
           "value_rates", "window_metrics"]


def collisions(dataset: PreparedDataset, mappers: Mapping) -> dict[str, dict]:
    """collision_stats per feature over the train vocabulary (with planted clusters when known)."""
    stats = {}
    for name, mapper in mappers.items():
        vocab = dataset.vocab[name]
        ids, counts = np.asarray(vocab.ids), np.asarray(vocab.counts)
        clusters = None
        meta = dataset.meta.get(name, {})
        if "planted_cluster" in meta:
            order = np.argsort(meta["planted_ids"])
            planted_ids = np.asarray(meta["planted_ids"])[order]
            clusters = np.asarray(meta["planted_cluster"])[order][np.searchsorted(planted_ids, ids)]
        stats[name] = collision_stats(mapper.transform(ids), ids, counts, clusters=clusters,
                                      table_sizes=tuple(mapper.table_sizes))
    return stats


def table_usage(per_feature: Mapping[str, dict], features: list[str]) -> dict[str, float]:
    """How the tables of `features` are used by the training ids (their collision stats):
    unused_row_share (rows no training id maps to, over all their rows: table bytes training
    never updates), mean_ids_per_row (training ids per row hit) and max_ids_per_row."""
    stats = [per_feature[n] for n in features]
    rows, hit = sum(s["table_rows"] for s in stats), sum(s["rows_hit"] for s in stats)
    used = sum(s["rows_used"] for s in stats)
    return {"unused_row_share": 1.0 - hit / rows if rows else 0.0,
            "mean_ids_per_row": sum(s["num_ids"] for s in stats) / used if used else 0.0,
            "max_ids_per_row": float(max((s["max_ids_per_row"] for s in stats), default=0))}


def frequency_weighted_mean(per_feature: Mapping[str, dict], dataset: PreparedDataset,
                            key: str) -> float:
    weights = {n: float(np.asarray(dataset.vocab[n].counts).sum()) for n in per_feature}
    total = sum(weights.values())
    return float(sum(per_feature[n][key] * weights[n]
                     for n in per_feature) / total) if total else 0.0


def value_rates(dataset: PreparedDataset, rows: Callable[[int, int], np.ndarray],
                min_count: int, chunk_rows: int = 1 << 20) -> tuple[float, float]:
    """(unseen, rare) over the values of the rows `rows(start, stop)` selects (a boolean mask of
    the raw rows [start, stop), asked a chunk at a time): the share whose raw id never occurs in
    the training split, and the share seen there fewer than `min_count` times (unseen included:
    the ids a learned map hashes)."""
    unseen = rare = total = 0
    for name in dataset.feature_names:
        column = dataset.sparse[name]
        ids, counts = np.asarray(dataset.vocab[name].ids), np.asarray(dataset.vocab[name].counts)
        for start in range(0, dataset.num_rows, chunk_rows):
            stop = min(start + chunk_rows, dataset.num_rows)
            values = column.rows_between(start, stop, rows(start, stop))
            total += len(values)
            if not len(ids):
                unseen, rare = unseen + len(values), rare + len(values)
                continue
            position = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
            seen = ids[position] == values
            unseen += int((~seen).sum())
            rare += int((~seen | (counts[position] < min_count)).sum())
    return unseen / max(total, 1), rare / max(total, 1)


def vocabulary_metrics(dataset: PreparedDataset, full_threshold: int,
                       learned_min_count: int) -> dict[str, float]:
    """Per feature, `vocab.<feature>.ids` (its training vocabulary), `.learned` (ids seen at least
    `learned_min_count` times in training: what a learned map keeps) and `.full` (1 when it keeps
    a full table: vocabulary <= `full_threshold`), and `vocab.all.*` summed: the report's
    vocabulary table comes from these."""
    out: dict[str, float] = {}
    for name in dataset.feature_names:
        counts = np.asarray(dataset.vocab[name].counts)
        out |= {f"vocab.{name}.ids": float(len(counts)),
                f"vocab.{name}.learned": float(np.count_nonzero(counts >= learned_min_count)),
                f"vocab.{name}.full": float(len(counts) <= full_threshold)}
    for what in ("ids", "learned", "full"):
        out[f"vocab.all.{what}"] = float(sum(out[f"vocab.{n}.{what}"]
                                             for n in dataset.feature_names))
    return out


def unseen_rate(dataset: PreparedDataset) -> float:
    """Share of val + test values whose raw id never occurs in the training split."""
    return value_rates(dataset, lambda a, b: np.asarray(dataset.split[a:b]) != 0, 1)[0]


def window_metrics(dataset: PreparedDataset, windows: list[np.ndarray], probs: np.ndarray,
                   base_rate: float,
                   min_count: int) -> dict[str, float]:
    """window.<k>.* (k = 1 earliest): test metrics, rows, and unseen / rare value rates of each
    window."""
    test = dataset.split_indices("test")
    labels = np.asarray(dataset.labels)[test]
    out: dict[str, float] = {}
    for k, positions in enumerate(windows, start=1):
        mask = np.zeros(dataset.num_rows, dtype=bool)
        mask[test[positions]] = True
        unseen, rare = value_rates(dataset, lambda a, b, mask=mask: mask[a:b], min_count)
        window = {**score(labels[positions], probs[positions], base_rate, "test"),
                  "rows": float(len(positions)),
                  "unseen_value_rate": unseen, "rare_value_rate": rare,
                  "constant_test_logloss": metrics.logloss(labels[positions],
                                                           np.full(len(positions), base_rate))}
        out.update({f"window.{k}.{key}": value for key, value in window.items()})
    return out


def signal_metrics(dataset: PreparedDataset, test_logloss: float,
                   train_rate: float) -> dict[str, float]:
    """Bayes and constant-predictor test logloss (the constant: `train_rate`, the training
    split's click rate), and the share of learnable signal captured."""
    test = dataset.split_indices("test")
    labels = np.asarray(dataset.labels)[test]
    out = {"constant_test_logloss": metrics.logloss(labels, np.full(len(labels), train_rate))}
    if "true_prob" in dataset.extras:
        out["bayes_test_logloss"] = metrics.logloss(labels,
                                                    np.asarray(dataset.extras["true_prob"])[test])
        out["signal_captured"] = metrics.signal_captured(test_logloss, out["constant_test_logloss"],
                                                         out["bayes_test_logloss"])
    return out
