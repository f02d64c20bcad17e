from __future__ import annotations

import json

import numpy as np
import pytest
from models_testdata import planted_split

from models import FeatureSpec, ProbeConfig, probe_fingerprint, train_probe

VOCAB, GROUPS = 40, 4
SPECS = (FeatureSpec("ad", (VOCAB + 1,)), FeatureSpec("noise", (7 + 1,)))  # + 1 OOV row each
CONFIG = ProbeConfig(dim=8, epochs=5, lr=1e-2, batch_size=64, seed=0)


def test_probe_embeds_planted_groups_close_together():
    train, group_of = planted_split(4000, VOCAB, GROUPS, seed=1)
    ad, noise = train_probe(CONFIG, 1, SPECS, train)
    assert ad.shape == (VOCAB, 8) and noise.shape == (7, 8)
    assert ad.dtype == np.float32 and ad.flags.writeable
    dist = np.linalg.norm(ad[:, None] - ad[None], axis=-1)  # (V, V)
    same = group_of[:, None] == group_of[None]
    within = dist[same & ~np.eye(VOCAB, dtype=bool)].mean()
    between = dist[~same].mean()
    assert within < 0.75 * between
    # row i is the i-th id: a shifted or permuted table would break the planted groups
    nearest = (dist + np.diag(np.full(VOCAB, np.inf))).argmin(axis=1)
    assert (group_of[nearest] == group_of).mean() > 0.6  # chance: 9/39


def test_val_is_only_monitored_not_fitted():
    train, _ = planted_split(500, VOCAB, GROUPS, seed=2)
    val, _ = planted_split(300, VOCAB, GROUPS, seed=3)
    config = ProbeConfig(dim=4, epochs=2, lr=1e-2, batch_size=64)
    with_val = train_probe(config, 1, SPECS, train, val)
    without = train_probe(config, 1, SPECS, train)
    for a, b in zip(with_val, without, strict=True):
        np.testing.assert_array_equal(a, b)


def test_probe_rejects_compressed_tables():
    train, _ = planted_split(50, VOCAB, GROUPS, seed=0)
    specs = (FeatureSpec("ad", (5, 9), "mult"), SPECS[1])
    with pytest.raises(
        ValueError, match=r"probe features need one full table .* got 'ad' with combine='mult'"
    ):
        train_probe(CONFIG, 1, specs, train)


def test_probe_config_validation_and_fingerprint():
    with pytest.raises(ValueError, match="dim must be a positive int, got 0"):
        ProbeConfig(dim=0)
    with pytest.raises(ValueError, match="epochs must be a positive int, got 0"):
        ProbeConfig(epochs=0)
    key = probe_fingerprint(CONFIG)
    assert json.loads(json.dumps(key)) == {**key, "bottom_mlp": [32], "top_mlp": [32]}
    assert key == probe_fingerprint(ProbeConfig(dim=8, epochs=5, lr=1e-2, batch_size=64, seed=0))
    assert key != probe_fingerprint(ProbeConfig(dim=8, epochs=5, lr=1e-2, batch_size=64, seed=1))
    assert key["probe_format"] == 2  # 2: trained on a seeded sample of at most max_rows rows
