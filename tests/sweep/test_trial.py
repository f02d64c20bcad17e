from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from mappers import load_bundle
from models import ProbeConfig, TrainConfig
from sweep.datasets import get_source, prepare
from sweep.probe_cache import probe_embeddings
from sweep.trial import TrialConfig, run_trial, trial_name

TINY = {"num_rows": 6000, "vocab_sizes": (20, 400, 1500), "num_dense": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return prepare(get_source("synthetic", **TINY), tmp_path_factory.mktemp("tiny") / "data")


def _config(tiny, tmp_path, **changes) -> TrialConfig:
    base = TrialConfig(data=str(tiny.path), strategy="hash", compression=8.0, dim=4, full_threshold=50,
                       bottom_mlp=(8,), top_mlp=(8,), train=TrainConfig(epochs=2, batch_size=256, lr=0.01, num_threads=1),
                       probe=ProbeConfig(dim=3, epochs=1, num_threads=1), cache_dir=str(tmp_path / "probes"))
    return replace(base, **changes)


def test_run_trial_writes_bundles_and_metrics(tiny, tmp_path):
    epochs = []
    out = run_trial(_config(tiny, tmp_path, out_dir=str(tmp_path / "out")),
                    on_epoch=lambda epoch, metrics: epochs.append((epoch, metrics["val_logloss"], metrics["total_bytes"])))
    assert [e[0] for e in epochs] == [1, 2]
    assert all(e[2] == out["total_bytes"] for e in epochs)  # sizes are known before training
    assert out["total_bytes"] == out["embedding_bytes"] + out["mapping_bytes"] + out["dense_bytes"]
    # C1 (vocab 20 <= threshold 50) stays full: 21 rows; C2, C3 hashed into ceil(V / 8) rows
    details = json.loads((tmp_path / "out" / "metrics.json").read_text())
    sizes = {n: f["table_sizes"] for n, f in details["features"].items()}
    vocab = {n: len(tiny.vocab[n].ids) for n in tiny.feature_names}
    assert sizes == {"C1": [vocab["C1"] + 1], "C2": [math.ceil(vocab["C2"] / 8)], "C3": [math.ceil(vocab["C3"] / 8)]}
    assert out["embedding_bytes"] == sum(s[0] for s in sizes.values()) * 4 * 4
    assert 0 < out["compression_ratio"] and out["test_logloss"] < out["constant_test_logloss"]
    assert "signal_captured" in out and out["bayes_test_logloss"] < out["constant_test_logloss"]
    held_out = np.asarray(tiny.split) != 0
    unseen = sum(int((~np.isin(np.asarray(tiny.sparse[n].values)[held_out], tiny.vocab[n].ids)).sum())
                 for n in tiny.feature_names)
    assert out["unseen_value_rate"] == unseen / (held_out.sum() * len(tiny.feature_names)) > 0
    for name in tiny.feature_names:
        mapper = load_bundle(tmp_path / "out" / details["features"][name]["bundle"])
        assert mapper.name == details["features"][name]["strategy"]


def test_full_strategy_is_the_reference_size(tiny, tmp_path):
    out = run_trial(_config(tiny, tmp_path, strategy="full", compression=None))
    assert out["compression_ratio"] == pytest.approx(1.0)


def test_same_seed_same_metrics(tiny, tmp_path):
    a = run_trial(_config(tiny, tmp_path, seed=3))
    b = run_trial(_config(tiny, tmp_path, seed=3))
    assert a["test_logloss"] == b["test_logloss"] and a["val_logloss"] == b["val_logloss"]


def test_probe_cache_is_reused_and_invalidated(tiny, tmp_path):
    cache = tmp_path / "probes"
    first = probe_embeddings(tiny, ProbeConfig(dim=3, epochs=1, num_threads=1), seed=0, cache_dir=cache)
    files = sorted(cache.iterdir())
    assert len(files) == 1 and first["C3"].shape == (len(tiny.vocab["C3"].ids), 3)
    mtime = files[0].stat().st_mtime_ns
    again = probe_embeddings(tiny, ProbeConfig(dim=3, epochs=1, num_threads=1), seed=0, cache_dir=cache)
    assert files[0].stat().st_mtime_ns == mtime  # reused, not retrained
    np.testing.assert_array_equal(again["C3"], first["C3"])
    probe_embeddings(tiny, ProbeConfig(dim=3, epochs=1, num_threads=1), seed=1, cache_dir=cache)
    probe_embeddings(tiny, ProbeConfig(dim=2, epochs=1, num_threads=1), seed=0, cache_dir=cache)
    assert len(list(cache.iterdir())) == 3  # another seed or another probe param: new entries
    other = prepare(get_source("synthetic", **{**TINY, "seed": 5}), tmp_path / "other")
    probe_embeddings(other, ProbeConfig(dim=3, epochs=1, num_threads=1), seed=0, cache_dir=cache)
    assert len(list(cache.iterdir())) == 4  # another dataset fingerprint: a new entry


def test_learned_strategy_trains_with_the_probe(tiny, tmp_path):
    out = run_trial(_config(tiny, tmp_path, strategy="frequency_embedding", mapper_params={"hot_fraction": 0.25}))
    assert out["mapping_bytes"] > 64 and math.isfinite(out["test_logloss"])
    assert len(list((tmp_path / "probes").iterdir())) == 1


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strategy": "nosuch"}, "strategy must be one of"),
        ({"compression": None, "rows": None}, "give exactly one of compression or rows"),
        ({"compression": 0.5}, "compression must be >= 1, got 0.5"),
        ({"dim": 0}, "dim must be >= 1, got 0"),
        ({"interaction": "sum"}, "interaction must be one of"),
    ],
)
def test_bad_trial_config(tiny, tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        _config(tiny, tmp_path, **changes)


def test_bad_mapper_param_fails_at_config_time(tiny, tmp_path):
    with pytest.raises(ValueError, match="hot_fraction"):
        _config(tiny, tmp_path, strategy="frequency", mapper_params={"hot_fraction": 7})


def test_trial_names():
    assert trial_name("frequency_embedding", 16.0, 16, 0) == "frequency_embedding-c16-d16-s0"
    assert trial_name("full", None, 8, 2) == "full-d8-s2"
    assert trial_name("hash", None, 8, 0, rows=1000) == "hash-r1000-d8-s0"
