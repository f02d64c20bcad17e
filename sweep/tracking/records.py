"""Reading a sweep back from MLflow: which sweep, which runs, and which of them may be ranked.

A sweep is a parent run tagged `collide.kind = sweep`; its trials are nested runs tagged
`collide.trial_id` (Ray Tune's trial id, stable across `--resume`). A trial may have
several runs (attempts): a run left RUNNING by a killed driver is marked KILLED and the
trial runs again in a new one. `trial_rows` keeps one row per trial, its completed run if
it has one, and says why any other row cannot be on the frontier (`excluded`).

`find_sweep` picks the latest *completed* sweep (parent FINISHED) unless a parent run id
is given, and reports the newer sweeps it skipped, so `pareto` and `export` never rank the
trials of a dead sweep by accident.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow.tracking import MlflowClient

from sweep.errors import UserError
from sweep.names import safe_name

__all__ = ["SweepRuns", "checked_run_id", "experiment_id_of", "experiment_of", "fetch_artifacts",
           "find_sweep",
           "trial_rows"]

log = logging.getLogger(__name__)

# MLflow reads it at each download (mlflow.environment_variables)
PROGRESS_BAR_VARIABLE = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
OUTCOME_TAG = "collide.outcome"  # completed | stopped | failed | killed (set when a trial run ends)
BYTE_KEYS = ("total_bytes", "embedding_bytes", "mapping_bytes", "dense_bytes")


@dataclass(frozen=True)
class SweepRuns:
    parent: Any  # mlflow.entities.Run of the sweep
    runs: list = field(default_factory=list)  # every nested trial run (all attempts)
    skipped: list[str] = field(default_factory=list)  # newer sweeps not used, and why

    @property
    def parent_run_id(self) -> str:
        return self.parent.info.run_id

    def describe(self) -> str:
        p = self.parent.info
        text = f"sweep {p.run_name} (parent run {p.run_id}, {p.status})"
        if self.skipped:
            text += "; skipped newer: " + "; ".join(self.skipped)
        return text


def checked_run_id(run_id: str) -> str:
    """`run_id` if it is a plain name that can be a directory of its own (MLflow's are 32 hex
    digits); a UserError otherwise: run ids come from the tracking store and become paths."""
    if not run_id or safe_name(run_id) != run_id:
        raise UserError(f"the tracking store gave run id {run_id!r}, which is not a plain name; "
                        "collide keeps a sweep's state in a directory named by it")
    return run_id


def experiment_id_of(client: MlflowClient, experiment: str) -> str:
    """The id of the experiment named `experiment`; ValueError listing the known names if none."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise UserError(f"no MLflow experiment named {experiment!r} at this tracking URI; found: "
                        f"{names}")
    return exp.experiment_id


def experiment_of(client: MlflowClient, run_id: str) -> str:
    """The name of the experiment that holds run `run_id`."""
    try:
        return client.get_experiment(client.get_run(run_id).info.experiment_id).name
    except Exception as exc:  # noqa: BLE001 - MLflow raises MlflowException for unknown ids
        raise UserError(f"no run {run_id!r} in this tracking store ({exc})") from None


