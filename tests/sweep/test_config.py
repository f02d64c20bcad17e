from __future__ import annotations

import math
import re

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sweep.config import (
    PRESETS,
    ConfigError,
    config_record,
    file_values,
    load_config,
    load_preset,
    merge,
    set_override,
)
from sweep.tune.points import grid_points


def _preset(name, tmp_path):
    """A shipped preset, with the input files the data sources of some of them need."""
    paths = {"movielens": tmp_path / "ml" / "ml.inter",
             "paper-movielens": tmp_path / "ml" / "ml.inter",
             "paper-staleness-movielens": tmp_path / "ml" / "ml.inter",
             "criteo": tmp_path / "train.txt", "criteo-kaggle": tmp_path / "train.txt"}
    overrides = None
    if name in paths:
        paths[name].parent.mkdir(exist_ok=True)
        paths[name].write_text("")
        path = paths[name].parent if name.endswith("movielens") else paths[name]
        overrides = {"data": {"params": {"path": str(path)}}}
    if name == "table":
        overrides = {"data": {"params": {"path": str(tmp_path / "t.csv"), "label": "y",
                                         "categorical": ["k"]}}}
    return load_preset(name, overrides)


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load(name, tmp_path):
    assert _preset(name, tmp_path).name == name


def _round_trip(config):
    """The config as a sweep records it (sweep_config.yaml), loaded back as `--config` loads it."""
    return load_config(yaml.safe_load(yaml.safe_dump(config_record(config), sort_keys=False)))


@pytest.mark.parametrize("name", PRESETS)
def test_every_recorded_preset_loads_back_as_it_was(name, tmp_path):
    config = _preset(name, tmp_path)
    assert _round_trip(config) == config


@settings(max_examples=60, deadline=None)
@given(compressions=st.lists(st.floats(min_value=-1e9, max_value=1e9)
                             | st.sampled_from([math.inf, -math.inf, math.nan]), min_size=1,
                             max_size=4),
       lr=st.floats(allow_nan=True, allow_infinity=True),
       seeds=st.lists(st.integers(0, 2**31), min_size=1, max_size=3),
       name=st.text(min_size=1, max_size=12),
       drift=st.floats(allow_nan=True, allow_infinity=True),
       retry=st.floats(allow_nan=True, allow_infinity=True))
def test_any_config_that_loads_is_recorded_so_that_it_loads_back(compressions, lr, seeds, name,
                                                                  drift, retry):
    values = {"name": name, "grid": {"compressions": compressions, "seeds": seeds},
              "train": {"lr": lr}, "data": {"params": {"drift": drift}},
              "tracking_retry_s": retry}
    try:
        config = load_config(values)
    except ConfigError:
        return  # refused, naming the key: nothing is recorded
    assert _round_trip(config) == config


