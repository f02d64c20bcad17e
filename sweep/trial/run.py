"""One sweep point end to end: `run_trial(config) -> metrics`, with no Ray and no MLflow.

Steps: load the prepared data (memory-mapped); fit one mapper per feature on the train
vocabulary (`sweep.trial.mapping`); train the DLRM on the splits read a block of rows at a time,
each block's ids mapped as it is read (`sweep.trial.stream`); size it honestly; write the mapper
bundles and metrics.json. The Ray trainable in `sweep.tune` is a thin adapter
over this.

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
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np

from mappers import get_strategy, save_bundle, save_tables
from models import DLRM, NonFiniteLossError, TrainConfig, resolve_device, size_report, train
from sweep.datasets import PreparedDataset, load_prepared
from sweep.errors import ConfigError, DataError, UserError
from sweep.names import trial_name
from sweep.plain import plain
from sweep.trial.config import TrialConfig
from sweep.trial.diagnostics import (
    collisions,
    frequency_weighted_mean,
    signal_metrics,
    table_usage,
    unseen_rate,
    vocabulary_metrics,
    window_metrics,
)
from sweep.trial.encoding import fallback_counts, feature_specs, full_model_layout
from sweep.trial.mapping import (
    batch_size_for,
    eval_notes,
    fit_mappers,
    mapping_notes,
    small_data_note,
)
from sweep.trial.online import online_maps
from sweep.trial.precision import precision_metrics
from sweep.trial.probe_cache import probe_embeddings
from sweep.trial.probe_cache import probe_train_seconds as stored_probe_seconds
from sweep.trial.stream import PreparedBlocks, sample_for

__all__ = ["TrainingDivergedError", "bundle_dir_name", "feature_tables", "run_trial",
           "write_trial_outputs"]

log = logging.getLogger(__name__)


def run_trial(config: TrialConfig, *, dataset: PreparedDataset | None = None,
              probe: Mapping[str, np.ndarray] | None = None,
              on_epoch: Callable[[int, dict], None] | None = None,
              on_eval: Callable[[int, dict], None] | None = None,
              probe_train_seconds: float | None = None) -> dict:
    """Fit, train, evaluate and size one variant; returns a flat dict of metrics. `on_epoch`
    gets each epoch's entry, `on_eval` each evaluation within an epoch (train.eval_every_rows),
    both with the size metrics. `probe_train_seconds`: how long the `probe` handed in took to
    train (a sweep's driver knows); a probe the trial computes or reads from its cache brings
    its own."""
    started = time.perf_counter()
    for what, device in (("train.device", config.train.device),
                         ("probe.device", config.probe.device)):
        try:
            resolve_device(device)
        except ValueError as exc:  # cuda asked for on a machine without it
            raise ConfigError(f"{what}: {exc}") from None
    strategy = get_strategy(config.strategy)
    dataset = dataset if dataset is not None else load_prepared(config.data)
    # no time order: the error comes before any work
    windows = dataset.test_windows(config.test_windows)
    features_mapped, notes = mapping_notes(config, dataset)
    num_train = int(dataset.manifest["split_sizes"]["train"])
    batch_size = batch_size_for(num_train, config.train.batch_size)
    notes += filter(None, [small_data_note(num_train, config.train.batch_size)])
    notes += eval_notes(num_train, config.train)
    name = trial_name(config.strategy, config.compression, config.dim, config.seed, config.rows)
    for note in notes:
        log.warning("%s: %s", name, note)
    probe_started = time.perf_counter()
    # no mapped feature: no probe
    if strategy.needs_embeddings and probe is None and features_mapped:
        probe_config = config.probe
        if probe_config.num_threads is None:  # the probe runs with the trial's threads
            probe_config = replace(probe_config, num_threads=config.train.num_threads)
        probe = probe_embeddings(dataset, probe_config, config.seed, config.cache_dir)
        probe_train_seconds = stored_probe_seconds(dataset, probe_config, config.seed,
                                                   config.cache_dir)
    # ~0 when handed the probe (a sweep's trials)
    probe_seconds = time.perf_counter() - probe_started
    # what the trial's map cost before the trial: its probe's training (0 without a probe)
    probe_cost = (probe_train_seconds if strategy.needs_embeddings and features_mapped
                  else 0.0)
    fit_started = time.perf_counter()
    mappers = fit_mappers(config, dataset, probe)
    # values the hash fallback served; an unseen id under unseen="error" fails here, before
    # training (an online map, mch, has no such policy: it is counted once trained and frozen)
    fallback = None if strategy.online else fallback_counts(dataset, mappers)
    fit_seconds = time.perf_counter() - fit_started
    train_split, val_split, test_split = (PreparedBlocks(dataset, split, mappers)
                                          for split in ("train", "val", "test"))
    val_sample = None
    if config.train.eval_every_rows is not None:
        val_sample = PreparedBlocks(dataset, "val", mappers, sample_for(
            val_split.num_samples, config.train.eval_sample_rows, config.seed))
    num_dense = int(dataset.dense.shape[1])
    model_config = config.model.architecture(config.dim, num_dense,
                                             feature_specs(dataset, mappers, config.model.pooling))
    full_features, full_mapping_bytes = full_model_layout(dataset, config.model.pooling)
    full_total = size_report(config.model.architecture(config.dim, num_dense, full_features),
                             full_mapping_bytes).total_bytes
    sizes = size_report(model_config, sum(int(m.nbytes) for m in mappers.values()),
                        full_total_bytes=full_total)
    size_metrics = asdict(sizes)

    online = online_maps(model_config.features, mappers)  # mch: maps that move in training

    def report_epoch(epoch: int, entry: dict) -> None:
        if on_epoch is not None:
            on_epoch(epoch, {**entry, **size_metrics})

    def report_midway(epoch: int, entry: dict) -> None:
        if on_eval is not None:
            on_eval(epoch, {**entry, **size_metrics})

    try:
        result = train(model_config, replace(config.train, seed=config.seed, batch_size=batch_size),
                       train_split, val_split, test_split, on_epoch=report_epoch,
                       val_sample=val_sample, on_eval=report_midway, online=online)
    except NonFiniteLossError as exc:
        raise _diverged(config, dataset, exc) from None
    best = result.history[result.best_epoch - 1] if result.history else {}
    if fallback is None:  # the online maps are frozen now: what their fallback serves
        fallback = fallback_counts(dataset, mappers)
    per_feature = collisions(dataset, mappers)
    num_values = sum(len(dataset.sparse[n].values) for n in dataset.feature_names)
    out = {
        "strategy": config.strategy, "compression": config.compression, "rows": config.rows,
        "dim": config.dim, "seed": config.seed, "features_mapped": features_mapped,
        "batch_size": batch_size,
        "val_logloss": best.get("val_logloss", math.nan), "val_auc": best.get("val_auc", math.nan),
        "val_ne": best.get("val_ne", math.nan), "best_epoch": result.best_epoch,
        "epochs_run": len(result.history), "stopped_early": result.stopped_early,
        **(result.test_metrics or {}),
        **size_metrics,
        "collision_rate": frequency_weighted_mean(per_feature, dataset, "collision_rate"),
        "unseen_value_rate": unseen_rate(dataset),
        **vocabulary_metrics(dataset, config.model.full_threshold, config.model.learned_min_count),
        "fallback_value_rate": sum(fallback.values()) / max(num_values, 1),
        # the tables of the features this strategy maps (every feature when it maps none)
        **table_usage(per_feature, [n for n, m in mappers.items() if m.name == config.strategy]
                      or list(mappers)),
        # the mixed-dimension projections' share of embedding_bytes (0 for other strategies)
        "projection_bytes": 4 * sum(r * d for r, d in model_config.projection_shapes),
        **({} if online is None else {**online.metrics(),
                                       "mch.rows_reinitialised": result.rows_reinitialised}),
        "probe_seconds": probe_seconds,
        **({} if probe_cost is None else {"probe_train_seconds": probe_cost}),
        "fit_seconds": fit_seconds,
        "train_seconds": float(sum(h.get("epoch_seconds", 0.0) for h in result.history)),
        "total_seconds": time.perf_counter() - started,
    }
    if result.test_metrics:  # each precision's point (sweep.trial.precision)
        scoring = time.perf_counter()
        out.update(precision_metrics(result.model, model_config, config.precisions,
                                     {"val": val_split, "test": test_split}, result.base_rate,
                                     batch_size, sizes.mapping_bytes + sizes.dense_bytes,
                                     full_total))
        out["precision_seconds"] = time.perf_counter() - scoring
        out["total_seconds"] = time.perf_counter() - started
    for name, stats in per_feature.items():  # per-feature collision stats, e.g. collision.C3.nmi
        out.update({f"collision.{name}.{key}": value for key, value in stats.items()
                    if key in ("collision_rate", "rows_used", "max_ids_per_row", "purity", "nmi",
                               "unused_row_share")})
    if config.test_windows > 1 and result.test_probs is not None:
        out.update(window_metrics(dataset, windows, result.test_probs, result.base_rate,
                                  config.model.learned_min_count))
    if "test_logloss" in out:
        out.update(signal_metrics(dataset, out["test_logloss"], result.base_rate))
        out["worse_than_constant"] = float(out["test_logloss"] > out["constant_test_logloss"])
        if out["worse_than_constant"]:
            note = (f"test logloss {out['test_logloss']:.4f} is worse than the constant "
                    f"predictor's {out['constant_test_logloss']:.4f} (the train click rate): this "
                    "model learned nothing useful")
            log.warning("%s: %s", name, note)
            notes.append(note)
    out["notes"] = " | ".join(notes)
    details = {"config": plain(asdict(config)), "metrics": out, "history": result.history,
               "feature_order": dataset.feature_names,
               "dense_transforms": dataset.manifest.get("dense_transforms", []),
               "features": {n: {"strategy": mappers[n].name,
                                "table_sizes": list(mappers[n].table_sizes),
                                "bundle": f"bundles/{bundle_dir_name(i, n)}",
                                **({"tables": f"tables/{bundle_dir_name(i, n)}"}
                                   if config.save_tables else {}),
                                "nbytes": int(mappers[n].nbytes),
                                # mixed_dim: its blocks' (rows, dim) and projections' bytes
                                **({"blocks": [list(b) for b in mappers[n].blocks],
                                    "projection_bytes": 4 * config.dim * sum(
                                        d for _, d in mappers[n].blocks[1:])}
                                   if mappers[n].combine == "mixed" else {}),
                                "vocab_size": int(len(dataset.vocab[n].ids)),
                                "encoding": entry.get("encoding"),
                                "fallback_values": fallback[n], "collisions": per_feature[n]}
                            for i, (n, entry) in enumerate(zip(dataset.feature_names,
                                                               dataset.manifest["features"],
                                                               strict=True))}}
    if config.out_dir is not None:
        write_trial_outputs(Path(config.out_dir), mappers, details,
                            feature_tables(result.model) if config.save_tables else {})
    return out


class TrainingDivergedError(UserError):
    """Training produced NaN or inf: the options (a learning rate too high) or the data."""


def _diverged(config: TrialConfig, dataset: PreparedDataset, exc: NonFiniteLossError) -> UserError:
    """What to tell the user when the loss went NaN or inf: the data's first non-finite dense
    value (DataError), else the epoch and step, the learning rates, and what to try."""
    bad = dataset.first_non_finite_dense()
    if bad is not None:
        row, column, value = bad
        names = dataset.manifest.get("dense", [])
        name = names[column] if column < len(names) else str(column)
        return DataError(f"{dataset.path / 'dense.npy'}: row {row}, dense column {name!r} holds "
                         f"{value}: prepared data must be finite (prepare it again from its "
                         "source)")
    lr = config.train.lr
    tables = config.train.embedding_lr if config.train.embedding_lr is not None else lr
    default = next(f.default for f in fields(TrainConfig) if f.name == "lr")
    return TrainingDivergedError(f"{exc}. The MLPs trained with lr {lr:g} and the tables with "
                                 f"{tables:g}: try a lower lr (--lr; the default is {default:g})")


def bundle_dir_name(index: int, feature: str) -> str:
    return f"{index:02d}-{re.sub(r'[^A-Za-z0-9_.-]', '_', feature)}"


def feature_tables(model: DLRM) -> dict[str, tuple[list[np.ndarray], list[np.ndarray]]]:
    """Each feature's trained tables as stored (float32, on the CPU; a mixed feature's blocks at
    their own dims) and its projections (mixed features only), by feature name, in the order of
    `config.stored_shapes`. On the CPU they are views of the model's weights, not copies: write
    them before the model changes."""
    config = model.config
    stored = iter(model.sparse_arch.stored_tables())
    projections = iter(model.sparse_arch.projections())
    out = {}
    for f in config.features:
        count = len(f.blocks) if f.combine == "mixed" else len(f.table_sizes)
        tables = [next(stored).detach().cpu().numpy() for _ in range(count)]
        projected = [next(projections).detach().cpu().numpy() for _ in f.blocks[1:]]
        out[f.name] = (tables, projected)
    return out


def write_trial_outputs(out_dir: Path, mappers: Mapping, details: dict,
                        tables: Mapping[str, tuple[list[np.ndarray], list[np.ndarray]]]) -> None:
    """Per feature bundles/<NN-feature>/ (its map) and, where `details` names them,
    tables/<NN-feature>/ (its trained tables at fp32 and any projections, mappers.save_tables),
    plus metrics.json (config, metrics, history, per-feature facts)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in details["feature_order"]:
        save_bundle(mappers[name], out_dir / details["features"][name]["bundle"])
        if "tables" in details["features"][name]:
            stored, projections = tables[name]
            save_tables(stored, "fp32", name, out_dir / details["features"][name]["tables"],
                        projections=projections)
    (out_dir / "metrics.json").write_text(json.dumps(plain(details), indent=2, sort_keys=True))

