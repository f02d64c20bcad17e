"""A sweep's Pareto files: pareto.csv, pareto.png, pareto.md and pareto-trials.csv.

The one writer of these files, for the end of a sweep (`sweep.tune.ending`), `collide pareto`
and `collide sync`. It takes trial rows (`sweep.tracking.records.trial_rows`), never MLflow.
"""

from __future__ import annotations

from pathlib import Path

from sweep.frontier.configurations import precision_points, ranked_rows
from sweep.frontier.pareto import frontier_table
from sweep.frontier.report import (
    plot_pareto,
    write_configurations_md,
    write_pareto_csv,
    write_pareto_md,
)
from sweep.outputs import write_owned_files

__all__ = ["PARETO_FILES", "write_pareto_files"]

PARETO_FILES = ("pareto.csv", "pareto.png", "pareto.md", "pareto-trials.csv")


def write_pareto_files(rows: list[dict], out_dir: Path, title: str, per_trial: bool = False
                       ) -> tuple[list[dict], list[dict], dict[str, Path]]:
    """(the trial table, the ranked table, the files) for trial `rows`, written into `out_dir`
    (collide's files only): pareto.csv/png/md rank configurations (mean over seeds, 95% CI) when
    some configuration has several seeds, and trials otherwise or with `per_trial`;
    pareto-trials.csv always holds every trial."""
    rows = precision_points(rows)  # a point per trial and table precision
    trials = frontier_table(rows)
    ranked, view = ranked_rows(rows, per_trial)
    if view == "configurations":
        table = frontier_table(ranked)
        title = f"{title} (configurations: mean over seeds, 95% CI)"
        markdown = lambda p: write_configurations_md(table, p, title=title)  # noqa: E731
    else:
        table = trials
        markdown = lambda p: write_pareto_md(table, p, title=title)  # noqa: E731
    files = write_owned_files(Path(out_dir), "pareto", {
        "pareto.csv": lambda p: write_pareto_csv(table, p),
        "pareto.png": lambda p: plot_pareto(table, p, title=title),
        "pareto.md": markdown,
        "pareto-trials.csv": lambda p: write_pareto_csv(trials, p),
    }, option="results directory")
    return trials, table, files