@pytest.mark.parametrize(("values", "message"), [
    ({"grid": {"compressions": [math.inf]}}, "grid.compressions must be a finite number, got inf"),
    ({"tracking_retry_s": math.inf}, "tracking_retry_s must be a finite number, got inf"),
    ({"data": {"params": {"drift": math.nan}}},
     "data.params.drift must be a finite number, got nan"),
])
def test_non_finite_numbers_are_refused_naming_the_key(values, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        load_config(values)


def test_numbers_yaml_reads_as_text_are_the_numbers_they_spell():
    # YAML 1.1 reads 1e30 and 1e-3 (no dot) as strings; a config means the number
    config = load_config({}, merge(set_override("train.lr=1e30"), set_override("train.epochs=2e0")))
    assert config.train.lr == 1e30 and config.train.epochs == 2
    with pytest.raises(ConfigError, match=re.escape("train.lr must be a finite number, got 'inf'")):
        load_config({}, set_override("train.lr=inf"))


@pytest.mark.parametrize("name", ["movielens", "paper-movielens", "criteo", "criteo-kaggle",
                                  "table"])
def test_presets_with_input_files_need_a_path(name):
    source = "recbole" if name.endswith("movielens") else name.removesuffix("-kaggle")
    with pytest.raises(ConfigError, match="data: params.path is required for source "
                                          f"'{source}'"):
        load_preset(name)


def test_quick_preset_is_all_strategies_three_compressions_two_dims():
    config = load_preset("quick")
    points = grid_points(config)
    assert len(config.grid.strategies) == 7 and len(config.grid.compressions) == 3 and len(
        config.grid.dims) == 2
    # full ignores compression: 2 dims; the six others: 3 x 2 each
    assert len(points) == 2 + 6 * 3 * 2
    assert len({tuple(p.values()) for p in points}) == len(points)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"grid": {"strategy": ["hash"]}}, r"unknown key grid.strategy; valid keys of grid"),
        ({"colour": 1}, r"unknown key colour; valid keys"),
        ({"train": {"epochs": 0}}, r"train: epochs must be a positive int, got 0"),
        ({"train": {"epochs": "two"}}, r"train.epochs must be a number, got 'two'"),
        ({"grid": {"compressions": [0.5]}}, r"grid: compressions must all be >= 1"),
        ({"search": "random"}, r"search must be one of \('grid', 'optuna'\), got 'random'"),
        ({"search": "optuna", "scheduler": "asha"}, "scheduler 'asha' is single-objective"),
        ({"data": {"source": "csv"}}, r"data: source must be one of"),
        ({"strategy_params": {"hsh": {}}}, r"strategy_params has unknown strategies \['hsh'\]"),
        ({"resources": {"cpus_per_trial": 0}}, r"resources: cpus_per_trial must be > 0"),
        ({"test_windows": 0}, r"test_windows must be an int >= 1, got 0"),
        ({"data": {"vary_with_seed": "yes"}}, r"data.vary_with_seed must be true or false"),
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        load_config(values)


def test_data_varies_with_the_seed_only_where_the_seed_can_vary_it(tmp_path):
    from sweep.tune.sweep_data import sweep_fingerprint, sweep_sources

    config = load_config({"data": {"params": {"seed": 5, "num_rows": 1000},
                                   "vary_with_seed": True}})
    sources = sweep_sources(config, [0, 2])
    assert [sources[s].config.seed for s in (0, 2)] == [5, 7]  # params.seed + the trial seed
    plain = load_config({"data": {"params": {"seed": 5, "num_rows": 1000}}})
    assert {s.config.seed for s in sweep_sources(plain, [0, 2]).values()} == {5}
    assert sweep_fingerprint(config, [0, 2]) != sweep_fingerprint(config, [0, 1])
    assert sweep_fingerprint(plain, [0, 2]) == sweep_fingerprint(plain, [0, 1])
    # a file whose split is by time: the seed draws nothing there
    table = tmp_path / "t.csv"
    table.write_text("label,a\n1,x\n0,y\n")
    with pytest.raises(ConfigError, match=r"vary_with_seed has nothing to vary for source "
                                          r"'table': its seed draws only a random split, and its "
                                          r"split is 'sequential'"):
        load_config({"data": {"source": "table", "params": {
            "path": str(table), "label": "label", "categorical": ["a"], "split": "sequential"},
            "vary_with_seed": True}})
    random_split = load_config({"data": {"source": "table", "params": {
        "path": str(table), "label": "label", "categorical": ["a"]}, "vary_with_seed": True}})
    assert random_split.data.vary_with_seed


def test_overrides_and_set():
    config = load_preset("smoke", set_override("train.epochs=5"))
    assert config.train.epochs == 5
    assert set_override("grid.dims=[4, 8]") == {"grid": {"dims": [4, 8]}}
    with pytest.raises(ConfigError, match="--set takes KEY=VALUE"):
        set_override("train.epochs")


def test_config_file_errors(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        file_values(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        file_values(bad)
    bad.write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping of config keys, got list"):
        file_values(bad)


def test_save_tables_is_a_switch_that_reaches_every_trial(tmp_path):
    from sweep.tune.trainable import base_trial_config

    off = load_config({}, set_override("save_tables=false"))
    assert off.save_tables is False
    assert base_trial_config(off, tmp_path, tmp_path).save_tables is False
    assert base_trial_config(load_config({}), tmp_path, tmp_path).save_tables is True
    with pytest.raises(ConfigError, match="save_tables"):
        load_config({"save_tables": "sometimes"})
