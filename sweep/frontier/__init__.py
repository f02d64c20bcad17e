"""The frontier layer: Pareto maths (pure numpy), configurations over seeds, the report files,
the evidence report, and the export of a point.

Nothing here touches MLflow or Ray: it works on trial rows (`sweep.tracking.records`) and on
local copies of a run's artifacts, which `sweep.api` and `sweep.tune` hand it.
"""

from __future__ import annotations

from sweep.frontier.pareto import format_bytes, frontier_table, pareto_mask, select_point

__all__ = ["format_bytes", "frontier_table", "pareto_mask", "select_point"]
