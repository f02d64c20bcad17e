"""MLflow tracking for a sweep: one parent run per sweep, one nested run per trial attempt.

Every write goes through `SweepTracker` in the driver process (from the Tune callback
`MlflowTrialCallback`), so a sqlite store has a single writer. Trials never talk to
MLflow: their bundles reach the driver as Tune checkpoints and are logged from there
through the tracking URI, so a server with proxied artifacts works the same.

Faults:
- every write is retried with backoff for up to `retry_s` seconds (MLflow's own HTTP
  retries are turned off meanwhile, so this is the one policy); a blip loses nothing;
- if the store stays down, the tracker goes offline: the sweep runs on and every further
  write goes to the sweep's journal (`sweep.tracking.journal`), replayed by `collide sync`;
- the tracker never holds credentials in anything it pickles or writes: Ray Tune pickles
  the callback into the experiment directory, so the callback finds its live tracker by
  the parent run id in this process (`register` / `tracker_for`).

Writes off the event loop: the trial writes the Tune callback makes (a run's creation, params,
metrics, tags, its end) go to a writer thread through a bounded queue (`submit`), so Tune's
event loop starts the next trial meanwhile. The thread applies them one at a time, in the
order they were submitted, with the same retries and journal as a direct write. Every direct
`write` (and `flush`, `offline`, `journal_op`, `close`) first waits until the queue is empty,
so writes keep their order and the main thread reads the tracker's state only when the thread
is idle. Artifacts are written directly: a checkpoint's directory may be temporary. An error
the thread meets (no journal to fall back to) is raised in the main thread at its next call.

Nested run contents: params (the flattened trial config), per-epoch metrics (step =
epoch), final test metrics, the size report, collision stats, artifacts `bundles/` and
`metrics.json`; tags `collide.trial_id`, `collide.attempt` and, when it ends,
`collide.outcome` (completed | stopped | failed | killed). A failed trial's run ends
FAILED with its error in the `error` tag.
"""

from __future__ import annotations

import logging
import math
import os
import queue
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from sweep.tracking.journal import JOURNAL_DIR, TrackingJournal
from sweep.tracking.records import OUTCOME_TAG, SweepRuns
from sweep.tracking.store import TrackingUnavailableError, connect
from sweep.tracking.uri import mlflow_http_policy, redact, redact_text, remember

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "NOTE_TAG",
    "SweepTracker",
    "apply_op",
    "flatten",
    "param_texts",
    "register",
    "sweep_end_ops",
    "tracker_for",
]

log = logging.getLogger(__name__)

ERROR_TAG_CHARS = 5000
# MLflow error codes that a retry cannot fix: go offline (journal) at once instead of waiting.
NOT_RETRYABLE = frozenset({"INVALID_PARAMETER_VALUE", "RESOURCE_ALREADY_EXISTS",
                           "RESOURCE_DOES_NOT_EXIST",
                           "BAD_REQUEST", "PERMISSION_DENIED", "UNAUTHENTICATED", "INVALID_STATE"})
# MLflow 3's UI opens an experiment in the view its kind names; a sweep is model training, not
# GenAI.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
NOTE_TAG = "mlflow.note.content"  # the description the UI shows for an experiment or a run

_TRACKERS: dict[str, SweepTracker] = {}
QUEUE_OPS = 1000  # writes waiting for the writer thread at most


def register(tracker: SweepTracker) -> None:
    _TRACKERS[tracker.parent_run_id] = tracker


def tracker_for(parent_run_id: str) -> SweepTracker:
    if parent_run_id not in _TRACKERS:
        raise RuntimeError(f"no live tracker for sweep {parent_run_id} in this process")
    return _TRACKERS[parent_run_id]


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


def apply_op(client: MlflowClient, op: dict, refs: Mapping[str, str]) -> str | None:
    """Perform one tracker write against MLflow; returns the run id when the op creates a run."""
    kind = op["op"]
    if kind == "create_run":
        existing = _existing_attempt(client, op)
        if existing is not None:  # an earlier try (timed out, or a killed replay) did create it
            return existing
        run = client.create_run(op["experiment_id"], run_name=op["name"], tags=op["tags"])
        return run.info.run_id
    run_id = refs[op["ref"]]
    if kind == "log_params":
        items = [Param(k, v) for k, v in sorted(op["params"].items())]
        for start in range(0, len(items), 100):
            client.log_batch(run_id, params=items[start:start + 100])
    elif kind == "log_metrics":
        client.log_batch(run_id,
                         metrics=[Metric(k, v, ts, step) for k, v, ts, step in op["metrics"]])
    elif kind == "set_tags":
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in sorted(op["tags"].items())])
    elif kind == "log_artifacts":
        client.log_artifacts(run_id, op["local_dir"], op.get("artifact_path"))
    elif kind == "log_artifact":
        client.log_artifact(run_id, op["local_path"], op.get("artifact_path"))
    elif kind == "log_text":
        client.log_text(run_id, op["text"], op["file"])
    elif kind == "terminate":
        client.set_terminated(run_id, op["status"], end_time=op.get("end_time"))
    elif kind == "set_status":
        client.update_run(run_id, status=op["status"])
    else:
        raise ValueError(f"unknown tracking op {kind!r}")
    return None


