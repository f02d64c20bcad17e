from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from sweep.datasets import get_source, prepare
from sweep.datasets.synthetic import CRITEO_KAGGLE_CARDINALITIES, SyntheticConfig

SMALL = {"num_rows": 60_000, "vocab_sizes": (200, 5_000), "num_clusters": (8, 20),
         "chunk_rows": 16_384}


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    return prepare(get_source("synthetic", **SMALL), tmp_path_factory.mktemp("syn") / "a")


def _arrays(dataset):
    return [np.asarray(dataset.labels), np.asarray(dataset.dense), np.asarray(dataset.split)] + [
        np.asarray(dataset.sparse[name].values) for name in dataset.feature_names
    ]


def test_same_seed_same_arrays_and_other_seed_differs(small, tmp_path):
    again = prepare(get_source("synthetic", **SMALL), tmp_path / "b")
    other = prepare(get_source("synthetic", **SMALL, seed=1), tmp_path / "c")
    for a, b in zip(_arrays(small), _arrays(again), strict=True):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(np.asarray(small.sparse["C2"].values),
                              np.asarray(other.sparse["C2"].values))
    assert not np.array_equal(np.asarray(small.labels), np.asarray(other.labels))


@pytest.mark.parametrize("exponent", [0.8, 1.2])
def test_popularity_skew_matches_zipf_exponent(tmp_path, exponent):
    data = prepare(get_source("synthetic", num_rows=200_000, vocab_sizes=(20_000,),
                              zipf_exponent=exponent),
                   tmp_path / "z")
    counts = np.sort(np.asarray(data.vocab["C1"].counts))[::-1]
    ranks = np.arange(1, 201)  # the head, where counts are large enough to be precise
    slope = np.polyfit(np.log(ranks), np.log(counts[:200]), 1)[0]
    assert slope == pytest.approx(-exponent, abs=0.08)


def test_planted_clusters_carry_signal_random_groups_do_not(small):
    ids = np.asarray(small.sparse["C2"].values)
    labels = np.asarray(small.labels)
    meta = small.meta["C2"]
    order = np.argsort(meta["planted_ids"])
    position = np.searchsorted(np.asarray(meta["planted_ids"])[order], ids)
    cluster = np.asarray(meta["planted_cluster"])[order][position]

    def chi2(groups: np.ndarray) -> tuple[float, float]:
        clicks = np.bincount(groups, weights=labels)
        totals = np.bincount(groups).astype(float)
        table = np.stack([clicks, totals - clicks])
        statistic, p, _, _ = stats.chi2_contingency(table[:, totals > 0])
        return statistic, p

    planted_stat, planted_p = chi2(cluster)
    assert planted_p < 1e-10
    rng = np.random.default_rng(0)
    random_stats = []
    for _ in range(10):
        random_group_of_id = rng.integers(0, 20, size=len(meta["planted_ids"]))
        random_stats.append(chi2(random_group_of_id[order][position])[0])
    # Random groupings of ids mix every cluster, so their label rates barely differ.
    assert planted_stat > 5 * np.median(random_stats)


def test_no_effects_means_no_cluster_signal(tmp_path):
    flat = prepare(get_source("synthetic", **SMALL, effect_scale=0.0, interaction_scale=0.0,
                              dense_scale=0.0),
                   tmp_path / "flat")
    ids = np.asarray(flat.sparse["C1"].values)
    meta = flat.meta["C1"]
    order = np.argsort(meta["planted_ids"])
    cluster = np.asarray(meta["planted_cluster"])[order][np.searchsorted(
        np.asarray(meta["planted_ids"])[order], ids)]
    labels = np.asarray(flat.labels)
    clicks = np.bincount(cluster, weights=labels)
    totals = np.bincount(cluster).astype(float)
    _, p, _, _ = stats.chi2_contingency(np.stack([clicks, totals - clicks]))
    assert p > 0.001


def test_bayes_logloss_below_constant_predictor(small):
    test = small.split_indices("test")
    y = np.asarray(small.labels)[test].astype(np.float64)
    p = np.asarray(small.extras["true_prob"])[test].astype(np.float64)
    bayes = -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))
    rate = np.asarray(small.labels)[small.split_indices("train")].mean()
    constant = -np.mean(y * np.log(rate) + (1 - y) * np.log(1 - rate))
    assert bayes < constant - 0.05


def test_vocabulary_counts_come_from_train_split(small):
    train = np.asarray(small.split) == 0
    ids = np.asarray(small.sparse["C2"].values)[train]
    expected_ids, expected_counts = np.unique(ids, return_counts=True)
    np.testing.assert_array_equal(small.vocab["C2"].ids, expected_ids)
    np.testing.assert_array_equal(small.vocab["C2"].counts, expected_counts)
    assert small.manifest["split_sizes"]["train"] == int(train.sum())


