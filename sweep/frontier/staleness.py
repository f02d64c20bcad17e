"""Staleness: how a map fitted on early data does on later data, from a sweep's test windows.

A sweep run with `test_windows: K` on time-ordered data (sweep.trial) logs, per trial and per
window k = 1 (earliest) .. K of the test split, `window.<k>.test_logloss` and the window's
`unseen_value_rate` (values whose id never occurs in training) and `rare_value_rate` (seen
fewer than learned_min_count times, unseen included: what a learned map hashes). The maps were
fitted on the training rows, which all come before the test split, so a later window is an
older map.

`staleness_rows(trials)` gives one row per (strategy, compression, dim, window):

- the window's rows and unseen / rare rates (means over the trials; data facts);
- test logloss, mean +- 95% CI over seeds, and the constant predictor's logloss;
- `vs_hash`: the difference from `hash` at the same compression, dim and window, paired by
  seed (negative: lower loss than hash), with its CI, pair count and verdict;
- `vs_hash_change`: how that difference moved since window 1, paired by seed
  ((d_k - d_1) per seed; positive: the map lost ground to hash, its lead shrank or its lag grew),
  its two-sided p, and at the last window its p Holm-adjusted over every configuration's change
  (`vs_hash_change_p_holm`: one family, one test per configuration);
- `vs_frequency` for the learned maps: what the embedding adds to counts, in that window.
All comparisons are those of the matched-size table (sweep.frontier.configurations.comparisons).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweep.frontier.configurations import (
    BASELINE,
    apply_holm,
    comparison_columns,
    comparisons,
    configuration_key,
    per_seed,
    strategy_rank,
)
from sweep.frontier.report import format_estimate, format_p
from sweep.frontier.stats import LEVEL, finite, holm, mean_ci, p_value

__all__ = ["STALENESS_COLUMNS", "staleness_markdown", "staleness_plot", "staleness_rows"]

PREFIX = "window."
DATA_COLUMNS = ("rows", "unseen_value_rate", "rare_value_rate", "constant_test_logloss")
STALENESS_COLUMNS = (
    "strategy", "compression", "dim", "window", "n_seeds", *DATA_COLUMNS, "test_logloss",
    "test_logloss_ci",
    *comparison_columns()[:4], "vs_hash_change", "vs_hash_change_ci", "vs_hash_change_p",
    "vs_hash_change_p_holm", *comparison_columns()[4:],
)


def _windows(trial: Mapping[str, Any]) -> list[int]:
    return sorted({int(key.split(".")[1]) for key in trial if key.startswith(PREFIX)
                   and key.endswith(".test_logloss")})


def _loss(window: int) -> str:
    return f"{PREFIX}{window}.test_logloss"


def staleness_rows(trials: list[Mapping[str, Any]]) -> list[dict]:
    """One row per (strategy, compression, dim, window) over the ranked trials that have windows."""
    windows = sorted({w for t in trials if t.get("excluded") is None for w in _windows(t)})
    # {window: {configuration key: {seed: loss}}}
    losses = {w: per_seed(trials, _loss(w)) for w in windows}
    by_config: dict[tuple, list[Mapping[str, Any]]] = {}
    for t in trials:
        if t.get("excluded") is None:
            by_config.setdefault(configuration_key(t), []).append(t)
    rows = []
    for window in windows:
        for config, seeds in losses[window].items():
            strategy, compression, dim, _ = config
            estimate = mean_ci([seeds[s] for s in sorted(seeds)])
            row: dict[str, Any] = {"strategy": strategy, "compression": compression, "dim": dim,
                                   "window": window,
                                   "n_seeds": len(seeds), "test_logloss": estimate.mean,
                                   "test_logloss_ci": estimate.half_width}
            members = [t for t in by_config[config] if finite(t.get(_loss(window)))]
            for column in DATA_COLUMNS:
                values = [float(t[f"{PREFIX}{window}.{column}"]) for t in members
                          if finite(t.get(f"{PREFIX}{window}.{column}"))]
                row[column] = math.fsum(values) / len(values) if values else None
            if row["rows"] is not None:
                row["rows"] = int(round(row["rows"]))
            row.update(comparisons(losses[window], config))
            change = _change(losses, config, window) if row["vs_hash"] is not None else None
            row["vs_hash_change"] = change.mean if change else None
            row["vs_hash_change_ci"] = change.half_width if change else None
            row["vs_hash_change_p"] = p_value(change)
            rows.append(row)
    rows.sort(key=lambda r: (strategy_rank(r["strategy"]), r["compression"] is not None,
                             r["compression"] or 0.0,
                             r["dim"] or 0, r["window"]))
    apply_holm(rows)  # every window of every configuration: one family
    # the changes from the first window to the last, one per configuration: another family
    last = [r for r in rows if windows and r["window"] == windows[-1]]
    for row in rows:
        row["vs_hash_change_p_holm"] = None
    for row, adjusted in zip(last, holm([r["vs_hash_change_p"] for r in last]), strict=True):
        row["vs_hash_change_p_holm"] = adjusted
    return rows


def _change(losses: Mapping[int, Mapping[tuple, Mapping[int, float]]], config: tuple,
            window: int) -> Any:
    """(d_window - d_1) per seed, d = loss - hash's loss: mean and CI over the seeds all four
    share."""
    if window == 1 or 1 not in losses:
        return None
    strategy, compression, dim, precision = config
    parts = [losses[w].get(key, {}) for key in (config, (BASELINE, compression, dim, precision))
             for w in (window, 1)]
    shared = sorted(set.intersection(*(set(p) for p in parts)))
    if not shared:
        return None
    now, base_now, first, base_first = parts
    return mean_ci([(now[s] - base_now[s]) - (first[s] - base_first[s]) for s in shared])


def staleness_markdown(rows: list[dict]) -> list[str]:
    """The report's staleness section: window facts, then each strategy's difference from hash per
    window."""
    windows = sorted({r["window"] for r in rows})
    level = f"{LEVEL:.0%}"
    facts = {r["window"]: r for r in rows}  # the data facts are the same in every row of a window
    lines = ["## Staleness: the maps against later and later test windows", "",
             f"The test split, in time order, cut into {len(windows)} windows of equal rows; every "
             "map was fitted on the training rows, which all come before it, so a later window "
             "meets an older map. `unseen`: share of the window's values whose id never occurs in "
             "training; `rare`: seen fewer than learned_min_count times, unseen included (the ids "
             "a learned map hashes).", "",
             "| window | " + " | ".join(str(w) for w in windows) + " |", "|---|"
             + "---|" * len(windows)]
    for column, label in (("rows", "rows"), ("unseen_value_rate", "unseen"),
                          ("rare_value_rate", "rare"),
                          ("constant_test_logloss", "constant predictor logloss")):
        cells = [(str(facts[w][column]) if column == "rows" else f"{facts[w][column]:.4f}")
                 if finite(facts[w][column]) else "-" for w in windows]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    compared = [r for r in rows if r["vs_hash"] is not None or r["strategy"] == BASELINE]
    lines += ["", "Difference from `hash` in test logloss per window, paired by seed, mean +- "
                  f"{level} CI (negative: lower loss than hash); `change` is the last window's "
                  "difference minus the first's, paired by seed (positive: the map lost ground to "
                  "hash as it aged), and `Holm p` its p adjusted over every configuration's change "
                  "(clear when below 0.05).", ""]
    cells = sorted({(r["compression"], r["dim"], r["strategy"]) for r in compared
                    if r["strategy"] != BASELINE},
                   key=lambda k: (k[0], k[1], strategy_rank(k[2])))
    if not cells:
        return lines + ["No strategy shares seeds with `hash` here, so there is no difference to "
                        "show.", ""]
    by_key = {(r["compression"], r["dim"], r["strategy"], r["window"]): r for r in rows}
    lines += ["| compression | dim | strategy | " + " | ".join(f"window {w}" for w in windows)
              + " | change | Holm p |",
              "|---|---|---|" + "---|" * (len(windows) + 2)]
    for compression, dim, strategy in cells:
        entries = [by_key.get((compression, dim, strategy, w), {}) for w in windows]
        lines.append(f"| {compression:g}x | {dim} | `{strategy}` | "
                     + " | ".join(format_estimate(e, "vs_hash", missing="-", sign=True)
                                  for e in entries)
                     + " | "
                     f"{format_estimate(entries[-1], 'vs_hash_change', missing='-', sign=True)} | "
                     f"{format_p(entries[-1].get('vs_hash_change_p_holm'))} |")
    lines.append("")
    return lines



def staleness_plot(rows: list[dict], path: Path, experiment: str) -> None:
    """Difference from hash per test window, one panel per compression, one line per (strategy,
    dim);
    the window's unseen and rare shares label its tick."""
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    compared = [r for r in rows if r["vs_hash"] is not None]
    compressions = sorted({r["compression"] for r in compared}) or [None]
    windows = sorted({r["window"] for r in rows})
    facts = {r["window"]: r for r in rows}
    figure = Figure(figsize=(4.5 * len(compressions) + 1, 4.8), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, len(compressions), sharey=True, squeeze=False)[0]
    palette = colormaps["tab10"]
    series = sorted({(r["strategy"], r["dim"]) for r in compared},
                    key=lambda k: (strategy_rank(k[0]), k[1]))
    ticks = [f"{w}\n{_share(facts[w]['unseen_value_rate'])} "
             f"unseen\n{_share(facts[w]['rare_value_rate'])} rare"
             for w in windows]
    for ax, compression in zip(axes, compressions, strict=True):
        for k, (strategy, dim) in enumerate(series):
            line = sorted((r for r in compared if (r["strategy"], r["dim"], r["compression"]) == (
                strategy, dim, compression)),
                          key=lambda r: r["window"])
            if not line:
                continue
            # side by side, so the intervals do not hide each other
            offset = (k - (len(series) - 1) / 2) * 0.06
            ax.errorbar([r["window"] + offset for r in line], [r["vs_hash"] for r in line],
                        yerr=[r["vs_hash_ci"] if finite(r["vs_hash_ci"]) else 0.0 for r in line],
                        color=palette(strategy_rank(strategy)[0] % 10), marker="o", markersize=4,
                        capsize=2,
                        linewidth=1, label=f"{strategy} d{dim}")
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(windows, ticks, fontsize="x-small")
        ax.set_xlabel("test window (later to the right)")
        ax.set_title("" if compression is None else f"compression {compression:g}x")
        ax.grid(True, alpha=0.3)
    axes[0].set_ylabel(f"test logloss - hash's, mean +- {LEVEL:.0%} CI")
    if series:
        axes[0].legend(fontsize="x-small", loc="best")
    figure.suptitle(f"{experiment}: each map against hash as it ages (paired by seed; below 0: "
                    "lower loss)")
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})


def _share(value: Any) -> str:
    return f"{value:.1%}" if finite(value) else "-"
