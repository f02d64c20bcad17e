"""Sweep configuration: YAML (or a shipped preset) -> frozen dataclasses, validated before Ray
starts.

Every section is a frozen dataclass; an unknown key or a bad value raises `ConfigError`
naming the key path (e.g. `grid.compressions`), so a typo never reaches a Ray trial.
`asdict(SweepConfig)` is what the MLflow parent run records.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from mappers import MAPPERS
from models import ProbeConfig, TrainConfig
from sweep.datasets import SOURCES
from sweep.errors import ConfigError
from sweep.plain import plain
from sweep.trial import ModelConfig, check_test_windows
from sweep.trial.precision import PRECISIONS, check_precisions

__all__ = [
    "PRESETS",
    "ConfigError",
    "DataConfig",
    "GridConfig",
    "ModelConfig",
    "ResourcesConfig",
    "SweepConfig",
    "config_record",
    "load_config",
    "load_preset",
]



def _shipped_presets() -> tuple[str, ...]:
    """The presets shipped in the package (`sweep/presets/*.yaml`): the quick ones first, then by
    name."""
    names = sorted(path.name.removesuffix(".yaml")
                   for path in resources.files("sweep.presets").iterdir()
                   if path.name.endswith(".yaml"))
    first = [name for name in ("smoke", "quick") if name in names]
    return tuple(first + [name for name in names if name not in first])


PRESETS = _shipped_presets()
SEARCHES = ("grid", "optuna")
SCHEDULERS = ("none", "asha")


@dataclass(frozen=True)
class DataConfig:
    source: str = "synthetic"  # a key of sweep.datasets.SOURCES
    # the source's options (collide datasets)
    params: Mapping[str, Any] = field(default_factory=dict)
    prepared_dir: str | None = None  # where to prepare; None: .collide/prepared/SOURCE-FINGERPRINT
    # the trial seed also seeds the source (params.seed + seed): the synthetic generator, or a
    # file's random split; seeds then replicate the data too (sweep.tune.sweep_data)
    vary_with_seed: bool = False

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ConfigError(f"source must be one of {sorted(SOURCES)}, got {self.source!r}")
        if not isinstance(self.vary_with_seed, bool):
            raise ConfigError(f"vary_with_seed must be true or false, got {self.vary_with_seed!r}")
        required = [f.name for f in dataclasses.fields(SOURCES[self.source].Config)
                    if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING]
        missing = [name for name in required if name not in self.params]
        if missing:
            raise ConfigError(f"params.{missing[0]} is required for source {self.source!r} "
                              "(on the command line: --data-path)")
        # the source validates its own options
        source = SOURCES[self.source].from_params(**dict(self.params))
        if self.vary_with_seed and not source.seed_generates_data \
                and source.split_spec().kind != "random":
            raise ConfigError(
                f"vary_with_seed has nothing to vary for source {self.source!r}: its seed draws "
                f"only a random split, and its split is "
                f"{getattr(source.config, 'split', source.split_spec().kind)!r}. Use "
                "split: random (each seed then trains and tests on its own random split) or "
                "leave vary_with_seed off")


@dataclass(frozen=True)
class GridConfig:
    strategies: tuple[str, ...] = tuple(MAPPERS)  # mapping strategies
    compressions: tuple[float, ...] = (4.0, 16.0, 64.0)  # rows = ceil(vocab / compression)
    dims: tuple[int, ...] = (8, 16)  # embedding dims
    seeds: tuple[int, ...] = (0,)  # seeds (mapper, model, probe)
    # each trial is also scored at these table precisions: a frontier point each, no training
    precisions: tuple[str, ...] = PRECISIONS

    def __post_init__(self) -> None:
        for name in ("strategies", "compressions", "dims", "seeds"):
            if not getattr(self, name):
                raise ConfigError(f"{name} must not be empty")
        try:
            object.__setattr__(self, "precisions", check_precisions(self.precisions,
                                                                    "grid.precisions"))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
        unknown = [s for s in self.strategies if s not in MAPPERS]
        if unknown:
            raise ConfigError(f"strategies {unknown} are unknown; valid: {sorted(MAPPERS)}")
        if any(c < 1 for c in self.compressions):
            raise ConfigError(f"compressions must all be >= 1, got {list(self.compressions)}")
        if any(d < 1 for d in self.dims):
            raise ConfigError(f"dims must all be >= 1, got {list(self.dims)}")


@dataclass(frozen=True)
class ResourcesConfig:
    cpus_per_trial: float = 1.0  # also the trial's torch threads
    gpus_per_trial: float = 0.0  # a fraction shares one GPU between trials
    max_concurrent_trials: int | None = None  # None: as many as the resources allow
    num_cpus: int | None = None  # local ray.init only; None: all cores

    def __post_init__(self) -> None:
        if self.cpus_per_trial <= 0:
            raise ConfigError(f"cpus_per_trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise ConfigError(f"gpus_per_trial must be >= 0, got {self.gpus_per_trial}")


@dataclass(frozen=True)
class SweepConfig:
    name: str = "collide"  # MLflow experiment and Ray Tune run name
    data: DataConfig = field(default_factory=DataConfig)
    grid: GridConfig = field(default_factory=GridConfig)
    # per-strategy mapper params
    strategy_params: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    search: str = "grid"  # "grid" | "optuna" (multi-objective: val_logloss, total_bytes)
    # optuna only: configurations to sample, each run once per seed (None: 6)
    num_samples: int | None = None
    scheduler: str = "none"  # "none" | "asha" (single objective val_logloss; grid search only)
    resources: ResourcesConfig = field(default_factory=ResourcesConfig)
    address: str | None = None  # Ray cluster address; None: RAY_ADDRESS or a local Ray
    tracking_uri: str | None = None  # None: MLFLOW_TRACKING_URI or sqlite:///<launch dir>/mlflow.db
    storage_path: str | None = None  # Ray Tune results; None: <launch dir>/.collide/ray_results
    results_dir: str | None = None  # also write pareto.csv/png/md and pareto-trials.csv here
    # > 1: test metrics per consecutive time window of the test split (staleness)
    test_windows: int = 1
    # retry a failed MLflow write this long before storing it for `collide sync`
    tracking_retry_s: float = 60.0
    # each trial logs its trained tables (fp32) for `collide export`; false: maps and metrics only
    save_tables: bool = True

    @property
    def samples(self) -> int:
        """Configurations (strategy x compression x dim) the optuna search samples; each runs once
        per seed."""
        return self.num_samples if self.num_samples is not None else 6

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name:
            raise ConfigError(f"name must be a non-empty string without '/', got {self.name!r}")
        if self.search not in SEARCHES:
            raise ConfigError(f"search must be one of {SEARCHES}, got {self.search!r}")
        if self.scheduler not in SCHEDULERS:
            raise ConfigError(f"scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.scheduler == "asha" and self.search == "optuna":
            raise ConfigError("scheduler 'asha' is single-objective; it cannot run with the "
                              "multi-objective optuna search")
        if not self.tracking_retry_s >= 0:
            raise ConfigError(f"tracking_retry_s must be >= 0 seconds, got {self.tracking_retry_s}")
        if self.num_samples is not None and self.search != "optuna":
            raise ConfigError("num_samples applies to search 'optuna' only; the grid runs every "
                              f"point once (got num_samples={self.num_samples} with search "
                              f"{self.search!r})")
        if not isinstance(self.save_tables, bool):
            raise ConfigError(f"save_tables must be true or false, got {self.save_tables!r}")
        check_test_windows(self.test_windows)
        if self.num_samples is not None and self.num_samples < 1:
            raise ConfigError(f"num_samples must be >= 1, got {self.num_samples}")
        unknown = sorted(set(self.strategy_params) - set(MAPPERS))
        if unknown:
            raise ConfigError(f"strategy_params has unknown strategies {unknown}; valid: "
                              f"{sorted(MAPPERS)}")


def _build(cls: type, values: Any, path: str) -> Any:
    """Build dataclass `cls` from a mapping, recursively; errors name the key path."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path or 'config'} must be a mapping, got {type(values).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        where = f"{path}." if path else ""
        raise ConfigError(f"unknown key {where}{unknown[0]}; valid "
                          f"keys{' of ' + path if path else ''}: {sorted(known)}")
    kwargs = {}
    for key, value in values.items():
        key_path = f"{path}.{key}" if path else key
        kwargs[key] = _convert(hints[key], value, key_path)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # the section's own validation: name the section
        where, text = path or "config", str(exc)
        raise ConfigError(text if text.startswith(f"{where}:") else f"{where}: {text}") from exc


