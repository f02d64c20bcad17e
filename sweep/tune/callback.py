"""The Ray Tune callback that mirrors every trial into MLflow through the sweep's tracker.

It runs in the driver, so the tracker stays the single MLflow writer. It holds no client
and no URI: Ray Tune pickles it into the experiment directory (for `--resume`), so it
finds its live tracker by the parent run id (`sweep.tracking.writer.tracker_for`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.result import AUTO_RESULT_KEYS

from sweep.tracking.writer import ERROR_TAG_CHARS, SweepTracker, tracker_for
from sweep.tune.points import point_name, point_of
from sweep.tune.trainable import SIZE_KEYS

__all__ = ["EPOCH_METRICS", "NODE_TAGS", "NOTES_TAG", "WORSE_TAG", "MlflowTrialCallback",
           "error_text", "trial_tags"]

NOTES_TAG = "collide.notes"
# Where a trial ran: result key (the trainable's node_id; Tune's hostname and node_ip) -> run tag.
NODE_TAGS = {"node_id": "collide.ray_node_id", "hostname": "collide.host",
             "node_ip": "collide.node_ip"}
WORSE_TAG = "collide.worse_than_constant"

EPOCH_METRICS = ("val_logloss", "val_auc", "val_ne", "val_accuracy", "train_loss", "epoch_seconds",
                 "samples_per_second", "best_val_logloss")
# what an evaluation within an epoch reports, logged as midway_<key> at step rows_trained
MIDWAY_METRICS = ("val_logloss", "val_auc", "val_ne", "val_accuracy")
# Keys of a final result that are not metrics: Tune's bookkeeping and the trial's point (logged as
# params).
NOT_METRICS = frozenset(AUTO_RESULT_KEYS) | {"done", "final", "should_checkpoint", "trial_id",
                                             "experiment_tag",
                                             "epoch", "strategy", "compression", "rows", "dim",
                                             "seed", "node_id"}


class MlflowTrialCallback(Callback):
    """Tune callback: mirror each trial's lifecycle, results and checkpoint into MLflow.

    It holds no client and no URI (Tune pickles it with the experiment); it finds its live
    tracker by parent run id.
    """

    def __init__(self, parent_run_id: str, trial_params: Mapping[str, Any],
                 strategy_params: Mapping[str, Mapping[str, Any]]):
        self.parent_run_id = parent_run_id
        self.trial_params = dict(trial_params)  # params shared by every trial (flattened config)
        # mapper params per strategy
        self.strategy_params = {k: dict(v) for k, v in strategy_params.items()}
        self._best: dict[str, float] = {}
        self._final: set[str] = set()
        self._placed: set[str] = set()  # trials whose node tags are set

    @property
    def tracker(self) -> SweepTracker:
        return tracker_for(self.parent_run_id)

    def on_trial_start(self, iteration, trials, trial, **info):
        point = point_of(trial.config)
        mapper_params = {"mapper_params": dict(self.strategy_params.get(point["strategy"], {}))}
        self._final.discard(trial.trial_id)
        self._placed.discard(trial.trial_id)
        self._best.pop(trial.trial_id, None)
        self.tracker.start_trial(trial.trial_id, point_name(point),
                                 {**self.trial_params, **mapper_params, **point})

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if trial.trial_id not in self._placed:
            self._placed.add(trial.trial_id)
            self.tracker.set_trial_tags(trial.trial_id,
                                        {tag: str(result[key]) for key, tag in NODE_TAGS.items()
                                                         if result.get(key)})
        if result.get("final"):
            # the final val_logloss is the best epoch's; the per-epoch history keeps val_logloss
            # itself
            final = {k: v for k, v in result.items() if k not in NOT_METRICS
                     and k not in EPOCH_METRICS}
            final["best_val_logloss"] = result.get("val_logloss")
            self.tracker.log_metrics(trial.trial_id, final, step=int(result.get("epochs_run", 0)))
            self.tracker.set_trial_tags(trial.trial_id, trial_tags(result))
            self._final.add(trial.trial_id)
            return
        if result.get("midway"):
            # an evaluation within an epoch (train.eval_every_rows), on the validation sample:
            # its own metrics, stepped by the training rows so far
            rows = int(result["rows_trained"])
            self.tracker.log_metrics(trial.trial_id, {
                **{f"midway_{key}": result[key] for key in MIDWAY_METRICS if key in result},
                "rows_trained": rows}, step=rows)
            return
        epoch = int(result.get("epoch", result.get("training_iteration", 0)))
        keep = {k: result[k] for k in EPOCH_METRICS if k in result}
        if "val_logloss" in keep:
            best = min(self._best.get(trial.trial_id, math.inf), float(keep["val_logloss"]))
            self._best[trial.trial_id] = best
            keep["best_val_logloss"] = best
        for key in SIZE_KEYS:
            if key in result:
                keep[key] = result[key]
        keep["epochs_run"] = epoch
        self.tracker.log_metrics(trial.trial_id, keep, step=epoch)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        with checkpoint.as_directory() as local_dir:
            self.tracker.log_artifacts(trial.trial_id, local_dir)

    def on_trial_complete(self, iteration, trials, trial, **info):
        # A trial that returned without its final report was stopped by the scheduler (ASHA).
        self.tracker.end_trial(trial.trial_id, "completed" if trial.trial_id in self._final
                               else "stopped")

    def on_trial_error(self, iteration, trials, trial, **info):
        self.tracker.end_trial(trial.trial_id, "failed", error=error_text(trial))


def trial_tags(result: Mapping[str, Any]) -> dict[str, str]:
    """Tags of a trial's final result: its warnings (`collide.notes`) and, when its test logloss is
    worse than the constant predictor's, `collide.worse_than_constant` = "true"."""
    tags = {}
    if result.get("notes"):
        tags[NOTES_TAG] = str(result["notes"])[-ERROR_TAG_CHARS:]
    if result.get("worse_than_constant"):
        tags[WORSE_TAG] = "true"
    return tags


def error_text(trial: Any) -> str:
    """The trial's error trace: Tune writes it to the trial's local dir first, storage later."""
    if trial.error_file and Path(trial.error_file).is_file():
        return Path(trial.error_file).read_text()
    return str(trial.get_error() or "trial failed (Tune recorded no error text)")
