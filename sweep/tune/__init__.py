"""The Ray Tune layer: grid points, the sweep runner, MLflow tracking from the driver.

Only this package (and the CLI above it) starts Ray; `sweep.tracking.writer` is the single
MLflow writer of a sweep.
"""

from __future__ import annotations

from sweep.tune.points import POINT_KEYS, grid_points, point_name, point_of

__all__ = ["POINT_KEYS", "grid_points", "point_name", "point_of"]
