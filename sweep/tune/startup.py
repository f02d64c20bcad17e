"""The serial start of a sweep, done once and timed: the data, Ray, and the probes of every seed.

Everything before the first trial keeps the CPUs idle but one, so it is done once per
sweep and as parallel as it can be:

- the data is prepared (or read back from its cache) once, in the driver; every trial and
  probe task reads it from the prepared directory (memory-mapped, a block of rows at a time),
  never through Ray's object store;
- the probes the learned strategies need, one per seed, are read from their cache, and
  those missing are trained as Ray tasks side by side (each with its share of the CPUs),
  then cached by the driver; trials are handed them and never train one;
- how long each step took is printed once, and logged to the parent run as
  `startup_*_seconds` metrics.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from models import ProbeConfig
from sweep.datasets import PreparedDataset, load_prepared
from sweep.trial.probe_cache import (
    cached_probe,
    probe_train_seconds,
    store_probe,
    timed_probe_embeddings,
)

__all__ = ["Startup", "sweep_probes"]

log = logging.getLogger(__name__)


@dataclass
class Startup:
    """Seconds spent before the first trial, step by step."""

    data_seconds: float = 0.0
    ray_seconds: float = 0.0
    probe_seconds: float = 0.0
    probes_cached: list[int] = field(default_factory=list)  # seeds read from the probe cache
    probes_trained: list[int] = field(default_factory=list)  # seeds trained now (side by side)
    # per seed, how long its probe took to train (now, or when it was cached; None: not known)
    probe_train_seconds: dict[int, float | None] = field(default_factory=dict)

    def metrics(self) -> dict[str, float]:
        return {"startup_data_seconds": self.data_seconds, "startup_ray_seconds": self.ray_seconds,
                "startup_probe_seconds": self.probe_seconds,
                "probes_trained": float(len(self.probes_trained))}

    def describe(self) -> str:
        text = (f"before the first trial: data {self.data_seconds:.1f} s, "
                f"Ray {self.ray_seconds:.1f} s")
        if self.probes_trained or self.probes_cached:
            parts = []
            if self.probes_trained:
                side = " side by side" if len(self.probes_trained) > 1 else ""
                parts.append(f"seed {_seeds(self.probes_trained)} trained{side}")
            if self.probes_cached:
                parts.append(f"seed {_seeds(self.probes_cached)} cached")
            text += f", probes {self.probe_seconds:.1f} s ({'; '.join(parts)})"
        return text


def _seeds(seeds: list[int]) -> str:
    return ", ".join(str(s) for s in seeds)


def _train_probe_at(path: str, config: ProbeConfig) -> tuple[dict[str, np.ndarray], float]:
    """A Ray task: the probe of the prepared data at `path`, read there (memory-mapped), and the
    seconds its training took."""
    return timed_probe_embeddings(load_prepared(path), config)


def sweep_probes(datasets: Mapping[int, PreparedDataset], config: ProbeConfig, cache_dir: Path,
                 startup: Startup) -> dict[int, dict[str, np.ndarray]]:
    """Every seed's probe embeddings, each on its seed's data (`datasets`: {seed: prepared data};
    the same data for every seed unless it varies with the seed): cached ones read back, missing
    ones trained as Ray tasks side by side (Ray must be initialised) and then cached. The tasks
    read the prepared data from its directory, which every node sees (checked before)."""
    import ray

    started = time.perf_counter()
    probes: dict[int, dict[str, np.ndarray]] = {}
    seeds = sorted(datasets)
    for seed in seeds:
        cached = cached_probe(datasets[seed], config, seed, cache_dir)
        if cached is not None:
            probes[seed] = cached
            startup.probes_cached.append(seed)
            startup.probe_train_seconds[seed] = probe_train_seconds(datasets[seed], config, seed,
                                                                    cache_dir)
    missing = [seed for seed in seeds if seed not in probes]
    if missing:
        cpus = max(1, int(ray.available_resources().get("CPU", 1) // len(missing)))
        threads = config.num_threads or cpus
        task = ray.remote(num_cpus=cpus, max_retries=0)(_train_probe_at)
        log.info("training the probe of seed %s: %d Ray task(s) side by side, %d thread(s) each",
                 _seeds(missing), len(missing), threads)
        pending = {seed: task.remote(str(Path(datasets[seed].path).resolve()),
                                     replace(config, seed=seed, num_threads=threads))
                   for seed in missing}
        for seed, result in pending.items():
            embeddings, seconds = ray.get(result)
            probes[seed] = store_probe(datasets[seed], config, seed, cache_dir, embeddings, seconds)
            startup.probe_train_seconds[seed] = seconds
            startup.probes_trained.append(seed)
    startup.probe_seconds = time.perf_counter() - started
    return probes
