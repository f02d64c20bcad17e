"""The notebook-facing API; the `collide` CLI is a thin layer over these functions.

    import sweep
    result = sweep.run_sweep(sweep.load_preset("quick"))      # how it ended, trials table, frontier
    result = sweep.resume_sweep("quick")                      # continue an interrupted sweep
    table, files, used = sweep.pareto("quick")                # recomputed from MLflow alone
    sweep.export("quick", "exported", max_bytes=2_000_000)    # verified bundles for serving
    tables, files = sweep.report("quick", "results/quick")    # the evidence report
    mapping = sweep.load_export("exported")
    rows = mapping.transform("C3", raw_ids)

`pareto`, `export` and `report` read a sweep back from MLflow (`sweep.tracking`) and hand its
trial rows to the frontier code (`sweep.frontier`). They use the latest *completed* sweep of
the experiment unless given a parent run id, and log which one they used. Each checks the
tracking URI first, so an unreachable server fails in seconds with `TrackingUnavailableError`.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

from sweep.errors import UserError
from sweep.frontier.evidence import gather
from sweep.frontier.evidence_files import write_report
from sweep.frontier.export import (
    check_export_dir,
    choose,
    describe_choice,
    recorded_tables,
    write_export,
)
from sweep.frontier.files import write_pareto_files
from sweep.names import safe_name
from sweep.tracking.records import SweepRuns, fetch_artifacts, find_sweep, trial_rows
from sweep.tracking.store import check_tracking_uri, connect
from sweep.tracking.uri import default_tracking_uri

__all__ = ["export", "pareto", "report"]

log = logging.getLogger(__name__)


def _store(tracking_uri: str | None) -> str:
    """The tracking URI to read (given, or the default), checked to answer within seconds."""
    tracking_uri = tracking_uri or default_tracking_uri()
    check_tracking_uri(tracking_uri)
    return tracking_uri


def pareto(experiment: str, *, tracking_uri: str | None = None, parent_run_id: str | None = None,
           out_dir: str | Path | None = None, log_to_mlflow: bool = True, per_trial: bool = False
           ) -> tuple[list[dict], dict[str, Path], SweepRuns]:
    """Recompute a sweep's Pareto table and files from MLflow alone: (table, files, the sweep used).

    The table ranks configurations (mean over seeds, 95% CI) when the sweep ran several seeds of
    a configuration, and trials otherwise or with `per_trial` (sweep.frontier.configurations)."""
    client = connect(_store(tracking_uri))
    sweep = find_sweep(client, experiment, parent_run_id)
    log.info("pareto of %s", sweep.describe())
    out_dir = (Path(out_dir) if out_dir is not None
               else Path.cwd() / f"{safe_name(experiment)}-pareto")
    _, table, files = write_pareto_files(trial_rows(sweep.runs), out_dir,
                                         title=f"{experiment}: size vs val logloss",
                                         per_trial=per_trial)
    if log_to_mlflow:
        for path in files.values():
            client.log_artifact(sweep.parent_run_id, str(path))
    return table, files, sweep


def export(experiment: str, out_dir: str | Path, *, tracking_uri: str | None = None,
           max_bytes: float | None = None, max_val_loss: float | None = None,
           parent_run_id: str | None = None, per_trial: bool = False) -> Path:
    """Export the chosen frontier point's mapping: verified bundles and export.json in `out_dir`
    (see `sweep.frontier.export`); `out_dir` must be new, empty or an earlier export."""
    tracking_uri = _store(tracking_uri)
    check_export_dir(out_dir)
    sweep = find_sweep(connect(tracking_uri), experiment, parent_run_id)
    log.info("exporting from %s", sweep.describe())
    point, selection = choose(trial_rows(sweep.runs), max_bytes=max_bytes,
                              max_val_loss=max_val_loss,
                              per_trial=per_trial)
    log.info("%s", describe_choice(point, selection))
    if "note" in selection:
        log.warning("%s", selection["note"])
    with tempfile.TemporaryDirectory(prefix="collide-export-") as download:
        try:
            artifacts = fetch_artifacts(tracking_uri, point["run_id"], ("metrics.json", "bundles"),
                                        download)
            if recorded_tables(artifacts):
                fetch_artifacts(tracking_uri, point["run_id"], ("tables",), download)
            return write_export(point, selection, artifacts, out_dir, experiment=experiment,
                                parent_run_id=sweep.parent_run_id)
        except Exception as exc:
            if not isinstance(exc, (UserError, OSError)) and \
                    not type(exc).__module__.startswith("mlflow"):
                raise  # a bug: its traceback
            raise UserError(_in_run(exc, Path(download), point["run_id"])) from None


def _in_run(exc: BaseException, download: Path, run_id: str) -> str:
    """An error about the run's downloaded artifacts, naming the run and the artifact, not the
    temporary directory they were downloaded to (gone by the time the user reads it)."""
    text = str(exc).strip() or type(exc).__name__
    for root in {str(download), str(download.resolve())}:
        text = text.replace(root + "/", "").replace(root, ".")
    text = text.removeprefix(f"run {run_id}: ")
    return f"run {run_id}: its artifacts cannot be exported: {text}"


def report(experiment: str, out_dir: str | Path, *, tracking_uri: str | None = None,
           parent_run_id: str | None = None, command: str | None = None
           ) -> tuple[dict[str, Any], dict[str, Path]]:
    """Read a completed sweep from MLflow, gather its evidence tables and write them into `out_dir`
    (see `sweep.frontier.evidence`): (tables, files)."""
    sweep = find_sweep(connect(_store(tracking_uri)), experiment, parent_run_id)
    log.info("report of %s", sweep.describe())
    tables = gather(trial_rows(sweep.runs))
    command = command or (f"collide report --experiment {experiment} --parent-run "
                          f"{sweep.parent_run_id} --out {out_dir}")
    return tables, write_report(tables, out_dir, experiment=experiment,
                                parent_run_id=sweep.parent_run_id,
                                command=command)
