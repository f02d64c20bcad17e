"""MLflow tracking for a sweep: one parent run per sweep, one nested run per trial.

Every write goes through `SweepTracker` in the driver process (from the Tune callback
`MlflowTrialCallback`), so a sqlite store has a single writer and never reports
"database is locked". Trials never talk to MLflow: their bundles reach the driver as
Tune checkpoints (persisted to the run's storage_path, shared on a cluster) and are logged
from there through the tracking URI, so a server with proxied artifacts works the same.

Nested run contents: params (the flattened trial config), per-epoch metrics (step =
epoch), final test metrics, the size report, collision stats, and artifacts `bundles/`
(one mapper bundle per feature) plus `metrics.json`. A failed trial's run ends FAILED
with its error in the `error` tag.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from mlflow.entities import Metric, Param, RunStatus
from mlflow.tracking import MlflowClient
from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from sweep.plain import plain
from sweep.points import point_name, point_of

__all__ = [
    "EPOCH_METRICS",
    "MlflowTrialCallback",
    "SweepTracker",
    "default_tracking_uri",
    "flatten",
]

log = logging.getLogger(__name__)

EPOCH_METRICS = ("val_logloss", "val_auc", "val_ne", "val_accuracy", "train_loss", "epoch_seconds",
                 "samples_per_second", "best_val_logloss")
# Keys of a final result that are not metrics: Tune's bookkeeping and the trial's point (logged as params).
NOT_METRICS = frozenset(AUTO_RESULT_KEYS) | {"done", "final", "should_checkpoint", "trial_id", "experiment_tag",
                                             "epoch", "strategy", "compression", "rows", "dim", "seed"}
ERROR_TAG_CHARS = 5000


def default_tracking_uri(launch_dir: str | Path | None = None) -> str:
    """MLFLOW_TRACKING_URI, else an absolute sqlite file in the launch directory."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return "sqlite:///" + str((Path(launch_dir or Path.cwd()) / "mlflow.db").resolve())


def flatten(values: Mapping, prefix: str = "") -> dict[str, Any]:
    """{"train": {"lr": 0.1}} -> {"train.lr": 0.1}."""
    flat = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _numeric(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


class SweepTracker:
    """The sweep's parent run and its nested trial runs, written from one process."""

    def __init__(self, tracking_uri: str, experiment: str, sweep_params: Mapping[str, Any]):
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri)
        self.experiment_id = self._experiment(experiment)
        run = self.client.create_run(self.experiment_id, run_name=f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
                                     tags={"collide.kind": "sweep"})
        self.parent_run_id = run.info.run_id
        self._log_params(self.parent_run_id, flatten(sweep_params))
        self.client.log_text(self.parent_run_id, yaml.safe_dump(plain(sweep_params), sort_keys=False),
                             "sweep_config.yaml")  # the resolved config, loadable with --config
        self.run_ids: dict[str, str] = {}

    def _experiment(self, name: str) -> str:
        existing = self.client.get_experiment_by_name(name)
        if existing is not None:
            return existing.experiment_id
        location = None
        if self.tracking_uri.startswith("sqlite:///"):
            db = Path(self.tracking_uri.removeprefix("sqlite:///"))
            location = (db.parent / "mlartifacts").resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def _log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start:start + 100])

    def start_trial(self, trial_id: str, name: str, params: Mapping[str, Any]) -> str:
        run = self.client.create_run(self.experiment_id, run_name=name, tags={
            "mlflow.parentRunId": self.parent_run_id, "collide.kind": "trial", "collide.trial_id": trial_id})
        self.run_ids[trial_id] = run.info.run_id
        self._log_params(run.info.run_id, flatten(params))
        return run.info.run_id

    def log_metrics(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, step) for k, v in ((k, _numeric(v)) for k, v in metrics.items()) if v is not None]
        if batch:
            self.client.log_batch(self.run_ids[trial_id], metrics=batch)

    def log_artifacts(self, trial_id: str, local_dir: str) -> None:
        self.client.log_artifacts(self.run_ids[trial_id], local_dir)

    def end_trial(self, trial_id: str, error: str | None = None) -> None:
        run_id = self.run_ids.get(trial_id)
        if run_id is None:
            return
        if error is not None:
            self.client.set_tag(run_id, "error", error[-ERROR_TAG_CHARS:])
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED if error else RunStatus.FINISHED))

    def end_sweep(self, trials: int, failed: int, frontier: int) -> None:
        self.client.log_batch(self.parent_run_id, metrics=[
            Metric(k, float(v), int(time.time() * 1000), 0)
            for k, v in (("num_trials", trials), ("num_failed", failed), ("frontier_size", frontier))])
        self.client.set_terminated(self.parent_run_id, RunStatus.to_string(RunStatus.FINISHED))


