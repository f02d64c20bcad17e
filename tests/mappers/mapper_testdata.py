"""Shared tiny seeded data for the mappers tests (imported as `mapper_testdata`)."""

from __future__ import annotations

import numpy as np

import mappers

# Constructor params for each registry entry, used by the contract suite.
CONTRACT_PARAMS: dict[str, dict] = {
    "full": {},
    "hash": {"num_rows": 37},
    "double_hash": {"num_rows": 37},
    "frequency": {"num_rows": 37, "hot_fraction": 0.3},
    "qr": {"num_rows": 37, "collisions": 5},
    "embedding": {"num_rows": 37},
    "frequency_embedding": {"num_rows": 37, "hot_fraction": 0.2, "lam": 0.5},
    "mixed_dim": {"num_rows": 37, "dim": 8},
    "mch": {"num_rows": 37},
}
assert set(CONTRACT_PARAMS) == set(mappers.MAPPERS), "add params for every new mapper"


def zipf_vocab(size: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids, counts, embeddings): unique int64 ids in random order spread over all of int64,
    Zipf-like counts (rank^-1.1, at least 1) and Gaussian probe embeddings [size, dim]."""
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(-(2**63), 2**63 - 1, size=size, dtype=np.int64))
    ids = rng.permutation(ids)
    counts = np.maximum(1, (10_000 / np.arange(1, ids.size + 1) ** 1.1)).astype(np.int64)
    embeddings = rng.normal(0.0, 0.1, size=(ids.size, dim))
    return ids, rng.permutation(counts), embeddings


VOCAB = zipf_vocab(300, 4, seed=0)


def as_tables(rows: np.ndarray | tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    """Rows of any mapper as a tuple of per-table arrays."""
    return rows if isinstance(rows, tuple) else (rows,)


def fitted(name: str, **overrides) -> mappers.Mapper:
    """A mapper from the registry fitted on VOCAB with CONTRACT_PARAMS (+ overrides)."""
    ids, counts, embeddings = VOCAB
    params = {**CONTRACT_PARAMS[name], **overrides}
    return trained(mappers.get_mapper(name, **params).fit(ids, counts, embeddings), ids, counts)


def trained(mapper: mappers.Mapper, ids: np.ndarray, counts: np.ndarray) -> mappers.Mapper:
    """An online map (mch) after one update on the training stream (each id `count` times, in a
    seeded order), as a trial leaves it; any other map as it is."""
    if mapper.online:
        stream = np.random.default_rng(7).permutation(np.repeat(ids, counts))
        mapper.observe(stream)
        mapper.update()
    return mapper
