"""One sweep point end to end: `run_trial(config) -> metrics`, with no Ray and no MLflow.

Steps: load the prepared data; fit one mapper per feature on the train vocabulary (rows =
ceil(vocab / compression), or explicit rows; features with vocab <= full_threshold stay
`full`); transform every id once; train the DLRM; size it honestly; write the mapper
bundles and metrics.json. The Ray trainable in `sweep.tune` is a thin adapter over this.

Nothing is silently a no-op: `features_mapped` counts the features the strategy really
mapped, and a warning (also in the metrics' `notes`) names the features kept full and why,
a batch size lowered for a small training split (`batch_size_for`), and a test logloss worse
than the constant predictor's (`worse_than_constant`).

`test_windows` K > 1 (time-ordered data only, `PreparedDataset.test_windows`) also scores the
one test prediction on K consecutive time windows of the test split: `window.<k>.*`, with each
window's share of unseen and rare values, for the staleness study (sweep.frontier.staleness).
"""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from mappers import MAPPERS, collision_stats, get_mapper, save_bundle
from models import (
    DLRMConfig,
    FeatureSpec,
    ProbeConfig,
    TrainConfig,
    metrics,
    score,
    size_report,
    train,
)
from sweep.datasets import PreparedDataset, load_prepared
from sweep.encoding import encode_splits, feature_specs, full_model_layout, transform_columns
from sweep.names import configuration_name, trial_name
from sweep.plain import plain
from sweep.probe_cache import probe_embeddings

__all__ = ["FULL_THRESHOLD", "LEARNED", "TrialConfig", "batch_size_for", "check_test_windows", "configuration_name", "kept_full", "rows_at", "run_trial",
           "small_data_note", "trial_name"]

log = logging.getLogger(__name__)

LEARNED = ("embedding", "frequency_embedding")  # strategies that need the probe
# Features with a train vocabulary <= this keep a full table: at dim 16 such a table is at most
# 1 KiB, and hashing it saves next to nothing while merging its few, usually informative values
# (measured in results/README.md, "full_threshold").
FULL_THRESHOLD = 16
# Small data: the batch size is lowered so that an epoch has about MIN_STEPS_PER_EPOCH steps
# (a power of two, at least MIN_BATCH_SIZE, never above the requested size).
MIN_STEPS_PER_EPOCH = 16
MIN_BATCH_SIZE = 16
LEARNED_MIN_COUNT_WHY = """\
The probe is trained on the training labels. A rare id's probe embedding memorises its few
labels, so clustering rare ids by it groups them by label noise: training loss drops below
the Bayes loss while validation loss rises (label leakage through the mapping). On the
default synthetic data at compression 16, clustering every id gave test logloss 0.561
against 0.513 for `hash`; hashing ids seen < 20 times gave 0.499 (results/README.md)."""


