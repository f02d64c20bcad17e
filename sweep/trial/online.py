"""A trial's managed-collision maps (`mappers/mch.py`) as the trainer's online maps
(`models.online.OnlineMaps`), and what they did, as metrics.

Every feature the trial maps with `mch` is a managed table: its batches carry raw ids, and
`MCHMaps.rows` maps them with the feature's current pool (noting them in training), `update`
moves each pool, and `state`/`restore` copy the maps for early stopping. After training the
maps are frozen and are saved and exported like any learned map.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import numpy as np

from models import FeatureSpec

__all__ = ["MCHMaps", "online_maps"]


class MCHMaps:
    """The online maps of a trial's managed tables (models.online.OnlineMaps)."""

    def __init__(self, tables: tuple[int, ...], mappers: list):
        self.tables, self.mappers = tables, mappers
        self.remap_every = int(mappers[0].remap_every)

    def rows(self, raw: np.ndarray, observe: bool) -> np.ndarray:
        out = np.empty(raw.shape, dtype=np.int64)
        for m, mapper in enumerate(self.mappers):
            column = np.ascontiguousarray(raw[:, m])
            seen = mapper.num_unseen_
            out[:, m] = mapper.transform(column)
            mapper.num_unseen_ = seen  # the trial counts the fallback on the frozen map
            if observe:
                mapper.observe(column, out[:, m])
        return out

    def update(self) -> list[np.ndarray]:
        return [mapper.update() for mapper in self.mappers]

    def state(self) -> object:
        return [copy.deepcopy(mapper.__dict__) for mapper in self.mappers]

    def restore(self, state: object) -> None:
        for mapper, saved in zip(self.mappers, state, strict=True):
            mapper.__dict__.update(copy.deepcopy(saved))

    def metrics(self) -> dict[str, float]:
        """mch.admissions, .evictions, .updates (per feature, summed), .pool_use (mean over
        features) and .region_value_share (observed training values the hashed region served)."""
        stats = [m.stats for m in self.mappers]
        observed = sum(s["observed_values"] for s in stats)
        return {"mch.admissions": sum(s["admissions"] for s in stats),
                "mch.evictions": sum(s["evictions"] for s in stats),
                "mch.updates": sum(s["updates"] for s in stats),
                "mch.pool_use": float(np.mean([m.pool_use for m in self.mappers])),
                "mch.region_value_share": sum(s["region_values"] for s in stats) / max(observed,
                                                                                        1)}


def online_maps(specs: tuple[FeatureSpec, ...], mappers: Mapping) -> MCHMaps | None:
    """The online maps of the managed tables of `specs` (config order), None when none is."""
    tables, online, t = [], [], 0
    for spec in specs:
        if spec.managed:
            tables.append(t)
            online.append(mappers[spec.name])
        t += len(spec.table_sizes)
    return MCHMaps(tuple(tables), online) if online else None