def _convert(annotation: Any, value: Any, path: str) -> Any:
    origin = typing.get_origin(annotation)
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if value is None:
        return None
    if origin in (typing.Union, types.UnionType):
        return _convert(args[0], value, path)
    if dataclasses.is_dataclass(annotation):
        return _build(annotation, value, path)
    if origin is tuple:
        items = value if isinstance(value, (list, tuple)) else [value]
        return tuple(_convert(args[0], v, path) for v in items)
    if annotation in (int, float) and isinstance(value, str):
        value = _number_text(value, path)
    if annotation in (int, float) and (isinstance(value, bool)
                                       or not isinstance(value, (int, float))):
        raise ConfigError(f"{path} must be a number, got {value!r}")
    if annotation is int and isinstance(value, float) and not value.is_integer():
        raise ConfigError(f"{path} must be an integer, got {value!r}")
    if annotation is str and not isinstance(value, str):
        raise ConfigError(f"{path} must be a string, got {value!r}")
    if annotation is bool and not isinstance(value, bool):
        raise ConfigError(f"{path} must be true or false, got {value!r}")
    if origin is not None and issubclass(origin, Mapping) and not isinstance(value, Mapping):
        raise ConfigError(f"{path} must be a mapping, got {value!r}")
    return int(value) if annotation is int else float(value) if annotation is float else value