@dataclass(frozen=True)
class TrialConfig:
    data: str  # absolute path of a prepared dataset (collide prepare --out)
    strategy: str = "hash"  # a key of mappers.MAPPERS
    compression: float | None = 16.0  # rows per feature = ceil(vocab / compression)
    rows: int | None = None  # explicit rows per feature instead of compression
    dim: int = 16  # embedding dim D
    seed: int = 0  # mapper, model init, shuffling and probe seed
    mapper_params: Mapping[str, Any] = field(default_factory=dict)  # strategy params, e.g. hot_fraction
    full_threshold: int = FULL_THRESHOLD  # features with vocab <= this stay `full`
    learned_min_count: int = 20  # embedding strategies hash ids seen fewer times (see LEARNED_MIN_COUNT_WHY)
    test_windows: int = 1  # > 1: also test metrics per time window of the test split (staleness)
    bottom_mlp: tuple[int, ...] = (64, 32)
    top_mlp: tuple[int, ...] = (64, 32)
    interaction: str = "dot"
    pooling: str = "sum"  # pooling of multi-valued features
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    cache_dir: str = ".collide/probes"  # where probe embeddings are cached
    out_dir: str | None = None  # bundles + metrics.json; None: write nothing

    def __post_init__(self) -> None:
        if self.strategy not in MAPPERS:
            raise ValueError(f"strategy must be one of {sorted(MAPPERS)}, got {self.strategy!r}")
        if (self.compression is None) == (self.rows is None) and self.strategy != "full":
            raise ValueError(
                f"give exactly one of compression or rows, got compression={self.compression}, rows={self.rows}"
            )
        if self.compression is not None and not (self.compression >= 1):
            raise ValueError(f"compression must be >= 1, got {self.compression}")
        if self.rows is not None and self.rows < 1:
            raise ValueError(f"rows must be >= 1, got {self.rows}")
        if self.dim < 1:
            raise ValueError(f"dim must be >= 1, got {self.dim}")
        if self.full_threshold < 0:
            raise ValueError(f"full_threshold must be >= 0, got {self.full_threshold}")
        if self.learned_min_count < 1:
            raise ValueError(f"learned_min_count must be >= 1, got {self.learned_min_count}")
        check_test_windows(self.test_windows)
        # Bad mapper params fail here, before any data is read or a Ray trial starts.
        if self.strategy != "full":
            get_mapper(self.strategy, num_rows=64, seed=self.seed, **dict(self.mapper_params))
        # Model options are checked on a two-feature stand-in of the real architecture.
        stand_in = (FeatureSpec("a", (2,)), FeatureSpec("b", (2,)))
        DLRMConfig(num_dense=1, features=stand_in, embedding_dim=self.dim, bottom_mlp=tuple(self.bottom_mlp),
                   top_mlp=tuple(self.top_mlp), interaction=self.interaction)


def check_test_windows(value: object) -> None:
    """test_windows must be a whole number of windows, at least 1 (1: the test split as one)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"test_windows must be an int >= 1, got {value!r}")


def _rows_for(config: TrialConfig, vocab_size: int) -> int:
    return config.rows if config.rows is not None else rows_at(vocab_size, config.compression)


def rows_at(vocab_size: int, compression: float) -> int:
    """Rows of a feature's table at `compression`: ceil(train vocab / compression), at least 1."""
    return max(1, math.ceil(vocab_size / compression))


def kept_full(dataset: PreparedDataset, full_threshold: int) -> dict[str, int]:
    """{feature: train vocab size} of the features that keep a full table (vocab <= full_threshold)."""
    sizes = {name: int(len(dataset.vocab[name].ids)) for name in dataset.feature_names}
    return {name: size for name, size in sizes.items() if size <= full_threshold}