def test_criteo_like_preset_shape():
    config = SyntheticConfig(preset="criteo-like", scale=0.001)
    sizes = config.resolved_vocab_sizes()
    assert len(sizes) == 26 and config.resolved_num_dense() == 13
    assert sizes[2] == round(CRITEO_KAGGLE_CARDINALITIES[2] * 0.001)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"preset": "huge"}, r"preset must be one of \['criteo-like', 'default'\], got 'huge'"),
        ({"num_rows": 3}, "num_rows must be an int >= 10, got 3"),
        ({"vocab_sizes": (10, 0)}, r"vocab_sizes must all be >= 1, got \[10, 0\]"),
        ({"vocab_sizes": (10, 20), "num_clusters": (1, 2, 3)}, "num_clusters must give 1 value or "
                                                               "one per feature"),
        ({"base_rate": 1.5}, r"base_rate must be in \(0, 1\), got 1.5"),
        ({"val_fraction": 0.6, "test_fraction": 0.5}, "val_fraction \\+ test_fraction must be < 1"),
        ({"drift": -0.1}, r"drift must be >= 0, got -0.1"),
        ({"split": "timestamp"}, r"split must be 'random' or 'sequential', got 'timestamp'"),
        ({"colour": "red"}, r"unknown option\(s\) \['colour'\] for source 'synthetic'"),
    ],
)
def test_bad_config_errors_name_the_parameter(params, message):
    with pytest.raises(ValueError, match=message):
        get_source("synthetic", **params)


DRIFT = {"num_rows": 40_000, "vocab_sizes": (50, 20_000), "num_clusters": (4, 40),
         "chunk_rows": 7_000,
         "split": "sequential", "val_fraction": 0.1, "test_fraction": 0.5}


def _unseen_share(dataset, rows) -> float:
    values = np.asarray(dataset.sparse["C2"].values)[rows]
    return float((~np.isin(values, dataset.vocab["C2"].ids)).mean())


def test_drift_rotates_popularity_so_later_windows_meet_more_unseen_ids(tmp_path):
    still = prepare(get_source("synthetic", **DRIFT), tmp_path / "still")
    drifting = prepare(get_source("synthetic", **DRIFT, drift=0.5), tmp_path / "drift")
    # the sequential split honours the fractions: 40% train, 10% val, 50% test, in row order
    np.testing.assert_array_equal(np.asarray(drifting.split), [0] * 16_000 + [1] * 4_000
                                  + [2] * 20_000)
    assert drifting.time_ordered and not prepare(get_source("synthetic", num_rows=1000),
                                                 tmp_path / "r").time_ordered
    windows = [drifting.split_indices("test")[w] for w in drifting.test_windows(4)]
    assert [len(w) for w in windows] == [5000] * 4
    assert windows[0][0] == 20_000
    assert windows[-1][-1] == 39_999
    unseen = [_unseen_share(drifting, w) for w in windows]
    assert unseen == sorted(unseen) and unseen[-1] > unseen[0] + 0.05
    assert _unseen_share(drifting, windows[-1]) > 2 * _unseen_share(
        still, still.split_indices("test")[-5000:])
    # an id keeps its planted cluster whatever its popularity: the meta is the same with and without
    # drift
    for key in ("planted_ids", "planted_cluster"):
        np.testing.assert_array_equal(np.asarray(drifting.meta["C2"][key]),
                                      np.asarray(still.meta["C2"][key]))


def test_drift_with_a_random_split_says_the_maps_never_age(caplog):
    get_source("synthetic", num_rows=100, drift=0.1)
    assert "drift 0.1 with a random split: train, val and test rows share every time" in caplog.text


def test_test_windows_need_rows_in_time_order(tmp_path):
    data = prepare(get_source("synthetic", num_rows=1000, vocab_sizes=(30,)), tmp_path / "random")
    assert [len(w) for w in data.test_windows(1)] == [len(data.split_indices("test"))]
    with pytest.raises(ValueError,
                       match=r"random: 3 test windows need rows in time order, but this data has a "
                                         r"'random' split and no per-row time; prepare it with "
                                         r"split 'sequential'"):
        data.test_windows(3)
    ordered = prepare(get_source("synthetic", num_rows=100, vocab_sizes=(30,), split="sequential"),
                      tmp_path / "seq")
    with pytest.raises(ValueError,
                       match=r"20 test windows need at least 20 test rows, the test split has 10"):
        ordered.test_windows(20)
