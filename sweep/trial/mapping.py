"""Which features a trial maps, with how many rows, and the fitted mappers; the batch size.

A feature whose train vocabulary is at most `model.full_threshold` keeps a full table, and so
does every feature under a strategy that takes no compression (`full`). Nothing is a silent
no-op: `mapping_notes` says which features kept a full table and why, and `small_data_note`
says when the batch size was lowered for a small training split.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from mappers import FullMapper, Mapper, get_strategy
from models import TrainConfig, evaluations_per_epoch
from sweep.datasets import PreparedDataset
from sweep.errors import ConfigError
from sweep.trial.config import TrialConfig

__all__ = [
    "MIN_BATCH_SIZE",
    "MIN_STEPS_PER_EPOCH",
    "batch_size_for",
    "fit_mappers",
    "kept_full",
    "mapping_notes",
    "rows_at",
    "small_data_note",
]

# Small data: the batch size is lowered so that an epoch has about MIN_STEPS_PER_EPOCH steps
# (a power of two, at least MIN_BATCH_SIZE, never above the requested size).
MIN_STEPS_PER_EPOCH = 16
MIN_BATCH_SIZE = 16


def rows_at(vocab_size: int, compression: float) -> int:
    """Rows of a feature's table at `compression`: ceil(train vocab / compression), at least 1."""
    return max(1, math.ceil(vocab_size / compression))


def kept_full(dataset: PreparedDataset, full_threshold: int) -> dict[str, int]:
    """{feature: train vocab size} of the features that keep a full table (vocab <=
    full_threshold)."""
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
    return (f"small training split: {num_train} rows are fewer than {MIN_STEPS_PER_EPOCH} batches "
            f"of {requested}; training with batch size {batch_size} "
            f"({math.ceil(num_train / batch_size)} steps per epoch)")


def eval_notes(num_train: int, train: TrainConfig) -> list[str]:
    """Warnings for evaluation options that have no effect on `num_train` training rows."""
    every, default = train.eval_every_rows, TrainConfig.__dataclass_fields__["eval_sample_rows"]
    if every is None:
        return ([f"train.eval_sample_rows {train.eval_sample_rows} has no effect: it sizes the "
                 "validation sample of train.eval_every_rows, which is not set"]
                if train.eval_sample_rows != default.default else [])
    if evaluations_per_epoch(num_train, every) == 0:
        return [f"train.eval_every_rows {every} has no effect: an epoch has {num_train} training "
                "rows, so validation is scored once per epoch, at its end"]
    return []


def mapping_notes(config: TrialConfig, dataset: PreparedDataset) -> tuple[int, list[str]]:
    """(features_mapped, warnings) of the trial's strategy on this dataset."""
    if not get_strategy(config.strategy).takes_compression:
        return 0, []
    threshold = config.model.full_threshold
    full = kept_full(dataset, threshold)
    mapped = len(dataset.feature_names) - len(full)
    listed = ", ".join(f"{name} ({size})" for name, size in full.items())
    if mapped == 0:
        largest = max(full, key=full.get)
        return 0, [f"strategy {config.strategy} maps no feature: every train vocabulary is <= "
                   f"full_threshold {threshold} (largest: {largest}, {full[largest]}), so this "
                   "trial is the full model; lower full_threshold to compress these features"]
    if full:
        return mapped, [f"strategy {config.strategy} maps {mapped} of {len(dataset.feature_names)} "
                        f"features; kept full (train vocab <= full_threshold {threshold}): "
                        f"{listed}"]
    return mapped, []


def fit_mappers(config: TrialConfig, dataset: PreparedDataset,
                probe: Mapping[str, np.ndarray] | None) -> dict[str, Mapper]:
    """One mapper per feature, fitted on its train vocabulary; small vocabularies (and a strategy
    that takes no compression) keep a full table. `probe`: the embeddings a learned map needs."""
    strategy = get_strategy(config.strategy)
    full = kept_full(dataset, config.model.full_threshold) if strategy.takes_compression else {}
    fitted: dict[str, Mapper] = {}
    for name in dataset.feature_names:
        vocab = dataset.vocab[name]
        ids, counts = np.asarray(vocab.ids), np.asarray(vocab.counts)
        if name in full:
            fitted[name] = FullMapper().fit(ids, counts)
            continue
        rows = config.rows if config.rows is not None else \
            rows_at(len(ids), config.compression) if strategy.takes_compression else 0
        try:
            mapper = config.mapper(num_rows=rows)
        except ConfigError as exc:
            raise ConfigError(f"feature {name} (train vocab {len(ids)}, {rows} rows): "
                              f"{exc}") from None
        embeddings = probe[name] if strategy.needs_embeddings else None
        fitted[name] = mapper.fit(ids, counts, embeddings=embeddings)
    return fitted
