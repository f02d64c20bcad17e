"""Sweep points: one (strategy, compression, dim, seed) per trial, and their readable names."""

from __future__ import annotations

from collections.abc import Mapping

from mappers import get_strategy, strategy_traits
from sweep.config import SweepConfig
from sweep.names import trial_name

__all__ = ["POINT_KEYS", "grid_points", "point_name", "point_of"]

POINT_KEYS = ("strategy", "compression", "dim", "seed")


def grid_points(config: SweepConfig) -> list[dict]:
    """The grid as trial points; a strategy that takes no compression (`full`) runs once per
    (dim, seed)."""
    points, seen = [], set()
    g = config.grid
    for strategy in g.strategies:
        sized = get_strategy(strategy).takes_compression
        for compression in g.compressions:
            for dim in g.dims:
                for seed in g.seeds:
                    point = {"strategy": strategy, "compression": float(compression) if sized
                             else None,
                             "dim": int(dim), "seed": int(seed)}
                    key = tuple(point.values())
                    if key not in seen:
                        seen.add(key)
                        points.append(point)
    return points


def point_of(tune_config: Mapping) -> dict:
    """A trial's point from its Tune config (grid search: nested under "point"; optuna: flat)."""
    point = dict(tune_config.get("point", tune_config))
    if not strategy_traits(point.get("strategy")).takes_compression:
        point["compression"] = None
    return {k: point.get(k) for k in POINT_KEYS}


def point_name(point: Mapping) -> str:
    return trial_name(point["strategy"], point["compression"], point["dim"], point["seed"])
