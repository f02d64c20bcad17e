"""`collide report`'s files from the tables `sweep.frontier.evidence.gather` makes: report.md,
configurations.csv, matched.csv, pooled.csv (the cells that differ only by dim, pooled),
collisions.csv, vocabulary.csv, trials.csv (every trial's point, per seed) and frontier.png (and
staleness.csv / .png for a sweep with test windows). Numbers are written with fixed formats
(CSV: repr, exact), so the same tables give byte-identical files (the PNG is not promised to
be).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mappers import strategy_traits
from sweep.frontier.configurations import COMPARED, comparison_columns, strategy_rank
from sweep.frontier.evidence import COLLISION_COLUMNS
from sweep.frontier.pareto import format_bytes
from sweep.frontier.report import format_estimate, format_p
from sweep.frontier.staleness import STALENESS_COLUMNS, staleness_markdown, staleness_plot
from sweep.frontier.stats import ALPHA, LEVEL, finite
from sweep.outputs import write_owned_files

__all__ = ["CONFIGURATION_COLUMNS", "MATCHED_COLUMNS", "REPORT_FILES", "STALENESS_FILES",
           "TRIAL_COLUMNS", "write_csv", "write_report"]

REPORT_FILES = ("report.md", "configurations.csv", "matched.csv", "pooled.csv", "collisions.csv",
                "vocabulary.csv", "trials.csv", "frontier.png")
STALENESS_FILES = ("staleness.csv", "staleness.png")  # only for a sweep with test windows

CONFIGURATION_COLUMNS = (
    "configuration", "strategy", "compression", "dim", "precision", "seeds", "n_seeds",
    "not_ranked",
    "total_bytes",
    "mapping_bytes", "bytes_without_mapping", "test_logloss", "test_logloss_ci", "test_ne",
    "test_ne_ci",
    "test_auc", "test_auc_ci", "val_logloss", "val_logloss_ci", "on_frontier",
    "on_frontier_without_mapping", "total_seconds", "probe_train_seconds",
)
MATCHED_COLUMNS = (
    "compression", "dim", "precision", "strategy", "n_seeds", "total_bytes", "mapping_bytes",
    "test_logloss",
    "test_logloss_ci",
    "test_ne", "test_ne_ci", "test_auc", "test_auc_ci", *comparison_columns(),
)
POOLED_COLUMNS = ("strategy", "compression", "precision", "dims", *comparison_columns())
COLLISION_TABLE_COLUMNS = ("strategy", "compression", "trials", *COLLISION_COLUMNS)
# every trial at each precision it was scored at: the per-seed values the report aggregates
TRIAL_COLUMNS = (
    "trial_id", "name", "strategy", "compression", "dim", "precision", "seed", "status",
    "excluded", "val_logloss", "test_logloss", "test_ne", "test_auc", "total_bytes",
    "embedding_bytes", "mapping_bytes", "best_epoch", "epochs_run", "total_seconds",
    "probe_train_seconds",
)
VOCABULARY_COLUMNS = ("feature", "ids_min", "ids_max", "learned_min", "learned_max", "full_min",
                      "full_max")


# --- writing ---------------------------------------------------------------------------------


def write_report(tables: dict[str, Any], out_dir: str | Path, *, experiment: str,
                 parent_run_id: str,
                 command: str) -> dict[str, Path]:
    """Write REPORT_FILES (and STALENESS_FILES for a sweep with test windows) into `out_dir`
    (collide's own files only, replaced atomically each)."""
    writers = {
        "report.md": lambda p: p.write_text(_markdown(tables, experiment, parent_run_id, command),
                                            encoding="utf-8"),
        "configurations.csv": lambda p: write_csv(p, tables["configurations"],
                                                  CONFIGURATION_COLUMNS),
        "matched.csv": lambda p: write_csv(p, tables["matched"], MATCHED_COLUMNS),
        "pooled.csv": lambda p: write_csv(p, tables["pooled"], POOLED_COLUMNS),
        "collisions.csv": lambda p: write_csv(p, tables["collisions"], COLLISION_TABLE_COLUMNS),
        "vocabulary.csv": lambda p: write_csv(p, tables["vocabulary"], VOCABULARY_COLUMNS),
        "trials.csv": lambda p: write_csv(p, tables["trials"], TRIAL_COLUMNS),
        "frontier.png": lambda p: _plot(tables["configurations"], p, experiment),
    }
    if tables["staleness"]:
        writers["staleness.csv"] = lambda p: write_csv(p, tables["staleness"], STALENESS_COLUMNS)
        writers["staleness.png"] = lambda p: staleness_plot(tables["staleness"], p, experiment)
    # a sweep without windows: an earlier report's staleness files there would describe another
    # sweep
    return write_owned_files(Path(out_dir), "report", writers, retire=STALENESS_FILES)


def write_csv(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """`rows` as CSV with header `columns`: floats as repr (exact), None as empty, lists joined
    by spaces; a missing key is empty. The results/ summary scripts write theirs with it too."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow([_csv(row.get(c)) for c in columns])


def _csv(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return str(value)


def _estimate(row: Mapping[str, Any], metric: str) -> str:
    return format_estimate(row, metric, missing="-")


def _rate(value: Any) -> str:
    return f"{value:.4f}" if finite(value) else "-"


def _count(value: Any) -> str:
    return f"{value:.1f}" if finite(value) else "-"


def _compression(value: Any) -> str:
    return "-" if value is None else f"{value:g}x"


def _markdown(tables: dict[str, Any], experiment: str, parent_run_id: str, command: str) -> str:
    configurations, matched = tables["configurations"], tables["matched"]
    seeds = ", ".join(str(s) for s in tables["seeds"]) or "none"
    level = f"{LEVEL:.0%}"
    lines = [
        f"# {experiment}: evidence report", "",
        f"Sweep: parent run `{parent_run_id}` of experiment `{experiment}`; {tables['num_trials']} "
        f"trials, {len(configurations)} configurations, seeds {seeds}. {_compute_line(tables)} "
        "Generated from MLflow alone by:", "",
        f"    {command}", "",
        "Every figure is over configurations (strategy x compression x dim x table precision; "
        "a lower precision is the trained model scored with its tables stored so): the mean over "
        "seeds, "
        f"+- the {level} confidence interval (Student t; none with one seed). Losses are test "
        "metrics. Bytes are total_bytes: embedding + mapping + dense, so a learned map pays for "
        "its own ids.", "",
        "![frontier](frontier.png)", "",
        "## Frontier: which strategies, over which sizes", "",
    ]
    segments = tables["segments"]
    if segments:
        lines += ["Frontier of total_bytes (mapping included) vs mean test logloss, smallest "
                  "first:", ""]
        for s in segments:
            span = format_bytes(s["from_bytes"]) if s["from_bytes"] == s["to_bytes"] else \
                f"{format_bytes(s['from_bytes'])} to {format_bytes(s['to_bytes'])}"
            lines.append(f"- `{s['strategy']}`: {span} ({', '.join(s['configurations'])})")
        without = [r["configuration"]
                   for r in sorted(configurations, key=lambda r: r["bytes_without_mapping"] or 0)
                   if r["on_frontier_without_mapping"]]
        lines += ["", f"Without the maps' own bytes the frontier would be: {', '.join(without)}.",
                  ""]
    else:
        lines += ["No configuration has a test logloss, so there is no frontier.", ""]
    versus = tables["versus"]
    if versus:
        tests = tables["tests"]
        lines += ["## Against `hash`, over all matched sizes", "",
                  "Per strategy, over the (compression, dim, precision) cells of the table below: "
                  "in how many "
                  "its paired difference from hash in test logloss is negative (`lower`), in how "
                  f"many the paired {level} CI says better or worse, uncorrected and after Holm's "
                  f"correction over every cell tested (adjusted p < {ALPHA:.2g}), and the per-cell "
                  "differences (negative: lower loss than hash). The cells share seeds and data, "
                  "so they are not independent trials of the question; the section after this "
                  "pools the cells that differ only by dim.", "",
                  f"{tests['tested']} cells were tested against hash. If no strategy differed from "
                  f"hash, chance alone would make about {tests['chance']:.1f} of their uncorrected "
                  f"intervals exclude 0; {tests['clear']} do. After Holm's correction "
                  f"{tests['clear_after_holm']} stay clear.", "",
                  "| strategy | cells | lower | better (CI) | worse (CI) | better (Holm) | "
                  "worse (Holm) | mean difference | lowest | highest |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in versus:
            lines.append(f"| `{r['strategy']}` | {r['cells']} | {r['lower']} | {r['better']} | "
                         f"{r['worse']} | {r['better_holm']} | {r['worse_holm']} | "
                         f"{r['mean']:+.4f} | {r['lowest']:+.4f} | {r['highest']:+.4f} |")
        lines.append("")
    lines += _pooled_markdown(tables["pooled"], level)
    lines += ["## Matched sizes: each strategy against `hash`", "",
              "Same compression and dim = the same embedding rows, compared at the same table "
              "precision. `vs hash` is the mean of the "
              "per-seed differences in test logloss (negative: lower loss than hash), +- its "
              f"{level} CI, over the seeds both ran; the verdict says whether that interval "
              "excludes 0.", ""]
    if matched:
        header = ["compression", "dim", "precision", "strategy", "seeds", "total_bytes", "mapping",
                  "test_logloss", "test_ne",
                  "test_auc", "vs hash", "verdict", "after Holm"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for r in matched:
            lines.append("| " + " | ".join([
                _compression(r["compression"]), str(r["dim"]), str(r["precision"]),
                f"`{r['strategy']}`",
                str(r["n_seeds"]),
                format_bytes(r["total_bytes"]), format_bytes(r["mapping_bytes"] or 0),
                _estimate(r, "test_logloss"),
                _estimate(r, "test_ne"), _estimate(r, "test_auc"),
                format_estimate(r, "vs_hash", missing="-", sign=True), r["vs_hash_verdict"],
                r["vs_hash_holm_verdict"],
            ]) + " |")
    else:
        lines.append("No compressed configuration completed.")
    full = [r for r in configurations if not strategy_traits(r["strategy"]).takes_compression
            and r["n_seeds"]]
    if full:
        lines += ["", "Reference, the full table: " + "; ".join(
            f"d{r['dim']} {r['precision']}: {format_bytes(r['total_bytes'])}, test logloss "
            f"{_estimate(r, 'test_logloss')}" for r in full)
            + "."]
    lines += ["", "## Every configuration", "",
              "`compute`: a trial's seconds (mapping, training, evaluation, scoring its "
              "precisions; mean over seeds), plus its probe's training for a learned map (the "
              "probe of a seed is trained once and shared by every learned configuration of that "
              "seed; `-` where the sweep did not record it). A lower precision is the same trial "
              "scored again.", "",
              "| configuration | seeds | total_bytes | without mapping | test_logloss | "
              "val_logloss | compute | frontier |",
              "|---|---|---|---|---|---|---|---|"]
    for r in configurations:
        where = ", ".join(n for n, f in (("with map bytes", r["on_frontier"]),
                                         ("without", r["on_frontier_without_mapping"])) if f) or ""
        seeds_cell = ",".join(str(s) for s in r["seeds"]) + (f" ({r['not_ranked']} not ranked)"
                                                             if r["not_ranked"] else "")
        lines.append(f"| {r['configuration']} | {seeds_cell} | {_size(r['total_bytes'])} | "
                     f"{_size(r['bytes_without_mapping'])} | {_estimate(r, 'test_logloss')} | "
                     f"{_estimate(r, 'val_logloss')} | {_compute(r)} | {where} |")
    lines += ["", "## Collisions", "",
              "Per strategy and compression, the mean over its trials (all dims and seeds) of the "
              "frequency-weighted collision rate (the share of training accesses whose row another "
              "training id shares), the share of test values unseen in training, the share of "
              "values sent to a fallback row, the share of the mapped tables' rows that no "
              "training id reaches (bytes training never updates), the mean and max training ids "
              "per row reached, and NMI / purity of rows against the planted clusters (synthetic "
              "data only; `-` elsewhere).", "",
              "| strategy | compression | trials | collision rate | unseen | fallback | unused "
              "rows | ids per row | max ids per row | NMI | purity |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in tables["collisions"]:
        lines.append(f"| `{r['strategy']}` | {_compression(r['compression'])} | {r['trials']} | "
                     + " | ".join(_count(r[c]) if c.endswith("ids_per_row") else _rate(r[c])
                                  for c in COLLISION_COLUMNS) + " |")
    lines.append("")
    lines += _vocabulary_markdown(tables["vocabulary"])
    if tables["staleness"]:
        lines += ["![staleness](staleness.png)", "", *staleness_markdown(tables["staleness"])]
    return "\n".join(lines)


def _pooled_markdown(pooled: list[dict], level: str) -> list[str]:
    if not pooled:
        return []
    others = [o for o in COMPARED if any(r.get(f"vs_{o}_pairs") for r in pooled)]
    lines = ["## Pooled over dims", "",
             "The cells of a strategy that differ only by dim, as one test: per seed, the mean of "
             "its per-dim differences in test logloss, then the paired "
             f"{level} CI over seeds and the two-sided t-test's p, adjusted by Holm over the rows "
             f"of this table (a verdict is clear when the adjusted p < {ALPHA:.2g}). "
             + "".join(f"`vs {o}`: the same against `{o}`, Holm over its own rows. "
                       for o in others), "",
             "| compression | precision | strategy | dims | vs hash | p | Holm p | verdict "
             + "".join(f"| vs {o} | Holm p " for o in others) + "|",
             "|" + "---|" * (8 + 2 * len(others))]
    for r in pooled:
        cells = [_compression(r["compression"]), str(r["precision"]), f"`{r['strategy']}`",
                 ",".join(str(d) for d in r["dims"]),
                 format_estimate(r, "vs_hash", missing="-", sign=True), format_p(r["vs_hash_p"]),
                 format_p(r["vs_hash_p_holm"]), r["vs_hash_holm_verdict"]]
        for o in others:
            cells += [format_estimate(r, f"vs_{o}", missing="-", sign=True),
                      format_p(r[f"vs_{o}_p_holm"])]
        lines.append("| " + " | ".join(cells) + " |")
    return [*lines, ""]


def _vocabulary_markdown(vocabulary: list[dict]) -> list[str]:
    if not vocabulary:
        return []
    lines = ["## Vocabulary", "",
             "Per feature, over the trials: its training vocabulary (`ids`), the ids seen at least "
             "`model.learned_min_count` times in training (`learned`: what a learned map keeps; "
             "the rest it hashes), and whether it keeps a full table (vocabulary <= "
             "`model.full_threshold`). A range is the least and most over the trials: the data "
             "differed between them (it varies with the seed).", "",
             "| feature | ids | learned | table |", "|---|---|---|---|"]
    for r in vocabulary:
        table = {(1, 1): "full", (0, 0): "mapped"}.get((r["full_min"], r["full_max"]),
                                                         "full in some trials")
        if r["feature"] == "all":
            table = f"{r['full_max']} full" if r["full_min"] == r["full_max"] else \
                f"{r['full_min']}-{r['full_max']} full"
        lines.append(f"| {r['feature']} | {_span(r['ids_min'], r['ids_max'])} | "
                     f"{_span(r['learned_min'], r['learned_max'])} | {table} |")
    return [*lines, ""]


def _span(low: Any, high: Any) -> str:
    if low is None:
        return "-"
    return f"{low:,}" if low == high else f"{low:,} to {high:,}"


def _compute_line(tables: Mapping[str, Any]) -> str:
    """The sweep's compute in a sentence: its trials' seconds, and its probes' where it has any."""
    c = tables["compute"]
    line = (f"Compute: {c['trial_seconds']:,.0f} s of trials ({c['trial_seconds'] / 3600:.1f} h; "
            f"{c['trials_timed']} of {tables['num_trials']} trials recorded theirs)")
    if c["probes"] and not c["probes_timed"]:
        line += (f"; its {c['probes']} probes (one per seed) were trained earlier and cached, so "
                 "their time is not recorded")
    elif c["probes"]:
        line += (f", plus {c['probe_seconds']:,.0f} s training {c['probes_timed']} of "
                 f"{c['probes']} probes (one per seed; a probe trained earlier and cached "
                 "records none)")
    return line + "."


def _compute(row: Mapping[str, Any]) -> str:
    """`12 s`, or `12 s + 30 s probe` for a learned map; "-" when the trials did not record it."""
    trial, probe = row.get("total_seconds"), row.get("probe_train_seconds")
    if not finite(trial):
        return "-"
    if not strategy_traits(row["strategy"]).needs_embeddings:
        return f"{trial:.0f} s"
    return f"{trial:.0f} s + {f'{probe:.0f}' if finite(probe) else '-'} s probe"


def _size(value: Any) -> str:
    return format_bytes(value) if finite(value) else "-"


def _plot(configurations: list[dict], path: Path, experiment: str) -> None:
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(13, 5), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.subplots(1, 2, sharey=True)
    palette = colormaps["tab10"]
    strategies = sorted({r["strategy"] for r in configurations}, key=strategy_rank)
    panels = (("total_bytes", "on_frontier",
               "total bytes (embedding + mapping + dense), log scale"),
              ("bytes_without_mapping", "on_frontier_without_mapping",
               "bytes without the map's own (embedding + dense), log scale"))
    for ax, (x, flag, label) in zip(axes, panels, strict=True):
        drawn = [r for r in configurations if finite(r.get(x)) and r[x] > 0
                 and finite(r.get("test_logloss"))]
        for k, strategy in enumerate(strategies):
            points = [r for r in drawn if r["strategy"] == strategy]
            if not points:
                continue
            ax.errorbar([r[x] for r in points], [r["test_logloss"] for r in points],
                        yerr=[r["test_logloss_ci"] if finite(r.get("test_logloss_ci")) else 0.0
                              for r in points],
                        fmt="o", color=palette(k % 10), markersize=4, capsize=2, elinewidth=1,
                        label=strategy)
        front = sorted((r for r in drawn if r[flag]), key=lambda r: r[x])
        if front:
            ax.scatter([r[x] for r in front], [r["test_logloss"] for r in front], s=70,
                       facecolors="none",
                       edgecolors="black", linewidths=1.2, zorder=3)
            ax.step([r[x] for r in front], [r["test_logloss"] for r in front], where="post",
                    color="black",
                    linewidth=1, label=f"frontier ({len(front)})")
        if drawn:
            ax.set_xscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(f"test log loss, mean +- {LEVEL:.0%} CI over seeds")
    axes[0].set_title("with the map's bytes (the honest axis)")
    axes[1].set_title("without them: as if a learned map were free")
    axes[0].legend(fontsize="small", loc="best")
    figure.suptitle(f"{experiment}: size vs test log loss, per configuration")
    figure.tight_layout()
    figure.savefig(path, format="png", metadata={"Software": None})

