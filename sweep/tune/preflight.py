"""What a sweep checks before Ray starts, and the paths it records.

A grid that would fail trial after trial is refused now, with one error that names the cause:
- `check_grid`: every point's trial config is valid; the compressing strategies map at least
  one feature; every mapped feature's table suits its strategy; a small training split is
  said once, not in every trial;
- `absolute_paths`: every path of the config made absolute (the data source's path options
  come from its field metadata, `sweep.datasets.base.option`), so the recorded config means
  the same on a resume from another working directory.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from mappers import get_strategy
from sweep.config import SweepConfig
from sweep.datasets import SOURCES, PreparedDataset
from sweep.datasets.base import path_options
from sweep.errors import ConfigError
from sweep.trial import TrialConfig, eval_notes, kept_full, rows_at, small_data_note
from sweep.tune.trainable import trial_config_for

__all__ = ["absolute_paths", "check_grid", "check_storage_path", "compressing_strategies"]

log = logging.getLogger(__name__)


def compressing_strategies(config: SweepConfig) -> list[str]:
    """The grid's strategies that take a compression (all but `full`)."""
    return [s for s in config.grid.strategies if get_strategy(s).takes_compression]


def check_grid(config: SweepConfig, dataset: PreparedDataset, base: TrialConfig,
               points: list[dict], data_paths: Mapping[int, str] | None = None,
               warned: set[str] | None = None) -> None:
    """Refuse, before Ray starts, a grid whose trials could not run on `dataset` (see the module
    docstring); warn once about what every trial would warn about (once per sweep: a warning
    already in `warned`, from another seed's data, is not repeated)."""
    warned = set() if warned is None else warned
    for point in points:  # every point's config is valid
        trial_config_for(base, config, point, None, data_paths)
    _check_mapping(config, dataset, warned)
    _check_rows(config, dataset)
    num_train = int(dataset.manifest["split_sizes"]["train"])
    notes = [small_data_note(num_train, config.train.batch_size),
             *eval_notes(num_train, config.train)]
    for note in filter(None, notes):
        _warn_once(f"{note}, in every trial", warned)
    # refused now, naming the data, when its rows have no time order
    dataset.test_windows(config.test_windows)


def _warn_once(message: str, warned: set[str]) -> None:
    if message not in warned:
        warned.add(message)
        log.warning("%s", message)


def _check_mapping(config: SweepConfig, dataset: PreparedDataset, warned: set[str]) -> None:
    """Refuse a grid whose compressing strategies would map no feature (every trial would be the
    full model); warn, naming them, when some features keep a full table."""
    strategies = compressing_strategies(config)
    threshold = config.model.full_threshold
    full = kept_full(dataset, threshold)
    if not strategies or not full:
        return
    if len(full) == len(dataset.feature_names):
        largest = max(full, key=full.get)
        raise ConfigError(
            f"strategies {strategies} would map no feature: the largest train vocabulary is "
            f"{full[largest]} ({largest}), and features with vocab <= model.full_threshold "
            f"({threshold}) keep a full table, so every trial would train the full model. Lower it "
            f"below {full[largest]}, e.g. --set model.full_threshold={max(0, full[largest] // 4)}")
    _warn_once(f"{len(full)} of {len(dataset.feature_names)} features keep a full table in every "
               f"trial (train vocab <= model.full_threshold {threshold}): "
               + ", ".join(f"{name} ({size})" for name, size in full.items()), warned)


def _check_rows(config: SweepConfig, dataset: PreparedDataset) -> None:
    """Every mapped feature's table, rows = ceil(train vocab / compression), must suit its strategy
    (qr and double_hash need 2 rows or more): refused now, naming it, not in a failed trial."""
    mapped = {name: len(dataset.vocab[name].ids) for name in dataset.feature_names
              if name not in kept_full(dataset, config.model.full_threshold)}
    for strategy in compressing_strategies(config):
        bags = [name for name in mapped if dataset.sparse[name].multi_valued]
        if get_strategy(strategy).needs_single_valued and bags:
            raise ConfigError(f"strategy {strategy} needs single-valued features, and "
                              f"{', '.join(bags)} hold(s) bags of ids; leave {strategy} out of "
                              "grid.strategies for this data")
        params = dict(config.strategy_params.get(strategy, {}))
        trial = TrialConfig(data=".", strategy=strategy, mapper_params=params, model=config.model)
        for compression in config.grid.compressions:
            for name, vocab in mapped.items():
                rows = rows_at(vocab, compression)
                try:
                    trial.mapper(num_rows=rows)
                except ConfigError as exc:
                    raise ConfigError(
                        f"strategy {strategy} at compression {compression:g} gives feature {name} "
                        f"(train vocab {vocab}) {rows} row(s), which it refuses ({exc}); use "
                        "smaller compressions, or keep such features full with "
                        f"model.full_threshold >= {vocab}") from None


def check_storage_path(path: Path) -> None:
    """The storage path (Ray Tune's state, checkpoints, the journal) must be a directory collide
    can create and write: refused now, before Ray or MLflow hear of the sweep."""
    if path.exists() and not path.is_dir():
        raise ConfigError(f"storage_path {path} is not a directory: Ray Tune keeps the sweep's "
                          "state and checkpoints there; give a directory with --storage-path")
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".collide-write-check-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"storage_path {path} cannot be written ({exc.strerror or exc}); give a "
                          "writable directory with --storage-path") from None


def absolute_paths(config: SweepConfig, launch_dir: Path) -> SweepConfig:
    """Every path of the config made absolute against `launch_dir` (see the module docstring)."""
    def absolute(value: Any) -> Any:
        return str((launch_dir / value).resolve()) if isinstance(value, str) and value else value

    params = dict(config.data.params)
    for key in path_options(SOURCES[config.data.source].Config):
        if key in params:
            value = params[key]
            params[key] = ([absolute(v) for v in value] if isinstance(value, (list, tuple))
                           else absolute(value))
    data = replace(config.data, params=params, prepared_dir=absolute(config.data.prepared_dir))
    return replace(config, data=data, results_dir=absolute(config.results_dir),
                   storage_path=absolute(config.storage_path))
