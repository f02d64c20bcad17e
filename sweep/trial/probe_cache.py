"""The probe's embeddings, computed once per (dataset, probe params, seed) and cached on disk.

The learned strategies cluster a low-dimensional embedding of every known id. Learning it
is a whole (small) training run, so a sweep computes it once per seed, before any trial
needs it, and every trial of that seed reuses the file. The key covers the dataset
fingerprint, every probe parameter and the seed; anything else changing means a new file.
Writes are atomic (temporary file + rename), so a killed probe never leaves a bad cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
from dataclasses import replace
from pathlib import Path

import numpy as np

from models import ProbeConfig, probe_fingerprint, train_probe
from sweep.datasets import PreparedDataset
from sweep.processes import pid_alive
from sweep.trial.encoding import feature_specs, fit_full_mappers
from sweep.trial.stream import PreparedBlocks, sample_for

__all__ = ["cached_probe", "probe_cache_key", "probe_embeddings", "probe_train_seconds",
           "store_probe", "timed_probe_embeddings", "train_probe_embeddings"]

log = logging.getLogger(__name__)


def probe_cache_key(dataset: PreparedDataset, config: ProbeConfig) -> str:
    # threads: same probe
    probe = {k: v for k, v in probe_fingerprint(config).items() if k != "num_threads"}
    key = {"dataset": dataset.fingerprint, "probe": probe}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:20]


def _remove_stale_temporaries(cache_dir: Path) -> None:
    """Remove `.probe-*.<pid>.<hex>.npz` files of probes whose process died before the rename."""
    for stale in cache_dir.glob(".probe-*.npz"):
        parts = stale.name.split(".")  # ["", "probe-KEY", pid, hex, "npz"]
        if len(parts) == 5 and parts[2].isdigit() and not pid_alive(int(parts[2])):
            stale.unlink(missing_ok=True)


def probe_embeddings(dataset: PreparedDataset, config: ProbeConfig, seed: int,
                     cache_dir: str | Path) -> dict[str, np.ndarray]:
    """Per feature, float32 [vocab_size, probe dim] aligned with the sorted train vocabulary."""
    cached = cached_probe(dataset, config, seed, cache_dir)
    if cached is not None:
        return cached
    return store_probe(dataset, config, seed, cache_dir,
                       *timed_probe_embeddings(dataset, replace(config, seed=seed)))


def _cache_path(dataset: PreparedDataset, config: ProbeConfig, seed: int, cache_dir: str
                | Path) -> Path:
    return Path(cache_dir) / f"probe-{probe_cache_key(dataset, replace(config, seed=seed))}.npz"


def cached_probe(dataset: PreparedDataset, config: ProbeConfig, seed: int,
                 cache_dir: str | Path) -> dict[str, np.ndarray] | None:
    """The cached probe embeddings of this dataset, probe config and seed; None when not cached."""
    path = _cache_path(dataset, config, seed, cache_dir)
    _remove_stale_temporaries(Path(cache_dir))
    if path.is_file():
        names = dataset.feature_names
        with np.load(path, allow_pickle=False) as stored:
            if stored["feature_names"].tolist() == names:
                log.info("reusing probe embeddings %s", path)
                return {name: stored[f"f{i}"] for i, name in enumerate(names)}
        log.warning("probe cache %s does not match the dataset's features; recomputing", path)
    return None


def probe_train_seconds(dataset: PreparedDataset, config: ProbeConfig, seed: int,
                        cache_dir: str | Path) -> float | None:
    """How long the cached probe of this dataset, probe config and seed took to train (stored
    with it); None when it is not cached or was cached before its time was stored."""
    path = _cache_path(dataset, config, seed, cache_dir)
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return float(stored["train_seconds"]) if "train_seconds" in stored.files else None


def timed_probe_embeddings(dataset: PreparedDataset,
                           config: ProbeConfig) -> tuple[dict[str, np.ndarray], float]:
    """`train_probe_embeddings` and the seconds it took."""
    started = time.perf_counter()
    embeddings = train_probe_embeddings(dataset, config)
    return embeddings, time.perf_counter() - started


def train_probe_embeddings(dataset: PreparedDataset, config: ProbeConfig) -> dict[str, np.ndarray]:
    """Train the probe (seed `config.seed`) on the full model's encoding of the data; no cache."""
    log.info("training the probe (dim %d, seed %d) on %s", config.dim, config.seed, dataset.path)
    mappers = fit_full_mappers(dataset)
    sample = sample_for(int(dataset.manifest["split_sizes"]["train"]), config.max_rows,
                        config.seed)
    train, val = (PreparedBlocks(dataset, split, mappers, sample) for split in ("train", "val"))
    if sample is not None:
        log.info("the probe trains on a sample of %d of the %d training rows (probe.max_rows %d)",
                 train.num_samples, dataset.manifest["split_sizes"]["train"], config.max_rows)
    embeddings = train_probe(config, dataset.dense.shape[1], feature_specs(dataset, mappers), train,
                             val)
    return {name: np.asarray(e, dtype=np.float32)
            for name, e in zip(dataset.feature_names, embeddings, strict=True)}


def store_probe(dataset: PreparedDataset, config: ProbeConfig, seed: int, cache_dir: str | Path,
                embeddings: dict[str, np.ndarray],
                train_seconds: float | None = None) -> dict[str, np.ndarray]:
    """Write `embeddings` (and how long they took to train, when known) to the cache atomically
    (temporary file + rename); returns them."""
    path = _cache_path(dataset, config, seed, cache_dir)
    names = dataset.feature_names
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.{uuid.uuid4().hex[:8]}.npz")
    np.savez(tmp, feature_names=np.array(names),
             **({} if train_seconds is None else {"train_seconds": np.float64(train_seconds)}),
             **{f"f{i}": embeddings[name] for i, name in enumerate(names)})
    os.replace(tmp, path)
    return embeddings
