"""`resume_sweep(...)`: continue an interrupted sweep from its Ray Tune state.

The sweep continues through Ray Tune's `Tuner.restore` from its experiment directory
(`<storage_path>/<parent run id>`): finished trials are not run again, unfinished and failed
ones are. Before anything runs, a resume refuses a sweep whose driver is still alive on this
host, a sweep whose data source now gives other data, and overrides that would change what
the sweep is; a sweep that had already completed is reported, and nothing runs.
"""

from __future__ import annotations

import logging
import os
import pickle
import socket
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from sweep.config import load_config
from sweep.errors import UserError
from sweep.frontier.configurations import ranked_rows
from sweep.frontier.pareto import frontier_table
from sweep.processes import command_line, pid_alive
from sweep.tracking.journal import pending_journal
from sweep.tracking.records import checked_run_id, experiment_of, find_sweep, trial_rows
from sweep.tracking.store import check_tracking_uri, connect
from sweep.tracking.uri import default_tracking_uri, redact
from sweep.tracking.writer import SweepTracker, register
from sweep.tune.ending import SweepResult, sync_sweep
from sweep.tune.interrupt import Interrupts
from sweep.tune.output import RayOutput
from sweep.tune.points import grid_points
from sweep.tune.runner import DATA_TAG, EXPERIMENT_DIR_TAG, fit_and_finish, guarded, prepare_sweep
from sweep.tune.sweep_data import sweep_fingerprint

__all__ = ["resume_sweep"]

log = logging.getLogger(__name__)


def resume_sweep(experiment: str | None, parent_run_id: str | None = None, *, tracking_uri: str
                 | None = None,
                 launch_dir: str | Path | None = None, storage_path: str | None = None,
                 overrides: dict | None = None, verbose: bool = False) -> SweepResult:
    """Continue a sweep (the latest of `experiment` unless `parent_run_id`) from its Ray Tune state.

    `overrides` may change only where it runs and writes: `address`, `results_dir`,
    `resources.num_cpus`; anything else is refused, since the stored sweep keeps its config.
    """

    _check_resume_overrides(overrides or {})
    launch_dir = Path(launch_dir or Path.cwd()).resolve()
    tracking_uri = tracking_uri or default_tracking_uri(launch_dir)
    check_tracking_uri(tracking_uri)
    client = connect(tracking_uri)
    if experiment is None:
        if parent_run_id is None:
            raise UserError("resume needs the sweep's experiment name or its parent run id")
        experiment = experiment_of(client, parent_run_id)
    sweep = find_sweep(client, experiment, parent_run_id, completed=False)
    _refuse_live_driver(sweep.parent)
    stored = Path(client.download_artifacts(sweep.parent_run_id, "sweep_config.yaml"))
    values = yaml.safe_load(stored.read_text())
    values["tracking_uri"] = None  # recorded redacted; the URI in use is the one we found it with
    config = replace(load_config(values, overrides or {}), tracking_uri=tracking_uri)
    run_dir = checked_run_id(sweep.parent_run_id)
    if storage_path:
        experiment_dir = Path(storage_path).resolve() / run_dir
    else:
        recorded_dir = sweep.parent.data.tags.get(EXPERIMENT_DIR_TAG)
        experiment_dir = Path(recorded_dir) if recorded_dir else \
            launch_dir / ".collide" / "ray_results" / run_dir
    if not (experiment_dir / "tuner.pkl").is_file():
        raise UserError(f"sweep {sweep.parent_run_id}: no Ray Tune state at {experiment_dir} "
                        "(tuner.pkl missing); give --storage-path where its experiment directory "
                        "lives")
    if pending_journal(experiment_dir) is not None:
        log.info("uploading the records this sweep stored while MLflow was unreachable")
        sync_sweep(experiment_dir, tracking_uri)
        sweep = find_sweep(client, experiment, sweep.parent_run_id, completed=False)
    done = _already_complete(sweep, experiment, experiment_dir, tracking_uri)
    if done is not None:
        return done
    recorded = sweep.parent.data.tags.get(DATA_TAG)
    now = sweep_fingerprint(config, [p["seed"] for p in grid_points(config)])
    if recorded and recorded != now:
        raise UserError(f"sweep {sweep.parent_run_id} trained on prepared data {recorded[:12]}, "
                        f"but its data source now gives {now[:12]} (an input file or parameter "
                        "changed); resuming would mix trials of two data sets. Start a new sweep "
                        "instead")
    log.info("resuming %s from %s", sweep.describe(), experiment_dir)
    with Interrupts() as interrupts, RayOutput(verbose) as output:
        output.attach(experiment_dir)
        prepared = prepare_sweep(config, launch_dir, tracking_uri, interrupts, output,
                                 experiment_dir.parent)
        tuner = _restore(experiment_dir, prepared.trainable)  # before the parent is touched
        tracker = SweepTracker.reopen(tracking_uri, sweep, retry_s=config.tracking_retry_s)
        register(tracker)
        tracker.attach_journal(experiment_dir)
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")

        def body() -> SweepResult:
            return fit_and_finish(tuner, tracker, interrupts, prepared, experiment_dir, output)

        return guarded(body, tracker, interrupts, prepared, experiment_dir)


