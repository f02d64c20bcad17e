"""The Ray Tune layer: a sweep's points, its run and resume, the pre-flight checks, the trainable.

Only this package (and the CLI above it) starts Ray. It drives MLflow through
`sweep.tracking` (the driver's `SweepTracker` is the sweep's single writer) and writes the
frontier through `sweep.frontier`.
"""

from __future__ import annotations

from sweep.tune.points import POINT_KEYS, grid_points, point_name, point_of

__all__ = ["POINT_KEYS", "grid_points", "point_name", "point_of"]