def _number_text(text: str, path: str) -> Any:
    """YAML 1.1 reads `1e-3` and `1e30` (no dot) as text: take such text as the number it
    spells, so `lr: 1e-3` in a config file and `--set train.lr=1e30` mean what they say."""
    try:
        number = float(text.strip())
    except ValueError:
        return text  # not a number: the caller names the key and what was expected
    if not math.isfinite(number):
        raise ConfigError(f"{path} must be a finite number, got {text!r}")
    return number


def merge(base: Mapping, override: Mapping) -> dict:
    """Deep-merge two nested mappings (override wins)."""
    out = dict(base)
    for key, value in override.items():
        out[key] = (merge(out[key], value) if isinstance(value, Mapping)
                    and isinstance(out.get(key), Mapping) else value)
    return out


def preset_values(name: str) -> dict:
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; valid: {list(PRESETS)}")
    return yaml.safe_load(resources.files("sweep.presets").joinpath(f"{name}.yaml").read_text(
        )) or {}


def file_values(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(values, Mapping):
        raise ConfigError(f"{path}: expected a mapping of config keys, got {type(values).__name__}")
    return dict(values)


def load_config(values: Mapping, overrides: Mapping | None = None) -> SweepConfig:
    """A validated SweepConfig from nested values plus nested overrides."""
    merged = merge(values, overrides or {})
    _refuse_non_finite(merged, "")
    return _build(SweepConfig, merged, "")


def config_record(config: SweepConfig) -> dict:
    """The config as plain values, as a sweep records it (sweep_config.yaml, the parent run's
    params): `load_config` of it gives the same config back."""
    return plain(dataclasses.asdict(config))


def _refuse_non_finite(value: Any, path: str) -> None:
    """No number in a sweep config may be infinite or NaN (none means anything, and the record
    of the config in MLflow must load back as it was)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{path or 'config'} must be a finite number, got {value!r}")
    if isinstance(value, Mapping):
        for key, item in value.items():
            _refuse_non_finite(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, (list, tuple)):
        for item in value:
            _refuse_non_finite(item, path)


def load_preset(name: str, overrides: Mapping | None = None) -> SweepConfig:
    return load_config(preset_values(name), overrides)


def set_override(text: str) -> dict:
    """`a.b.c=VALUE` (VALUE parsed as YAML) -> {"a": {"b": {"c": VALUE}}}."""
    if "=" not in text:
        raise ConfigError(f"--set takes KEY=VALUE (e.g. train.epochs=2), got {text!r}")
    key, raw = text.split("=", 1)
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {key}: the value {raw!r} is not valid YAML ({exc})") from None
    for part in reversed(key.strip().split(".")):
        value = {part: value}
    return value