class MlflowTrialCallback(Callback):
    """Tune callback: mirror each trial's lifecycle, results and checkpoint into MLflow."""

    def __init__(self, tracker: SweepTracker, trial_params: Mapping[str, Any],
                 strategy_params: Mapping[str, Mapping[str, Any]]):
        self.tracker = tracker
        self.trial_params = trial_params  # params shared by every trial (flattened config)
        self.strategy_params = strategy_params  # mapper params per strategy
        self._best: dict[str, float] = {}

    def on_trial_start(self, iteration, trials, trial, **info):
        point = point_of(trial.config)
        mapper_params = {"mapper_params": dict(self.strategy_params.get(point["strategy"], {}))}
        self.tracker.start_trial(trial.trial_id, point_name(point), {**self.trial_params, **mapper_params, **point})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if result.get("final"):
            # the final val_logloss is the best epoch's; the per-epoch history keeps val_logloss itself
            final = {k: v for k, v in result.items() if k not in NOT_METRICS and k not in EPOCH_METRICS}
            final["best_val_logloss"] = result.get("val_logloss")
            self.tracker.log_metrics(trial.trial_id, final, step=int(result.get("epochs_run", 0)))
            return
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        keep = {k: result[k] for k in EPOCH_METRICS if k in result}
        if "val_logloss" in keep:
            best = min(self._best.get(trial.trial_id, math.inf), float(keep["val_logloss"]))
            self._best[trial.trial_id] = best
            keep["best_val_logloss"] = best
        for key in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes", "compression_ratio"):
            if key in result:
                keep[key] = result[key]
        self.tracker.log_metrics(trial.trial_id, keep, step=epoch)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        with checkpoint.as_directory() as local_dir:
            self.tracker.log_artifacts(trial.trial_id, local_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):
        self.tracker.end_trial(trial.trial_id)

    def on_trial_error(self, iteration, trials, trial, **info):
        self.tracker.end_trial(trial.trial_id, error=_error_text(trial))


def _error_text(trial: Any) -> str:
    """The trial's error trace: Tune writes it to the trial's local dir first, storage later."""
    if trial.error_file and Path(trial.error_file).is_file():
        return Path(trial.error_file).read_text()
    return str(trial.get_error() or "trial failed (Tune recorded no error text)")


def runs_of_sweep(client: MlflowClient, experiment: str, parent_run_id: str | None = None) -> tuple[str, list]:
    """(parent run id, nested runs) of a sweep: the latest one in `experiment` unless given."""
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ValueError(f"no MLflow experiment named {experiment!r} at this tracking URI; found: {names}")
    if parent_run_id is None:
        parents = client.search_runs([exp.experiment_id], "tags.`collide.kind` = 'sweep'",
                                     order_by=["attributes.start_time DESC"], max_results=1)
        if not parents:
            raise ValueError(f"experiment {experiment!r} holds no collide sweep run")
        parent_run_id = parents[0].info.run_id
    children = client.search_runs([exp.experiment_id], f"tags.`mlflow.parentRunId` = '{parent_run_id}'",
                                  max_results=10_000)
    return parent_run_id, children


def trial_rows(runs: list) -> list[dict]:
    """One row per nested run for the Pareto table: params, final metrics and status."""
    rows = []
    for run in runs:
        params, metrics = run.data.params, run.data.metrics
        row = {
            "trial_id": run.data.tags.get("collide.trial_id", run.info.run_id),
            "run_id": run.info.run_id,
            "name": run.info.run_name,
            "status": run.info.status,
            "strategy": params.get("strategy"),
            "compression": _param_number(params.get("compression")),
            "dim": _param_number(params.get("dim")),
            "seed": _param_number(params.get("seed")),
        }
        for key in ("best_val_logloss", "test_logloss", "test_auc", "test_ne", "total_bytes",
                    "embedding_bytes", "mapping_bytes", "dense_bytes", "compression_ratio", "collision_rate",
                    "signal_captured"):
            row[key] = metrics.get(key)
        for key in ("total_bytes", "embedding_bytes", "mapping_bytes", "dense_bytes"):
            if row[key] is not None:
                row[key] = int(row[key])  # MLflow stores metrics as floats; bytes are whole
        row["val_logloss"] = row.pop("best_val_logloss")
        if run.info.status != "FINISHED":
            row["val_logloss"] = None  # failed or unfinished trials never sit on the frontier
        rows.append(row)
    return rows


def _param_number(text: str | None) -> float | int | None:
    if text in (None, "None", ""):
        return None
    number = float(text)
    return int(number) if number.is_integer() else number

