from __future__ import annotations

import pytest

from sweep.config import PRESETS, ConfigError, file_values, load_config, load_preset, set_override
from sweep.tune.points import grid_points


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load(name, tmp_path):
    paths = {"movielens": tmp_path / "ml" / "ml.inter",
             "paper-movielens": tmp_path / "ml" / "ml.inter",
             "paper-staleness-movielens": tmp_path / "ml" / "ml.inter",
             "criteo": tmp_path / "train.txt"}
    overrides = None
    if name in paths:
        paths[name].parent.mkdir(exist_ok=True)
        paths[name].write_text("")
        path = paths[name].parent if name.endswith("movielens") else paths[name]
        overrides = {"data": {"params": {"path": str(path)}}}
    if name == "table":
        overrides = {"data": {"params": {"path": str(tmp_path / "t.csv"), "label": "y",
                                         "categorical": ["k"]}}}
    config = load_preset(name, overrides)
    assert config.name == name


@pytest.mark.parametrize("name", ["movielens", "paper-movielens", "criteo", "table"])
def test_presets_with_input_files_need_a_path(name):
    with pytest.raises(ConfigError, match="data: params.path is required for source "
                                          f"'{'recbole' if name.endswith('movielens') else name}'"):
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
    ],
)
def test_bad_values_name_the_key(values, message):
    with pytest.raises(ConfigError, match=message):
        load_config(values)


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
