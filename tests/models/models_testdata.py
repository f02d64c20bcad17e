"""Tiny seeded data for the models tests (imported by name: pytest puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np

from models import EncodedSplit, FeatureSpec


def random_split(
    features: tuple[FeatureSpec, ...], num_dense: int, n: int, seed: int = 0, max_bag: int = 4
) -> EncodedSplit:
    """Random labels, dense inputs and in-range rows for every table of ``features``."""
    rng = np.random.default_rng(seed)
    tables: list = []
    for f in features:
        for rows in f.table_sizes:
            if f.multi_valued:
                lengths = rng.integers(0, max_bag + 1, n)
                offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
                tables.append((rng.integers(0, rows, offsets[-1]), offsets))
            else:
                tables.append(rng.integers(0, rows, n))
    dense = rng.normal(size=(n, num_dense)).astype(np.float32)
    labels = (rng.random(n) < 0.5).astype(np.float32)
    return EncodedSplit(dense, labels, tables)


def planted_split(n: int, vocab: int, groups: int, seed: int) -> tuple[EncodedSplit, np.ndarray]:
    """Feature 0's ids belong to planted groups with distinct click rates; feature 1 is noise.

    Returns the split (2 features, 1 noise dense input) and the group of each feature-0 id.
    """
    # the planted groups are the same for every seed, so that splits share them; no pattern
    # that a shift of rows would preserve
    group_of = np.random.default_rng(12345).permutation(np.arange(vocab) % groups)
    rng = np.random.default_rng(seed)
    group_logit = np.linspace(-2.5, 2.5, groups)
    ids = rng.integers(0, vocab, n)
    noise_ids = rng.integers(0, 7, n)
    prob = 1 / (1 + np.exp(-group_logit[group_of[ids]]))
    labels = (rng.random(n) < prob).astype(np.float32)
    dense = rng.normal(size=(n, 1)).astype(np.float32)
    return EncodedSplit(dense, labels, [ids, noise_ids]), group_of