def batch_size_for(num_train: int, requested: int) -> int:
    """The batch size for a training split of `num_train` rows: `requested`, or smaller when the
    split holds fewer than MIN_STEPS_PER_EPOCH batches of it (the largest power of two giving at
    least that many steps, but at least MIN_BATCH_SIZE)."""
    if num_train >= MIN_STEPS_PER_EPOCH * requested:
        return requested
    power = 1 << max(0, int(num_train // MIN_STEPS_PER_EPOCH).bit_length() - 1)
    return min(requested, max(MIN_BATCH_SIZE, power))


def small_data_note(num_train: int, requested: int) -> str | None:
    """The warning when `batch_size_for` lowers the requested batch size, else None."""
    batch_size = batch_size_for(num_train, requested)
    if batch_size == requested:
        return None
    return (f"small training split: {num_train} rows are fewer than {MIN_STEPS_PER_EPOCH} batches of {requested}; "
            f"training with batch size {batch_size} ({math.ceil(num_train / batch_size)} steps per epoch)")


def _mapping_notes(config: TrialConfig, dataset: PreparedDataset) -> tuple[int, list[str]]:
    """(features_mapped, warnings) of the trial's strategy on this dataset."""
    if config.strategy == "full":
        return 0, []
    full = kept_full(dataset, config.full_threshold)
    mapped = len(dataset.feature_names) - len(full)
    listed = ", ".join(f"{name} ({size})" for name, size in full.items())
    if mapped == 0:
        largest = max(full, key=full.get)
        return 0, [f"strategy {config.strategy} maps no feature: every train vocabulary is <= full_threshold "
                   f"{config.full_threshold} (largest: {largest}, {full[largest]}), so this trial is the full "
                   "model; lower full_threshold to compress these features"]
    if full:
        return mapped, [f"strategy {config.strategy} maps {mapped} of {len(dataset.feature_names)} features; "
                        f"kept full (train vocab <= full_threshold {config.full_threshold}): {listed}"]
    return mapped, []


def fit_mappers(config: TrialConfig, dataset: PreparedDataset,
                probe: Mapping[str, np.ndarray] | None) -> dict:
    """One fitted mapper per feature; small vocabularies (and strategy `full`) stay full."""
    fitted = {}
    full = kept_full(dataset, config.full_threshold)
    for name in dataset.feature_names:
        vocab = dataset.vocab[name]
        ids, counts = np.asarray(vocab.ids), np.asarray(vocab.counts)
        if config.strategy == "full" or name in full:
            fitted[name] = get_mapper("full").fit(ids, counts)
            continue
        params = dict(config.mapper_params)
        if config.strategy in LEARNED:
            params.setdefault("min_count", config.learned_min_count)
        mapper = get_mapper(config.strategy, num_rows=_rows_for(config, len(ids)), seed=config.seed, **params)
        embeddings = probe[name] if config.strategy in LEARNED else None
        fitted[name] = mapper.fit(ids, counts, embeddings=embeddings)
    return fitted


def _mapping_bytes(mappers: Mapping) -> int:
    return int(sum(m.nbytes for m in mappers.values()))


def _model_config(config: TrialConfig, dataset: PreparedDataset, features: tuple) -> DLRMConfig:
    return DLRMConfig(num_dense=int(dataset.dense.shape[1]), features=features, embedding_dim=config.dim,
                      bottom_mlp=tuple(config.bottom_mlp), top_mlp=tuple(config.top_mlp),
                      interaction=config.interaction)


def _collisions(dataset: PreparedDataset, mappers: Mapping) -> dict[str, dict]:
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
        stats[name] = collision_stats(mapper.transform(ids), ids, counts, clusters=clusters)
    return stats


def _frequency_weighted_mean(per_feature: Mapping[str, dict], dataset: PreparedDataset, key: str) -> float:
    weights = {n: float(np.asarray(dataset.vocab[n].counts).sum()) for n in per_feature}
    total = sum(weights.values())
    return float(sum(per_feature[n][key] * weights[n] for n in per_feature) / total) if total else 0.0


def _value_rates(dataset: PreparedDataset, rows: np.ndarray, min_count: int) -> tuple[float, float]:
    """(unseen, rare) over the values of `rows` (a boolean row mask): the share whose raw id never
    occurs in the training split, and the share seen there fewer than `min_count` times (unseen
    included: the ids a learned map hashes)."""
    unseen = rare = total = 0
    for name in dataset.feature_names:
        values = dataset.sparse[name].rows_of(rows)
        ids, counts = np.asarray(dataset.vocab[name].ids), np.asarray(dataset.vocab[name].counts)
        if not len(ids):
            unseen, rare, total = unseen + len(values), rare + len(values), total + len(values)
            continue
        position = np.minimum(np.searchsorted(ids, values), len(ids) - 1)
        seen = ids[position] == values
        unseen += int((~seen).sum())
        rare += int((~seen | (counts[position] < min_count)).sum())
        total += len(values)
    return unseen / max(total, 1), rare / max(total, 1)


def _unseen_rate(dataset: PreparedDataset) -> float:
    """Share of val + test values whose raw id never occurs in the training split."""
    return _value_rates(dataset, np.asarray(dataset.split) != 0, 1)[0]


def _window_metrics(dataset: PreparedDataset, windows: list[np.ndarray], probs: np.ndarray, base_rate: float,
                    min_count: int) -> dict[str, float]:
    """window.<k>.* (k = 1 earliest): test metrics, rows, and unseen / rare value rates of each window."""
    test = dataset.split_indices("test")
    labels = np.asarray(dataset.labels)[test]
    out: dict[str, float] = {}
    for k, positions in enumerate(windows, start=1):
        mask = np.zeros(dataset.num_rows, dtype=bool)
        mask[test[positions]] = True
        unseen, rare = _value_rates(dataset, mask, min_count)
        window = {**score(labels[positions], probs[positions], base_rate, "test"), "rows": float(len(positions)),
                  "unseen_value_rate": unseen, "rare_value_rate": rare,
                  "constant_test_logloss": metrics.logloss(labels[positions], np.full(len(positions), base_rate))}
        out.update({f"window.{k}.{key}": value for key, value in window.items()})
    return out


def _signal(dataset: PreparedDataset, test_logloss: float) -> dict[str, float]:
    """Bayes and constant-predictor test logloss, and the share of learnable signal captured."""
    test = dataset.split_indices("test")
    labels = np.asarray(dataset.labels)[test]
    rate = float(np.asarray(dataset.labels)[dataset.split_indices("train")].mean())
    out = {"constant_test_logloss": metrics.logloss(labels, np.full(len(labels), rate))}
    if "true_prob" in dataset.extras:
        out["bayes_test_logloss"] = metrics.logloss(labels, np.asarray(dataset.extras["true_prob"])[test])
        out["signal_captured"] = metrics.signal_captured(test_logloss, out["constant_test_logloss"],
                                                         out["bayes_test_logloss"])
    return out


def run_trial(config: TrialConfig, *, dataset: PreparedDataset | None = None,
              probe: Mapping[str, np.ndarray] | None = None,
              on_epoch: Callable[[int, dict], None] | None = None) -> dict:
    """Fit, train, evaluate and size one variant; returns a flat dict of metrics."""
    started = time.perf_counter()
    dataset = dataset if dataset is not None else load_prepared(config.data)
    windows = dataset.test_windows(config.test_windows)  # no time order: the error comes before any work
    features_mapped, notes = _mapping_notes(config, dataset)
    num_train = int(dataset.manifest["split_sizes"]["train"])
    batch_size = batch_size_for(num_train, config.train.batch_size)
    notes += filter(None, [small_data_note(num_train, config.train.batch_size)])
    name = trial_name(config.strategy, config.compression, config.dim, config.seed, config.rows)
    for note in notes:
        log.warning("%s: %s", name, note)
    probe_started = time.perf_counter()
    if config.strategy in LEARNED and probe is None and features_mapped:  # no mapped feature: no probe
        probe_config = config.probe
        if probe_config.num_threads is None:  # the probe runs with the trial's threads
            probe_config = replace(probe_config, num_threads=config.train.num_threads)
        probe = probe_embeddings(dataset, probe_config, config.seed, config.cache_dir)
    probe_seconds = time.perf_counter() - probe_started  # ~0 when handed the probe (a sweep's trials)
    fit_started = time.perf_counter()
    mappers = fit_mappers(config, dataset, probe)
    columns = transform_columns(dataset, mappers)
    fallback = {name: int(m.num_unseen_) for name, m in mappers.items()}  # values the hash fallback served
    fit_seconds = time.perf_counter() - fit_started
    train_split, val_split, test_split = encode_splits(dataset, columns)
    model_config = _model_config(config, dataset, feature_specs(dataset, mappers, config.pooling))
    full_features, full_mapping_bytes = full_model_layout(dataset, config.pooling)
    full_total = size_report(_model_config(config, dataset, full_features), full_mapping_bytes).total_bytes
    sizes = size_report(model_config, _mapping_bytes(mappers), full_total_bytes=full_total)
    size_metrics = asdict(sizes)

    def report_epoch(epoch: int, entry: dict) -> None:
        if on_epoch is not None:
            on_epoch(epoch, {**entry, **size_metrics})

    result = train(model_config, replace(config.train, seed=config.seed, batch_size=batch_size), train_split,
                   val_split, test_split, on_epoch=report_epoch)
    best = result.history[result.best_epoch - 1] if result.history else {}
    per_feature = _collisions(dataset, mappers)
    num_values = sum(len(dataset.sparse[n].values) for n in dataset.feature_names)
    out = {
        "strategy": config.strategy, "compression": config.compression, "rows": config.rows,
        "dim": config.dim, "seed": config.seed, "features_mapped": features_mapped, "batch_size": batch_size,
        "val_logloss": best.get("val_logloss", math.nan), "val_auc": best.get("val_auc", math.nan),
        "val_ne": best.get("val_ne", math.nan), "best_epoch": result.best_epoch,
        "epochs_run": len(result.history), "stopped_early": result.stopped_early,
        **(result.test_metrics or {}),
        **size_metrics,
        "collision_rate": _frequency_weighted_mean(per_feature, dataset, "collision_rate"),
        "unseen_value_rate": _unseen_rate(dataset),
        "fallback_value_rate": sum(fallback.values()) / max(num_values, 1),
        "probe_seconds": probe_seconds,
        "fit_seconds": fit_seconds,
        "train_seconds": float(sum(h.get("epoch_seconds", 0.0) for h in result.history)),
        "total_seconds": time.perf_counter() - started,
    }
    for name, stats in per_feature.items():  # per-feature collision stats, e.g. collision.C3.nmi
        out.update({f"collision.{name}.{key}": value for key, value in stats.items()
                    if key in ("collision_rate", "rows_used", "max_ids_per_row", "purity", "nmi")})
    if config.test_windows > 1 and result.test_probs is not None:
        out.update(_window_metrics(dataset, windows, result.test_probs, result.base_rate, config.learned_min_count))
    if "test_logloss" in out:
        out.update(_signal(dataset, out["test_logloss"]))
        out["worse_than_constant"] = float(out["test_logloss"] > out["constant_test_logloss"])
        if out["worse_than_constant"]:
            note = (f"test logloss {out['test_logloss']:.4f} is worse than the constant predictor's "
                    f"{out['constant_test_logloss']:.4f} (the train click rate): this model learned nothing useful")
            log.warning("%s: %s", name, note)
            notes.append(note)
    out["notes"] = " | ".join(notes)
    details = {"config": plain(asdict(config)), "metrics": out, "history": result.history,
               "feature_order": dataset.feature_names,
               "dense_transforms": dataset.manifest.get("dense_transforms", []),
               "features": {n: {"strategy": mappers[n].name, "table_sizes": list(mappers[n].table_sizes),
                                "bundle": f"bundles/{bundle_dir_name(i, n)}",
                                "nbytes": int(mappers[n].nbytes), "vocab_size": int(len(dataset.vocab[n].ids)),
                                "fallback_values": fallback[n], "collisions": per_feature[n]}
                            for i, n in enumerate(dataset.feature_names)}}
    if config.out_dir is not None:
        write_trial_outputs(Path(config.out_dir), mappers, details)
    return out


def bundle_dir_name(index: int, feature: str) -> str:
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', feature)}"


def write_trial_outputs(out_dir: Path, mappers: Mapping, details: dict) -> None:
    """bundles/<NN-feature>/ per feature, plus metrics.json (config, metrics, history, per-feature facts)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in details["feature_order"]:
        save_bundle(mappers[name], out_dir / details["features"][name]["bundle"])
    (out_dir / "metrics.json").write_text(json.dumps(plain(details), indent=2, sort_keys=True))