def _children(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    return client.search_runs([experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                              max_results=50_000)


def find_sweep(client: MlflowClient, experiment: str, parent_run_id: str | None = None, *,
               completed: bool = True) -> SweepRuns:
    """The sweep `parent_run_id` of `experiment`, else its latest (completed, if `completed`)
    sweep."""
    experiment_id = experiment_id_of(client, experiment)
    if parent_run_id is not None:
        try:
            parent = client.get_run(parent_run_id)
        except Exception as exc:  # noqa: BLE001 - MLflow raises MlflowException for unknown ids
            raise UserError(f"no run {parent_run_id!r} in this tracking store ({exc})") from None
        if (parent.info.experiment_id != experiment_id
            or parent.data.tags.get("collide.kind") != "sweep"):
            raise UserError(f"run {parent_run_id} is not a collide sweep of experiment "
                            f"{experiment!r}")
        if completed and parent.info.status != "FINISHED":
            log.warning("sweep %s is %s: its trials are not all finished", parent_run_id,
                        parent.info.status)
        return SweepRuns(parent, _children(client, experiment_id, parent_run_id))
    parents = client.search_runs([experiment_id], "tags.`collide.kind` = 'sweep'",
                                 order_by=["attributes.start_time DESC"], max_results=1000)
    if not parents:
        raise UserError(f"experiment {experiment!r} holds no collide sweep run")
    skipped = []
    for parent in parents:
        if not completed or parent.info.status == "FINISHED":
            return SweepRuns(parent, _children(client, experiment_id, parent.info.run_id), skipped)
        skipped.append(f"{parent.info.run_id} is {parent.info.status}")
    newest = parents[0].info
    raise UserError(f"experiment {experiment!r} has no completed sweep; the newest, "
                    f"{newest.run_id}, is {newest.status}. Resume it with: collide sweep --resume "
                    f"{newest.run_id} --name {experiment}")


def _param_number(text: str | None) -> float | int | None:
    if text in (None, "None", ""):
        return None
    number = float(text)
    return int(number) if number.is_integer() else number


def _exclusion(run: Any) -> str | None:
    """Why this run cannot be ranked on the frontier, or None when it can."""
    status, tags, metrics = run.info.status, run.data.tags, run.data.metrics
    outcome = tags.get(OUTCOME_TAG)
    if status == "FAILED":
        error = (tags.get("error") or "").strip().splitlines()
        return "failed: " + (error[-1][:200] if error else "no error text")
    if status == "KILLED":
        return "interrupted before it finished"
    if status != "FINISHED":
        return f"{status}: still running, or its driver died (resume the sweep)"
    if outcome == "stopped":
        epochs = int(metrics.get("epochs_run", metrics.get("epoch", 0)) or 0)
        rows = metrics.get("rows_trained")  # evaluations within an epoch (train.eval_every_rows)
        seen = (f"{int(rows):,} training rows, inside its first epoch" if rows and not epochs
                else f"{epochs} epoch(s)")
        return (f"stopped early by the scheduler after {seen}: it has no test metrics "
                "and no bundles, so it cannot be exported")
    if outcome not in (None, "completed") or "best_val_logloss" not in metrics:
        return f"no final metrics (outcome {outcome!r})"
    return None


def _preferred(runs: list) -> Any:
    """The run that speaks for a trial: a completed one, else its latest attempt."""
    completed = [r for r in runs if _exclusion(r) is None]
    pool = completed or runs
    return max(pool, key=lambda r: (r.info.start_time or 0, r.info.run_id))


def trial_rows(runs: list) -> list[dict]:
    """One row per trial for the Pareto table: params, final metrics, status and `excluded`."""
    by_trial: dict[str, list] = {}
    for run in runs:
        by_trial.setdefault(run.data.tags.get("collide.trial_id", run.info.run_id), []).append(run)
    rows = []
    for trial_id, attempts in by_trial.items():
        run = _preferred(attempts)
        params, metrics = run.data.params, run.data.metrics
        row = {
            "trial_id": trial_id,
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "attempts": len(attempts),
            "strategy": params.get("strategy"),
            "compression": _param_number(params.get("compression")),
            "dim": _param_number(params.get("dim")),
            "seed": _param_number(params.get("seed")),
        }
        for key in ("best_val_logloss", "test_logloss", "test_auc", "test_ne", *BYTE_KEYS,
                    "compression_ratio",
                    "collision_rate", "unseen_value_rate", "fallback_value_rate",
                    "unused_row_share", "mean_ids_per_row", "max_ids_per_row",
                    "signal_captured", "total_seconds", "probe_train_seconds", "best_epoch",
                    "epochs_run"):
            row[key] = metrics.get(key)
        # against the planted clusters (synthetic data): mean over the features
        for key in ("nmi", "purity"):
            values = [v for k, v in sorted(metrics.items()) if k.startswith("collision.")
                      and k.endswith(f".{key}")]
            row[key] = sum(values) / len(values) if values else None
        for key in BYTE_KEYS:
            if row[key] is not None:
                row[key] = int(row[key])  # MLflow stores metrics as floats; bytes are whole
        # per time window of the test split (sweep option test_windows): window.<k>.test_logloss,
        # ...
        row.update({key: value for key, value in sorted(metrics.items())
                    if key.startswith("window.")})
        # the trial scored at lower table precisions: sweep.frontier.configurations.precision_points
        row.update({key: value for key, value in sorted(metrics.items())
                    if key.startswith("precision.")})
        # the data's vocabulary per feature (collide report's vocabulary table)
        row.update({key: value for key, value in sorted(metrics.items())
                    if key.startswith("vocab.")})
        row["val_logloss"] = row.pop("best_val_logloss")
        row["excluded"] = _exclusion(run)
        if row["excluded"] is not None:
            row["val_logloss"] = None  # excluded trials never sit on the frontier
        rows.append(row)
    return rows


def fetch_artifacts(tracking_uri: str, run_id: str, paths: tuple[str, ...], dst: str
                    | Path) -> Path:
    """Download each of `paths` (files or directories) of run `run_id`'s artifacts into `dst`,
    keeping their relative paths; returns `dst`. MLflow's own progress bars (one per file, a line
    each in a piped log) are off; on a terminal, one line counts the paths fetched."""
    from mlflow.artifacts import download_artifacts

    shown = sys.stderr.isatty()
    previous = os.environ.get(PROGRESS_BAR_VARIABLE)
    os.environ[PROGRESS_BAR_VARIABLE] = "false"
    try:
        for done, path in enumerate(paths, 1):
            download_artifacts(run_id=run_id, artifact_path=path, tracking_uri=tracking_uri,
                               dst_path=str(dst))
            if shown:
                end = "\n" if done == len(paths) else ""
                print(f"\rfetching the artifacts of run {run_id}: {done}/{len(paths)} ({path})",
                      end=end, file=sys.stderr, flush=True)
    finally:
        if previous is None:
            os.environ.pop(PROGRESS_BAR_VARIABLE, None)
        else:
            os.environ[PROGRESS_BAR_VARIABLE] = previous
    return Path(dst)
