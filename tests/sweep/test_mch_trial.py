"""Real `mch` trials: the pool moves while the model trains, the trial logs what it did, the
frozen map is saved like a learned map, and the same seed gives the same map."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from mappers import load_bundle, read_bundle
from models import TrainConfig
from sweep.datasets import get_source, prepare
from sweep.trial import ModelConfig, TrialConfig, run_trial

TINY = {"num_rows": 12000, "vocab_sizes": (20, 400, 3000), "num_dense": 2}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return prepare(get_source("synthetic", **TINY), tmp_path_factory.mktemp("tiny") / "data")


def _config(tiny, tmp_path, **changes) -> TrialConfig:
    base = TrialConfig(data=str(tiny.path), strategy="mch", compression=8.0, dim=8,
                       precisions=("fp32",), mapper_params={"remap_every": 4},
                       model=ModelConfig(full_threshold=50, bottom_mlp=(8,), top_mlp=(8,)),
                       train=TrainConfig(epochs=2, batch_size=256, lr=0.01, num_threads=1,
                                         early_stopping_patience=None),
                       cache_dir=str(tmp_path / "probes"))
    return replace(base, **changes)


@pytest.fixture(scope="module")
def trial(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("mch")
    return run_trial(_config(tiny, out, out_dir=str(out / "run"))), out / "run"


def test_the_trial_logs_what_the_pool_did(tiny, trial, tmp_path):
    metrics, _ = trial
    assert metrics["mch.updates"] > 2 and metrics["mch.admissions"] > 0
    assert metrics["mch.rows_reinitialised"] == metrics["mch.admissions"]
    assert 0 < metrics["mch.pool_use"] <= 1 and 0 < metrics["mch.region_value_share"] < 1
    assert metrics["test_logloss"] < metrics["constant_test_logloss"]
    hashed = run_trial(_config(tiny, tmp_path, strategy="hash", mapper_params={}))
    assert metrics["embedding_bytes"] == hashed["embedding_bytes"]  # the same rows per feature


def test_the_frozen_map_is_saved_like_a_learned_map(tiny, trial):
    metrics, run = trial
    details = json.loads((run / "metrics.json").read_text())
    mapper = load_bundle(run / details["features"]["C3"]["bundle"])
    assert mapper.name == "mch" and mapper.keys_.size > 0
    vocab = tiny.vocab["C3"]
    hottest = np.asarray(vocab.ids)[np.argsort(-np.asarray(vocab.counts), kind="stable")[:5]]
    assert np.all(mapper.transform(hottest) < mapper.pool_rows)  # the hottest ids hold rows
    rare = np.arange(-1000, -900, dtype=np.int64)  # never seen: the hashed region
    assert np.all(mapper.transform(rare) >= mapper.pool_rows)
    assert details["features"]["C3"]["nbytes"] == 12 * mapper.pool_rows + 32  # a full pool
    hashed = json.loads((run / "metrics.json").read_text())["metrics"]
    assert hashed["mapping_bytes"] >= 12 * mapper.pool_rows


def test_the_same_seed_gives_the_same_map(tiny, trial, tmp_path):
    _, run = trial
    again = tmp_path / "again"
    run_trial(_config(tiny, tmp_path, out_dir=str(again)))
    details = json.loads((run / "metrics.json").read_text())
    for name in ("C2", "C3"):
        first = read_bundle(run / details["features"][name]["bundle"])[0]["digest"]
        assert read_bundle(again / details["features"][name]["bundle"])[0]["digest"] == first