def _restore(experiment_dir: Path, trainable: Any) -> Any:
    """The sweep's Tuner from its Ray Tune state; damaged state is a UserError naming the file.

    resume_errored keeps a failed trial's id (restart_errored would give it a new one, and the
    failed attempt would count as another trial); without a checkpoint it trains from scratch."""
    from ray import tune

    try:
        return tune.Tuner.restore(str(experiment_dir), trainable=trainable, resume_unfinished=True,
                                  resume_errored=True)
    except (pickle.UnpicklingError, EOFError, ValueError) as exc:
        raise UserError(f"{experiment_dir / 'tuner.pkl'}: the sweep's Ray Tune state cannot be "
                        f"read ({type(exc).__name__}: {exc}), so the sweep cannot be resumed; its "
                        "MLflow runs are as they were. Start a new sweep") from None


def _check_resume_overrides(overrides: dict) -> None:
    allowed = {"address", "results_dir", "resources"}
    refused = sorted(set(overrides) - allowed)
    refused += [f"resources.{k}" for k in overrides.get("resources", {}) if k != "num_cpus"]
    if refused:
        raise UserError(f"a resumed sweep keeps its stored config; {refused} would have no effect "
                        "(allowed: address, results_dir, resources.num_cpus)")


def _already_complete(sweep: Any, experiment: str, experiment_dir: Path,
                      tracking_uri: str) -> SweepResult | None:
    """A FINISHED sweep whose every trial completed has nothing to resume: say so, run nothing."""
    rows = trial_rows(sweep.runs)
    expected = int(sweep.parent.data.metrics.get("num_points", len(rows)))
    if (sweep.parent.info.status != "FINISHED" or len(rows) < expected
        or any(r["excluded"] for r in rows)):
        return None
    ranked = frontier_table(ranked_rows(rows)[0])
    return SweepResult(experiment, sweep.parent_run_id, redact(tracking_uri),
                       "completed", expected, len(rows), 0, experiment_dir,
                       trials=frontier_table(rows),
                       frontier=[r for r in ranked if r["on_frontier"]],
                       experiment_id=sweep.parent.info.experiment_id,
                       message=f"sweep {sweep.parent_run_id} had already completed: nothing to "
                               "resume")


def _refuse_live_driver(parent: Any) -> None:
    """A RUNNING sweep whose driver is alive on this host must not get a second driver."""
    tags = parent.data.tags
    if parent.info.status != "RUNNING" or tags.get("collide.driver_host") != socket.gethostname():
        return
    pid = int(tags.get("collide.driver_pid", "0") or 0)
    if pid and pid != os.getpid() and pid_alive(pid):
        command = command_line(pid) or ""
        if "python" in command or "collide" in command:
            raise UserError(f"sweep {parent.info.run_id} is still running (driver pid {pid} on "
                            "this host); stop it first (Ctrl-C), then resume")
