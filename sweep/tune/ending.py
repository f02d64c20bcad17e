"""How a sweep ends: its result, the Pareto files, the parent run's final state, and `collide sync`.

- `finish`: read the trials back from MLflow, write the Pareto files (csv, png, md; over
  configurations when seeds repeat them, see sweep.frontier.configurations) and log
  them to the parent run, which ends FINISHED with `collide.state = completed`;
- `end_interrupted`: open trial runs and the parent end KILLED; no frontier is written;
- `sync_sweep`: replay the journal of a sweep that lost MLflow, then `finish` it.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from sweep.errors import UserError
from sweep.frontier.files import write_pareto_files
from sweep.tracking.journal import JOURNAL_DIR, pending_journal, replay
from sweep.tracking.records import experiment_of, find_sweep, trial_rows
from sweep.tracking.store import check_tracking_uri, connect
from sweep.tracking.uri import default_tracking_uri, mlflow_http_policy, redact, redact_text
from sweep.tracking.writer import SweepTracker, apply_op, sweep_end_ops

__all__ = ["SweepResult", "end_interrupted", "finish", "sync_now", "sync_sweep"]

log = logging.getLogger(__name__)


@dataclass
class SweepResult:
    experiment: str
    parent_run_id: str
    tracking_uri: str  # redacted: safe to print
    state: str  # "completed" | "interrupted" | "tracking_lost"
    num_points: int  # trials the sweep asked for
    num_finished: int  # trials that completed (across resumes)
    num_failed: int
    experiment_dir: Path  # the Ray Tune experiment (and the tracking journal, if any)
    # one row per trial, as trained (fp32; Pareto table, with on_frontier)
    trials: list[dict] = field(default_factory=list)
    # the ranked rows on the frontier, by total_bytes (a point per trial and table precision):
    frontier: list[dict] = field(default_factory=list)
    # configurations (with `configuration`, mean and CI over seeds) when the sweep has several seeds
    files: dict[str, Path] = field(default_factory=dict)  # pareto.csv/png/md, pareto-trials.csv
    signal_name: str | None = None  # the signal that interrupted it
    message: str = ""  # what went wrong, for "tracking_lost"
    experiment_id: str = ""  # the MLflow experiment's id (for the UI's runs view)


def finish(client: Any, write: Any, experiment: str, parent_run_id: str, results_dir: str,
           expected: int,
           result: SweepResult) -> SweepResult:
    """Read the trials back from MLflow, write and log the Pareto files, end the parent FINISHED."""
    runs = find_sweep(client, experiment, parent_run_id, completed=False).runs
    table, ranked, files = write_pareto_files(trial_rows(runs), Path(results_dir),
                                              title=f"{experiment}: size vs val logloss")
    for path in files.values():
        write({"op": "log_artifact", "ref": "parent", "local_path": str(path)})
    frontier = [row for row in ranked if row["on_frontier"]]
    # the table has a point per trial and precision; the trials are its fp32 (as trained) rows
    trials = [row for row in table if row.get("precision", "fp32") == "fp32"]
    completed = sum(1 for row in trials if row.get("excluded") is None)
    failed = sum(1 for row in trials if row.get("status") == "FAILED")
    summary = {"num_trials": len(trials), "num_completed": completed, "num_failed": failed,
               "frontier_size": len(frontier), "num_points": expected}
    for op in sweep_end_ops("FINISHED", summary, "completed"):
        write(op)
    return replace(result, state="completed", trials=trials, frontier=frontier, files=files,
                   num_failed=failed,
                   num_finished=completed)


def end_interrupted(tracker: SweepTracker, experiment: str, signal_name: str | None, expected: int,
                    experiment_dir: Path) -> SweepResult:
    """Stopped by a signal: open trial runs and the parent end KILLED; no frontier is written."""
    for trial_id in tracker.open_trials():
        tracker.end_trial(trial_id, "killed")
    tracker.end_sweep("KILLED", {"num_completed": len(tracker.completed), "num_points": expected},
                      "interrupted")
    return SweepResult(experiment, tracker.parent_run_id, redact(tracker.tracking_uri),
                       "interrupted", expected,
                       len(tracker.completed), 0, experiment_dir, signal_name=signal_name)


def sync_now(tracker: SweepTracker, experiment_dir: Path) -> bool:
    """After an outage: replay the journal if the store is back; True when nothing is left to
    sync."""
    try:
        check_tracking_uri(tracker.tracking_uri)
    except ValueError:
        return False
    journal = pending_journal(experiment_dir)
    if journal is not None:
        try:
            with mlflow_http_policy(max_retries=2):
                replay(journal, lambda op, refs: apply_op(tracker.client, op, refs))
        # still unusable: the journal stays for `collide sync`
        except Exception as exc:  # noqa: BLE001
            log.warning("MLflow is back, but uploading the stored records failed: %s",
                        redact_text(str(exc)))
            return False
    for ref, run_id in resolved_refs(experiment_dir).items():
        tracker.refs[ref] = run_id
    tracker.offline_reason = None
    return True


def resolved_refs(experiment_dir: Path) -> dict[str, str]:
    progress = experiment_dir / JOURNAL_DIR / "progress.json"
    return json.loads(progress.read_text())["refs"] if progress.is_file() else {}


def sync_sweep(sweep_dir: str | Path, tracking_uri: str | None = None) -> SweepResult | None:
    """Upload a sweep's journaled MLflow records (see `sweep.tracking.journal`); None if nothing was
    pending.

    The result describes the sweep as MLflow now holds it: "completed" with its frontier when
    the journal ends with the sweep's finish (the frontier is written then), otherwise the
    state the sweep had when it stopped (e.g. "interrupted").
    """
    sweep_dir = Path(sweep_dir).resolve()
    journal = pending_journal(sweep_dir)
    if journal is None:
        if not (sweep_dir / JOURNAL_DIR).is_dir():
            raise UserError(f"{sweep_dir} holds no tracking journal ({JOURNAL_DIR}/); nothing to "
                            "sync")
        return None
    tracking_uri = tracking_uri or default_tracking_uri()
    check_tracking_uri(tracking_uri)
    client = connect(tracking_uri)
    finished: dict[str, SweepResult] = {}

    def apply(op: dict, refs: dict[str, str]) -> str | None:
        if op["op"] != "finish_sweep":
            return apply_op(client, op, refs)
        parent = refs["parent"]
        base = SweepResult(op["experiment"], parent, redact(tracking_uri), "completed",
                           op["num_points"], 0, 0,
                           sweep_dir)
        finished["result"] = finish(client, lambda o: apply_op(client, o, refs), op["experiment"],
                                    parent,
                                    op["results_dir"], op["num_points"], base)
        return None

    with mlflow_http_policy(max_retries=2):
        replay(journal, apply, on_progress=lambda done,
               total: log.info("synced %d of %d records", done, total))
    if "result" in finished:
        return finished["result"]
    parent = client.get_run(resolved_refs(sweep_dir)["parent"])
    experiment = experiment_of(client, parent.info.run_id)
    rows = trial_rows(find_sweep(client, experiment, parent.info.run_id, completed=False).runs)
    state = parent.data.tags.get("collide.state", parent.info.status.lower())
    return SweepResult(experiment, parent.info.run_id, redact(tracking_uri), state,
                       int(parent.data.metrics.get("num_points", len(rows))),
                       sum(1 for r in rows if r["excluded"] is None),
                       sum(1 for r in rows if r["status"] == "FAILED"),
                       sweep_dir, trials=rows,
                       message="the sweep had stopped before it finished (parent run "
                               f"{parent.info.status})")
