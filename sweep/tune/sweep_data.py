"""A sweep's data: one prepared dataset, or one per seed where the data varies with the seed.

By default every trial of a sweep reads the same prepared data, and a seed changes the hash,
the probe, the initialisation and the batch order, never the data. With `data.vary_with_seed`
the seed is also a replicate of the data: the source's `seed` option becomes
`data.params.seed + trial seed` (params.seed is 0 when not given), so the trials of seed k all
read the data of source seed `data.params.seed + k`, and seed 0's data is the plain sweep's. For
`synthetic` that seed generates the rows themselves (new ids, clusters, clicks); for a file source
it draws the random train / val / test split of the same rows (a split that is not random is
refused by the config: the seed would change nothing). Each seed's data is prepared (and cached)
on its own, under `data.prepared_dir/seed-<k>` when a prepared_dir is given.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path

from sweep.config import SweepConfig
from sweep.datasets import (
    PreparedDataset,
    Source,
    default_out_dir,
    fingerprint,
    get_source,
    prepare,
)

__all__ = ["prepare_datasets", "sweep_fingerprint", "sweep_sources"]


def sweep_sources(config: SweepConfig, seeds: Iterable[int]) -> dict[int, Source]:
    """{trial seed: the source its trials read}: the same source for every seed, unless the data
    varies with the seed (then each has its own generator seed)."""
    params = dict(config.data.params)
    if not config.data.vary_with_seed:
        source = get_source(config.data.source, **params)
        return {seed: source for seed in seeds}
    base = int(params.pop("seed", 0))
    return {seed: get_source(config.data.source, **params, seed=base + seed) for seed in seeds}


def sweep_fingerprint(config: SweepConfig, seeds: Iterable[int]) -> str:
    """The fingerprint of the sweep's data: its source's, or, where the data varies with the seed,
    one made of every seed's (a resume compares it with the one recorded)."""
    sources = sweep_sources(config, sorted(set(seeds)))
    if not config.data.vary_with_seed:
        return fingerprint(next(iter(sources.values())))
    text = ";".join(f"{seed}:{fingerprint(source)}" for seed, source in sorted(sources.items()))
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_datasets(config: SweepConfig, seeds: Iterable[int],
                     cache_dir: Path) -> dict[int, PreparedDataset]:
    """{trial seed: its prepared data}, each prepared once (or read back from its cache): one
    dataset shared by every seed, or one per seed where the data varies with it."""
    sources = sweep_sources(config, sorted(set(seeds)))
    prepared: dict[int, PreparedDataset] = {}
    by_source: dict[int, PreparedDataset] = {}
    for seed, source in sources.items():
        if id(source) not in by_source:
            out_dir = config.data.prepared_dir
            if out_dir is not None and config.data.vary_with_seed:
                out_dir = str(Path(out_dir) / f"seed-{seed}")
            by_source[id(source)] = prepare(source, out_dir or default_out_dir(source, cache_dir))
        prepared[seed] = by_source[id(source)]
    return prepared
