from __future__ import annotations

import pytest

from models import DLRMConfig, FeatureSpec

PLAIN = (FeatureSpec("a", (4,)), FeatureSpec("b", (5,)))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(name="", table_sizes=(3,)), "FeatureSpec.name must be a non-empty str, got ''"),
        (
            dict(name="x", table_sizes=(0,)),
            r"table_sizes of feature 'x' must hold positive ints, got \(0,\)",
        ),
        (dict(name="x", table_sizes=()), r"table_sizes of feature 'x' must not be empty"),
        (
            dict(name="x", table_sizes=(3,), combine="xor"),
            r"combine of feature 'x' must be one of .*'mixed'\), got 'xor'",
        ),
        (
            dict(name="x", table_sizes=(3,), combine="mult"),
            r"feature 'x' with combine='mult' needs 2 table size\(s\), got table_sizes=\(3,\)",
        ),
        (dict(name="x", table_sizes=(3, 4)), r"combine='none' needs 1 table size\(s\)"),
        (
            dict(name="x", table_sizes=(3,), pooling="max"),
            r"pooling of feature 'x' must be one of \('sum', 'mean'\), got 'max'",
        ),
    ],
)
def test_feature_spec_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        FeatureSpec(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(num_dense=-1), "num_dense must be >= 0, got -1"),
        (dict(features=()), r"features must be a non-empty tuple of FeatureSpec, got \(\)"),
        (dict(features=(PLAIN[0], PLAIN[0])), r"feature names must be unique, got \['a', 'a'\]"),
        (dict(embedding_dim=0), "embedding_dim must be a positive int, got 0"),
        (
            dict(features=(FeatureSpec("q", (2, 3), "concat"),), embedding_dim=5),
            r"embedding_dim must be even when a feature uses combine='concat' .*got 5 with \['q'\]",
        ),
        (dict(bottom_mlp=(8, -1)), r"bottom_mlp must hold positive ints, got \(8, -1\)"),
        (dict(top_mlp=(8, 2.5)), r"top_mlp must hold positive ints, got \(8, 2.5\)"),
        (dict(interaction="sum"), r"interaction must be one of \('dot', 'cat'\), got 'sum'"),
        (
            dict(num_dense=0, features=PLAIN[:1]),
            "interaction='dot' with num_dense=0 needs at least 2 features",
        ),
    ],
)
def test_dlrm_config_errors(kwargs, message):
    base = dict(num_dense=2, features=PLAIN)
    with pytest.raises(ValueError, match=message):
        DLRMConfig(**{**base, **kwargs})


def test_dlrm_config_type_errors():
    with pytest.raises(TypeError, match="num_dense must be an int, got 1.5"):
        DLRMConfig(1.5, PLAIN)
    with pytest.raises(TypeError, match="features must hold FeatureSpec, got str"):
        DLRMConfig(1, ("a",))
    with pytest.raises(TypeError, match="bottom_mlp must be a tuple or list of ints, got str"):
        DLRMConfig(1, PLAIN, bottom_mlp="64-32")


def test_lists_from_yaml_or_json_become_tuples():
    config = DLRMConfig(1, [FeatureSpec("a", [4, 5], "sum"), PLAIN[1]], bottom_mlp=[8], top_mlp=[])
    assert config.features[0].table_sizes == (4, 5)
    assert (config.bottom_mlp, config.top_mlp) == ((8,), ())
    assert isinstance(config.features, tuple)


def test_shapes_and_interaction_dim():
    config = DLRMConfig(
        3, (FeatureSpec("a", (4,)), FeatureSpec("q", (2, 3), "concat")), embedding_dim=6
    )
    assert config.table_shapes == ((4, 6), (2, 3), (3, 3))
    assert config.interaction_dim == 6 + 3  # dense vector + 3 pairs among 3 vectors
    assert DLRMConfig(0, PLAIN, interaction="cat").interaction_dim == 2 * 16
    assert DLRMConfig(0, PLAIN).interaction_dim == 1
