"""Write a Pareto table (from ``sweep.frontier.frontier_table``) as CSV, Markdown and PNG.

The table is a list of trial rows, or of configuration rows (sweep.frontier.configurations,
drawn with their 95% CI as error bars), with ``on_frontier`` set. Column names the Markdown
report looks for: ``strategy``, ``compression``, ``dim``, ``seed`` (always shown, blank when
missing), ``test_logloss`` and ``compression_ratio`` (shown when any frontier row has them).
The plot uses matplotlib's object API with the Agg canvas, so importing or calling this
module never changes the global matplotlib backend or pyplot state.
"""

from __future__ import annotations

import csv
import json
import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sweep.frontier.pareto import format_bytes

__all__ = ["format_estimate", "format_p", "plot_pareto", "write_configurations_md",
           "write_pareto_csv", "write_pareto_md"]

# CSV columns put first when present; every other key follows in first-seen order.
_LEADING_COLUMNS = (
    "configuration", "trial_id", "strategy", "compression", "dim", "precision", "seed", "seeds",
    "n_seeds",
    "total_bytes", "val_logloss", "val_logloss_ci", "test_logloss", "test_logloss_ci",
    "compression_ratio", "on_frontier",
)
_AXIS_LABELS = {
    "total_bytes": "total bytes (embedding + mapping + dense), log scale",
    "val_logloss": "validation log loss (nats, lower is better)",
    "test_logloss": "test log loss (nats, lower is better)",
}


def write_pareto_csv(table: Iterable[Mapping[str, Any]], path: str | os.PathLike) -> Path:
    """Write every row (frontier or not) to ``path`` as CSV; returns the path.

    Missing values and None are empty cells; floats are written exactly (repr), lists and
    dicts as JSON.
    """
    rows = _frontier_rows(table, need_flag=False)
    columns = [c for c in _LEADING_COLUMNS if any(c in row for row in rows)]
    for row in rows:
        columns.extend(key for key in row if key not in columns)
    path = _prepare(path)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv_cell(row.get(column)) for column in columns])
    return path


def write_pareto_md(
    table: Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str = "Pareto frontier",
    x: str = "total_bytes",
    y: str = "val_logloss",
) -> Path:
    """Markdown report: the frontier rows sorted by ``x``, then trial and frontier counts."""
    rows = _frontier_rows(table, need_flag=True)
    front = sorted((r for r in rows if r["on_frontier"]), key=lambda r: _number(r.get(x)))
    completed = sum(1 for r in rows if _is_number(r.get(x)) and _is_number(r.get(y)))
    optional = [c for c in ("test_logloss", "compression_ratio") if c not in (x, y)]
    optional = [c for c in optional if any(r.get(c) is not None for r in front)]
    header = ["strategy", "compression", "dim", "precision", "seed", x, f"{x} (raw)", y,
              *optional]
    lines = [f"# {title}", "", f"Frontier of {x} vs {y}, both minimised, sorted by {x}.", ""]
    if front:
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in front:
            cells = [_md_cell(row.get(c)) for c in ("strategy", "compression", "dim", "precision",
                                                    "seed")]
            cells += [_md_size(row.get(x)) if x.endswith("bytes") else _md_cell(row.get(x))]
            cells += [_md_cell(row.get(x)), _md_cell(row.get(y))]
            for column in optional:
                value = row.get(column)
                ratio = column == "compression_ratio" and _is_number(value)
                cells.append(f"{value:.1f}x" if ratio else _md_cell(value))
            lines.append("| " + " | ".join(cells) + " |")
    else:
        lines.append("No completed trials, so no frontier.")
    lines += [
        "",
        f"{len(rows)} trials: {completed} ranked, {len(rows) - completed} not ranked "
        f"(no {x} or {y}); {len(front)} on the frontier.",
        "",
    ]
    return _write_md(path, lines + _not_ranked(rows, lambda r: r.get("name") or r.get("trial_id")))


