"""The notebook-facing API; the `collide` CLI is a thin layer over these functions.

    import sweep
    result = sweep.run_sweep(sweep.load_preset("quick"))      # trials table + frontier
    table, files = sweep.pareto("quick")                      # recomputed from MLflow alone
    sweep.export("quick", "exported", max_bytes=2_000_000)    # verified bundles for serving
    mapping = sweep.load_export("exported")
    rows = mapping.transform("C3", raw_ids)
"""

from __future__ import annotations

from pathlib import Path

from mlflow.tracking import MlflowClient

from sweep.runner import write_pareto_files
from sweep.serving import export as _export
from sweep.tracking import default_tracking_uri, runs_of_sweep, trial_rows

__all__ = ["export", "pareto"]


def pareto(experiment: str, *, tracking_uri: str | None = None, parent_run_id: str | None = None,
           out_dir: str | Path | None = None, log_to_mlflow: bool = True) -> tuple[list[dict], dict[str, Path]]:
    """Recompute a sweep's Pareto table and files from MLflow alone (the latest sweep unless given)."""
    tracking_uri = tracking_uri or default_tracking_uri()
    client = MlflowClient(tracking_uri)
    parent_run_id, runs = runs_of_sweep(client, experiment, parent_run_id)
    out_dir = Path(out_dir) if out_dir is not None else Path.cwd() / f"{experiment}-pareto"
    table, files = write_pareto_files(trial_rows(runs), out_dir, title=f"{experiment}: size vs val logloss")
    if log_to_mlflow:
        for path in files.values():
            client.log_artifact(parent_run_id, str(path))
    return table, files


def export(experiment: str, out_dir: str | Path, *, tracking_uri: str | None = None,
           max_bytes: float | None = None, max_val_loss: float | None = None,
           parent_run_id: str | None = None) -> Path:
    """Export the chosen frontier point's mapping (see `sweep.serving.export`)."""
    return _export(experiment, out_dir, tracking_uri=tracking_uri or default_tracking_uri(),
                   max_bytes=max_bytes, max_val_loss=max_val_loss, parent_run_id=parent_run_id)