def _existing_attempt(client: MlflowClient, op: dict) -> str | None:
    """The run of this trial attempt, if a retried or replayed create_run made it already."""
    tags = op["tags"]
    if "collide.trial_id" not in tags:
        return None
    query = (f"tags.`mlflow.parentRunId` = '{tags['mlflow.parentRunId']}' and "
             f"tags.`collide.trial_id` = '{tags['collide.trial_id']}' and "
             f"tags.`collide.attempt` = '{tags['collide.attempt']}'")
    found = client.search_runs([op["experiment_id"]], query, max_results=1)
    return found[0].info.run_id if found else None


@dataclass
class _Trial:
    ref: str  # "trial/<trial id>/<attempt>"
    open: bool = True  # started, not yet ended
    skip: bool = False  # already completed in MLflow by an earlier driver: log nothing more


class SweepTracker:
    """The sweep's parent run and its nested trial runs, written from one process."""

    def __init__(self, tracking_uri: str, experiment_id: str, parent_run_id: str, *,
                 retry_s: float):
        self.tracking_uri = tracking_uri
        remember(tracking_uri)
        self.client = connect(tracking_uri)
        self.experiment_id = experiment_id
        self.parent_run_id = parent_run_id
        self.retry_s = retry_s
        self.refs: dict[str, str] = {"parent": parent_run_id}
        self.trials: dict[str, _Trial] = {}
        # trial id -> run id of its completed run (from a resume)
        self.completed: dict[str, str] = {}
        self.attempts: dict[str, int] = {}  # trial id -> attempts seen so far
        self.journal: TrackingJournal | None = None
        self.offline_reason: str | None = None
        self._queue: queue.Queue = queue.Queue(maxsize=QUEUE_OPS)
        self._thread: threading.Thread | None = None
        self._thread_error: BaseException | None = None

    # -- creation
    @classmethod
    def start(cls, tracking_uri: str, experiment: str, *, retry_s: float,
              description: str = "") -> SweepTracker:
        """Create (or reuse) the experiment, tagged as model training with `description` (the latest
        sweep's), and a new parent run tagged with this driver; the caller attaches the journal
        before
        writing anything else, so no later write can be lost."""
        client = connect(tracking_uri)
        existing = client.get_experiment_by_name(experiment)
        if existing is not None:
            experiment_id = existing.experiment_id
        else:
            location = None
            if tracking_uri.startswith("sqlite:///"):
                db = Path(tracking_uri.removeprefix("sqlite:///"))
                location = (db.parent / "mlartifacts").resolve().as_uri()
            experiment_id = client.create_experiment(experiment, artifact_location=location)
        client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        notes = {NOTE_TAG: description} if description else {}
        for key, value in notes.items():
            client.set_experiment_tag(experiment_id, key, value)
        run = client.create_run(experiment_id,
                                run_name=f"{experiment}-{time.strftime('%Y%m%d-%H%M%S')}",
                                tags={"collide.kind": "sweep", **driver_tags(), **notes})
        return cls(tracking_uri, experiment_id, run.info.run_id, retry_s=retry_s)

    @classmethod
    def reopen(cls, tracking_uri: str, sweep: SweepRuns, *,
               retry_s: float) -> SweepTracker:
        """Continue an existing sweep (resume): stale RUNNING trial runs end KILLED; completed ones
        are kept."""
        tracker = cls(tracking_uri, sweep.parent.info.experiment_id, sweep.parent_run_id,
                      retry_s=retry_s)
        for run in sweep.runs:
            trial_id = run.data.tags.get("collide.trial_id")
            if trial_id is None:
                continue
            attempt = int(run.data.tags.get("collide.attempt", "1"))
            tracker.attempts[trial_id] = max(tracker.attempts.get(trial_id, 0), attempt)
            ref = f"trial/{trial_id}/{attempt}"
            tracker.refs[ref] = run.info.run_id
            outcome = run.data.tags.get(OUTCOME_TAG, "completed" if run.info.status == "FINISHED"
                                        else None)
            if run.info.status == "FINISHED" and outcome == "completed":
                tracker.completed[trial_id] = run.info.run_id
            # its driver is gone: this attempt will never end by itself
            elif run.info.status == "RUNNING":
                tracker.write({"op": "set_tags", "ref": ref, "tags": {
                    OUTCOME_TAG: "killed", "collide.killed_reason": "the driver that ran it "
                                                                    "stopped; resumed"}})
                tracker.write({"op": "terminate", "ref": ref, "status": "KILLED"})
        tracker.write({"op": "set_tags", "ref": "parent", "tags": {
            **driver_tags(),
            "collide.resumes": str(int(sweep.parent.data.tags.get("collide.resumes", "0")) + 1)}})
        if sweep.parent.info.status != "RUNNING":
            tracker.write({"op": "set_status", "ref": "parent", "status": "RUNNING"})
        return tracker

    def attach_journal(self, sweep_dir: str | Path) -> None:
        self.journal = TrackingJournal(Path(sweep_dir) / JOURNAL_DIR)

    # -- the writer thread
    def submit(self, op: dict) -> None:
        """Write `op` from the writer thread, after every op submitted before it."""
        self._raise_thread_error()
        if self._thread is None:
            self._thread = threading.Thread(target=self._drain, name="collide-mlflow-writer",
                                            daemon=True)
            self._thread.start()
        self._queue.put(op)  # blocks while QUEUE_OPS writes wait: the driver cannot run away

    def _drain(self) -> None:
        while True:
            op = self._queue.get()
            try:
                if op is None:
                    return
                if self._thread_error is None:  # after an error, the rest is dropped: raised
                    self._write(op)
            except BaseException as exc:  # noqa: BLE001 - raised in the main thread
                self._thread_error = exc
            finally:
                self._queue.task_done()

    def flush(self) -> None:
        """Wait until every submitted write is done; raise what the writer thread met."""
        if self._thread is not None and threading.current_thread() is not self._thread:
            self._queue.join()
        self._raise_thread_error()

    def _raise_thread_error(self) -> None:
        if self._thread_error is not None:
            error, self._thread_error = self._thread_error, None
            raise error

    def close(self, *, raise_error: bool = True) -> None:
        """Flush, then end the writer thread. With `raise_error` False (an error is already on
        its way), what the thread met is logged instead of raised."""
        try:
            self.flush()
        except Exception as exc:
            if raise_error:
                raise
            log.error("MLflow writer: %s", redact_text(str(exc), self.tracking_uri))
        finally:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join()
                self._thread = None

    # -- writes with retry, then the journal
    @property
    def offline(self) -> bool:
        self.flush()
        return self.offline_reason is not None

    def write(self, op: dict) -> str | None:
        """Write `op` now (after the submitted writes), with retries, else to the journal."""
        self.flush()
        return self._write(op)

    def _write(self, op: dict) -> str | None:
        if self.offline_reason is not None:
            self._journal(op)
            return None
        delay, deadline = 0.5, time.monotonic() + self.retry_s
        while True:
            try:
                with mlflow_http_policy(max_retries=0):  # this loop is the retry policy
                    created = apply_op(self.client, op, self.refs)
            except Exception as exc:  # noqa: BLE001 - any failed write is retried, then journaled
                reason = redact_text(str(exc).strip().splitlines()[0] if str(exc).strip()
                                     else type(exc).__name__,
                                     self.tracking_uri)
                code = getattr(exc, "error_code", None)
                if code in NOT_RETRYABLE or time.monotonic() + delay > deadline:
                    self._go_offline(f"{op['op']} failed: {reason}")
                    self._journal(op)
                    return None
                log.warning("MLflow %s failed (%s); retrying in %.1f s", op["op"], reason, delay)
                time.sleep(delay)
                delay = min(delay * 2, 15.0)
                continue
            if created is not None:
                self.refs[op["ref"]] = created
            return created

    def _go_offline(self, reason: str) -> None:
        if self.journal is None:
            raise TrackingUnavailableError(f"MLflow tracking URI {redact(self.tracking_uri)}: "
                                           f"{reason}")
        self.offline_reason = reason
        log.error("MLflow at %s is unreachable (%s); the sweep continues and stores its records in "
                  "%s",
                  redact(self.tracking_uri), reason, self.journal.path)
        self.journal.start(self.refs)

    def journal_op(self, op: dict) -> None:
        self.flush()
        self._journal(op)

    def _journal(self, op: dict) -> None:
        assert self.journal is not None
        self.journal.append(op)

    # -- trials
    def start_trial(self, trial_id: str, name: str, params: Mapping[str, Any]) -> bool:
        """Open a run for a trial attempt; False when the trial already completed (log nothing
        more)."""
        if trial_id in self.completed:
            self.trials[trial_id] = _Trial(ref=f"trial/{trial_id}/done", open=False, skip=True)
            log.info("trial %s already completed in MLflow run %s; not logging it again", name,
                     self.completed[trial_id])
            return False
        attempt = self.attempts.get(trial_id, 0) + 1
        self.attempts[trial_id] = attempt
        ref = f"trial/{trial_id}/{attempt}"
        self.trials[trial_id] = _Trial(ref=ref)
        self.submit({"op": "create_run", "ref": ref, "experiment_id": self.experiment_id,
                    "name": name, "tags": {
            "mlflow.parentRunId": self.parent_run_id, "collide.kind": "trial",
                        "collide.trial_id": trial_id,
            "collide.attempt": str(attempt)}})
        self.submit({"op": "log_params", "ref": ref, "params": param_texts(flatten(params))})
        return True

    def _live(self, trial_id: str) -> _Trial | None:
        trial = self.trials.get(trial_id)
        return trial if trial is not None and trial.open and not trial.skip else None

    def log_metrics(self, trial_id: str, metrics: Mapping[str, Any], step: int) -> None:
        trial = self._live(trial_id)
        now = int(time.time() * 1000)
        batch = [[k, v, now, step] for k, v in ((k, _numeric(v)) for k, v in metrics.items())
                 if v is not None]
        if trial is not None and batch:
            for start in range(0, len(batch), 500):
                self.submit({"op": "log_metrics", "ref": trial.ref,
                            "metrics": batch[start:start + 500]})

    def set_trial_tags(self, trial_id: str, tags: Mapping[str, str]) -> None:
        trial = self._live(trial_id)
        if trial is not None and tags:
            self.submit({"op": "set_tags", "ref": trial.ref, "tags": dict(tags)})

    def log_artifacts(self, trial_id: str, local_dir: str) -> None:
        trial = self._live(trial_id)
        if trial is not None:
            self.write({"op": "log_artifacts", "ref": trial.ref, "local_dir": str(local_dir)})

    def end_trial(self, trial_id: str, outcome: str, error: str | None = None) -> None:
        """End an open trial run: completed/stopped -> FINISHED, failed -> FAILED, killed ->
        KILLED."""
        trial = self._live(trial_id)
        if trial is None:
            return
        trial.open = False
        tags = {OUTCOME_TAG: outcome}
        if error is not None:
            tags["error"] = redact_text(error, self.tracking_uri)[-ERROR_TAG_CHARS:]
        self.submit({"op": "set_tags", "ref": trial.ref, "tags": tags})
        status = {"completed": "FINISHED", "stopped": "FINISHED", "failed": "FAILED"}.get(
            outcome, "KILLED")
        self.submit({"op": "terminate", "ref": trial.ref, "status": status,
                    "end_time": int(time.time() * 1000)})
        if outcome == "completed":
            self.completed[trial_id] = self.refs.get(trial.ref, trial.ref)

    def open_trials(self) -> list[str]:
        return [t for t, trial in self.trials.items() if trial.open and not trial.skip]

    # -- the sweep
    def end_sweep(self, status: str, summary: Mapping[str, float], state: str) -> None:
        """Summary metrics, a `collide.state` tag and the parent's final status (FINISHED, KILLED,
        FAILED)."""
        for op in sweep_end_ops(status, summary, state):
            self.write(op)


def sweep_end_ops(status: str, summary: Mapping[str, float], state: str) -> list[dict]:
    """The writes that end a sweep's parent run: summary metrics, `collide.state`, its final
    status."""
    now = int(time.time() * 1000)
    ops = [{"op": "log_metrics", "ref": "parent",
            "metrics": [[k, float(v), now, 0] for k, v in summary.items()]}]
    return ops[:1 if summary else 0] + [{"op": "set_tags", "ref": "parent",
                                         "tags": {"collide.state": state}},
                                        {"op": "terminate", "ref": "parent", "status": status,
                                         "end_time": now}]


def driver_tags() -> dict[str, str]:
    """Where the sweep's driver runs, so a later `--resume` can tell a dead driver from a live
    one."""
    return {"collide.driver_host": socket.gethostname(), "collide.driver_pid": str(os.getpid())}


def param_texts(params: Mapping[str, Any]) -> dict[str, str]:
    return {k: str(v)[:6000] for k, v in params.items()}