def write_configurations_md(
    table: Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str = "Pareto frontier over configurations",
) -> Path:
    """Markdown report of a configuration table (sweep.frontier.configurations, with
    ``on_frontier``): the frontier configurations by total_bytes, each loss as mean +- 95% CI
    over its seeds, the seed whose bundles export would write, then the counts."""
    rows = _frontier_rows(table, need_flag=True)
    front = sorted((r for r in rows if r["on_frontier"]),
                   key=lambda r: _number(r.get("total_bytes")))
    ranked = sum(1 for r in rows if _is_number(r.get("total_bytes"))
                 and _is_number(r.get("val_logloss")))
    seeds = sorted({s for r in rows for s in r.get("seeds") or []})
    lines = [f"# {title}", "",
             "Frontier of total_bytes vs val_logloss, both minimised, sorted by total_bytes. A "
             "configuration (strategy x compression x dim) is ranked by its mean over seeds; +- is "
             "the 95% confidence interval (Student t); a configuration ending in -fp16, -int8 or "
             "-int4 is the trained model with its tables stored at that precision. `median seed` "
             "is the seed of median val "
             "loss, whose bundles `collide export` writes.", ""]
    if front:
        header = ["configuration", "seeds", "total_bytes", "val_logloss", "test_logloss",
                  "test_auc",
                  "compression_ratio", "median seed"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for row in front:
            ratio = row.get("compression_ratio")
            lines.append("| " + " | ".join([
                _md_cell(row.get("configuration")), _md_seeds(row),
                _md_size(row.get("total_bytes")),
                format_estimate(row, "val_logloss"), format_estimate(row, "test_logloss"),
                format_estimate(row, "test_auc"),
                f"{ratio:.1f}x" if _is_number(ratio) else "", _md_cell(row.get("median_seed")),
            ]) + " |")
    else:
        lines.append("No configuration completed, so no frontier.")
    lines += ["", f"{len(rows)} configurations over seeds "
                  f"{', '.join(str(s) for s in seeds) or 'none'}: {ranked} ranked, "
                  f"{len(rows) - ranked} not ranked; {len(front)} on the frontier.", ""]
    partial = [r for r in rows if r.get("not_ranked") and r.get("n_seeds")]
    if partial:
        lines += ["Ranked on fewer seeds (a trial failed or was excluded):", ""]
        lines += [f"- {r['configuration']}: {r['n_seeds']} of {r['n_seeds'] + r['not_ranked']} "
                  "seeds" for r in partial]
        lines.append("")
    return _write_md(path, lines + _not_ranked(rows, lambda r: r["configuration"]))


def _not_ranked(rows: list[Mapping], label: Any) -> list[str]:
    """The "Not ranked:" list of a Markdown report: each excluded row by `label(row)`, with why."""
    excluded = [r for r in rows if r.get("excluded")]
    if not excluded:
        return []
    return ["Not ranked:", "", *(f"- {label(r)}: {r['excluded']}" for r in excluded), ""]


def _write_md(path: str | os.PathLike, lines: list[str]) -> Path:
    path = _prepare(path)
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def plot_pareto(
    table: Iterable[Mapping[str, Any]],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    x: str = "total_bytes",
    y: str = "val_logloss",
) -> Path:
    """Scatter of every completed trial (log-x), coloured by strategy, frontier as a step line.

    Rows whose x is not finite and positive, or whose y is not finite, cannot be drawn on a
    log axis; their count is noted in the legend. Returns the path of the PNG.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = _frontier_rows(table, need_flag=True)
    drawable = [r for r in rows if _drawable(r.get(x), log=True) and _drawable(r.get(y))]
    skipped = len(rows) - len(drawable)
    figure = Figure(figsize=(8, 5), dpi=120)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    strategies = sorted({str(r.get("strategy", "unknown")) for r in drawable})
    palette = colormaps["tab10"]
    for k, strategy in enumerate(strategies):
        points = [r for r in drawable if str(r.get("strategy", "unknown")) == strategy]
        on_front = [bool(r["on_frontier"]) for r in points]
        spread = [r.get(f"{y}_ci") for r in points]
        if any(_drawable(c) for c in spread):  # configurations: the 95% CI over seeds
            axes.errorbar([float(r[x]) for r in points], [float(r[y]) for r in points],
                          yerr=[float(c) if _drawable(c) else 0.0 for c in spread], fmt="none",
                          ecolor=palette(k % 10), elinewidth=1.0, capsize=2, alpha=0.8)
        axes.scatter(  # frontier points larger, with a black edge
            [float(r[x]) for r in points], [float(r[y]) for r in points], label=strategy,
            facecolors=[palette(k % 10)] * len(points), s=[44 if f else 22 for f in on_front],
            edgecolors=[(0.0, 0.0, 0.0, 1.0 if f else 0.0) for f in on_front],
        )
    front = sorted((r for r in drawable if r["on_frontier"]), key=lambda r: float(r[x]))
    if front:
        axes.step(
            [float(r[x]) for r in front], [float(r[y]) for r in front], where="post",
            color="black", linewidth=1.2, label=f"Pareto frontier ({len(front)} points)",
        )
    if skipped:
        axes.plot([], [], " ", label=f"{skipped} failed / not drawable")
    if drawable:
        axes.set_xscale("log")
        axes.legend(fontsize="small", loc="best")
    else:
        axes.text(0.5, 0.5, "no completed trials", ha="center", va="center",
                  transform=axes.transAxes)
    axes.set_xlabel(_AXIS_LABELS.get(x, x))
    axes.set_ylabel(_AXIS_LABELS.get(y, y))
    axes.set_title(title or f"Pareto frontier: {x} vs {y} ({len(rows)} trials)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    path = _prepare(path)
    figure.savefig(path, format="png")
    return path


def _frontier_rows(table: Iterable[Mapping[str, Any]], *, need_flag: bool) -> list[Mapping]:
    if isinstance(table, Mapping | str | bytes):
        raise TypeError(f"table must be a list of row mappings, got {type(table).__name__}")
    rows = list(table)
    for i, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise TypeError(f"table[{i}] must be a mapping, got {type(row).__name__}")
        if need_flag and "on_frontier" not in row:
            raise ValueError(
                f"table[{i}] has no 'on_frontier' field; build the table with "
                "sweep.frontier.frontier_table(rows)"
            )
    return rows


def _prepare(path: str | os.PathLike) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _is_number(value: Any) -> bool:
    """A real number that is not NaN (numpy scalars included, bools excluded)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return False
    return not math.isnan(float(value))


def _number(value: Any) -> float:
    return float(value) if _is_number(value) else math.inf


def _drawable(value: Any, *, log: bool = False) -> bool:
    return _is_number(value) and math.isfinite(float(value)) and (not log or float(value) > 0)


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return str(int(value))
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return repr(float(value))  # shortest text that reads back to the same float
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, Mapping | Sequence) and not isinstance(value, str | bytes):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def _md_cell(value: Any) -> str:
    if value is None:
        return ""
    real = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)
    text = f"{float(value):.6g}" if real else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def _md_size(value: Any) -> str:
    return format_bytes(float(value)) if _is_number(value) else _md_cell(value)


def format_p(value: Any) -> str:
    """A p-value for a table: 4 decimals, "< 0.0001" below that, "-" when there is none."""
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        return "-"
    return f"{value:.4f}" if value >= 0.0001 else "< 0.0001"


def format_estimate(row: Mapping[str, Any], metric: str, *, missing: str = "",
                    sign: bool = False) -> str:
    """`mean +- ci` of `metric` in a configuration row (the mean alone with one seed), 4 decimals;
    `missing` when there is no mean; `sign`: always show the mean's sign (differences)."""
    mean, ci = row.get(metric), row.get(f"{metric}_ci")
    if not _is_number(mean) or not math.isfinite(float(mean)):
        return missing
    text = f"{float(mean):+.4f}" if sign else f"{float(mean):.4f}"
    return f"{text} +- {float(ci):.4f}" if _is_number(ci) else text


def _md_seeds(row: Mapping[str, Any]) -> str:
    seeds = ",".join(str(s) for s in row.get("seeds") or [])
    missing = row.get("not_ranked") or 0
    if not missing:
        return seeds
    return f"{seeds} ({row.get('n_seeds', 0)} of {row.get('n_seeds', 0) + missing})"
