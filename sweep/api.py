"""The notebook-facing API; the `collide` CLI is a thin layer over these functions.

    import sweep
    result = sweep.run_sweep(sweep.load_preset("quick"))      # how it ended, trials table, frontier
    result = sweep.resume_sweep("quick")                      # continue an interrupted sweep
    table, files = sweep.pareto("quick")                      # recomputed from MLflow alone
    sweep.export("quick", "exported", max_bytes=2_000_000)    # verified bundles for serving
    mapping = sweep.load_export("exported")
    rows = mapping.transform("C3", raw_ids)

`pareto` and `export` use the latest *completed* sweep of the experiment unless given a
parent run id, and log which one they used. Both check the tracking URI first, so an
unreachable server fails in seconds with `TrackingUnavailableError`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlflow.tracking import MlflowClient

from sweep.frontier.export import export as _export
from sweep.tracking_uri import check_tracking_uri, default_tracking_uri
from sweep.tune.ending import write_pareto_files
from sweep.tune.records import SweepRuns, find_sweep, trial_rows

__all__ = ["export", "pareto"]

log = logging.getLogger(__name__)


def pareto(experiment: str, *, tracking_uri: str | None = None, parent_run_id: str | None = None,
           out_dir: str | Path | None = None, log_to_mlflow: bool = True, per_trial: bool = False
           ) -> tuple[list[dict], dict[str, Path], SweepRuns]:
    """Recompute a sweep's Pareto table and files from MLflow alone: (table, files, the sweep used).

    The table ranks configurations (mean over seeds, 95% CI) when the sweep ran several seeds of a
    configuration, and trials otherwise or with `per_trial` (sweep.frontier.configurations)."""
    tracking_uri = tracking_uri or default_tracking_uri()
    check_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    sweep = find_sweep(client, experiment, parent_run_id)
    log.info("pareto of %s", sweep.describe())
    out_dir = Path(out_dir) if out_dir is not None else Path.cwd() / f"{experiment}-pareto"
    _, table, files = write_pareto_files(trial_rows(sweep.runs), out_dir, title=f"{experiment}: size vs val logloss",
                                         per_trial=per_trial)
    if log_to_mlflow:
        for path in files.values():
            client.log_artifact(sweep.parent_run_id, str(path))
    return table, files, sweep


def export(experiment: str, out_dir: str | Path, *, tracking_uri: str | None = None,
           max_bytes: float | None = None, max_val_loss: float | None = None,
           parent_run_id: str | None = None, per_trial: bool = False) -> Path:
    """Export the chosen frontier point's mapping (see `sweep.frontier.export`)."""
    tracking_uri = tracking_uri or default_tracking_uri()
    check_tracking_uri(tracking_uri)
    return _export(experiment, out_dir, tracking_uri=tracking_uri, max_bytes=max_bytes, max_val_loss=max_val_loss,
                   parent_run_id=parent_run_id, per_trial=per_trial)
