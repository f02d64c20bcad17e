"""The frontier layer: Pareto maths (pure numpy), its report files, and export of a point.

`sweep.frontier.pareto` and `sweep.frontier.report` never touch MLflow or Ray;
`sweep.frontier.export` reads a sweep back from MLflow and writes a verified bundle set.
"""

from __future__ import annotations

from sweep.frontier.pareto import format_bytes, frontier_table, pareto_mask, select_point

__all__ = ["format_bytes", "frontier_table", "pareto_mask", "select_point"]
