"""The sweep's MLflow tracker, its journal and the reading side, on a real sqlite MLflow store.

No Ray: these drive `SweepTracker` the way the Tune callback does. A lost server is a real
fault: the tracker's client is pointed at a port nobody listens on.
"""

from __future__ import annotations

import threading
import time

import pytest
from e2e_support import free_port
from mlflow.tracking import MlflowClient

from sweep.errors import UserError
from sweep.tracking.journal import JournalReplayError, pending_journal, replay
from sweep.tracking.records import find_sweep, trial_rows
from sweep.tracking.store import TrackingUnavailableError, check_tracking_uri
from sweep.tracking.uri import has_credentials, redact, redact_text
from sweep.tracking.writer import SweepTracker, apply_op


@pytest.fixture
def store(tmp_path):
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


def _sweep(store, name="exp"):
    return SweepTracker.start(store, name, retry_s=0.5)


def _complete(tracker, trial_id, name, loss, size):
    tracker.start_trial(trial_id, name,
                        {"strategy": "hash", "compression": 4.0, "dim": 8, "seed": 0})
    tracker.log_metrics(trial_id, {"val_logloss": loss, "best_val_logloss": loss,
                                   "total_bytes": size}, step=1)
    tracker.end_trial(trial_id, "completed")
    tracker.flush()  # the writer thread has applied them


@pytest.mark.parametrize(("uri", "shown", "secret"), [
    ("postgresql://user:hunter2@db:5432/mlflow", "postgresql://user:***@db:5432/mlflow", "hunter2"),
    ("https://tok3n@mlflow.example/", "https://***@mlflow.example/", "tok3n"),
    ("https://mlflow.example/?token=abc123&x=1", "https://mlflow.example/?token=***&x=1", "abc123"),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000", None),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db", None),
])
def test_redact(uri, shown, secret):
    assert redact(uri) == shown
    assert has_credentials(uri) is (secret is not None)
    if secret:
        assert secret not in redact_text(f"could not reach {uri} (it said: bad secret {secret})",
                                         uri)


def test_unreachable_store_is_found_in_seconds(tmp_path):
    started = time.monotonic()
    with pytest.raises(TrackingUnavailableError,
                       match=r"http://u:\*\*\*@127.0.0.1:\d+ is not reachable"):
        check_tracking_uri(f"http://u:pw@127.0.0.1:{free_port()}")
    with pytest.raises(TrackingUnavailableError, match="directory .*nowhere does not exist"):
        check_tracking_uri(f"sqlite:///{tmp_path / 'nowhere' / 'mlflow.db'}")
    (tmp_path / "not-a.db").write_text("this is not sqlite")
    with pytest.raises(UserError, match=r"not-a\.db is not a SQLite database"):
        check_tracking_uri(f"sqlite:///{tmp_path / 'not-a.db'}")
    assert time.monotonic() - started < 10


def test_latest_completed_sweep_is_used_and_newer_dead_ones_are_named(store):
    done = _sweep(store)
    _complete(done, "t1", "hash-c4-d8-s0", 0.5, 100)
    done.end_sweep("FINISHED", {}, "completed")
    dead = _sweep(store)  # a driver that was killed: its parent stays RUNNING
    dead.start_trial("t9", "hash-c8-d8-s0", {"strategy": "hash"})
    client = MlflowClient(store)
    used = find_sweep(client, "exp")
    assert used.parent_run_id == done.parent_run_id
    assert used.skipped == [f"{dead.parent_run_id} is RUNNING"]
    assert "skipped newer" in used.describe()
    assert find_sweep(client, "exp", completed=False).parent_run_id == dead.parent_run_id
    dead.end_sweep("KILLED", {}, "interrupted")
    done.client.delete_run(done.parent_run_id)
    with pytest.raises(ValueError,
                       match=rf"no completed sweep; the newest, {dead.parent_run_id}, is KILLED. "
                                         r"Resume it with: collide sweep --resume"):
        find_sweep(client, "exp")


def test_reopen_kills_stale_attempts_and_keeps_completed_trials(store):
    first = _sweep(store)
    _complete(first, "t1", "hash-c4-d8-s0", 0.5, 100)
    first.start_trial("t2", "hash-c8-d8-s0", {"strategy": "hash"})  # running when the driver died
    first.flush()  # its writes reached MLflow before it died
    client = MlflowClient(store)
    again = SweepTracker.reopen(store, find_sweep(client, "exp", completed=False), retry_s=0.5)
    assert not again.start_trial("t1", "hash-c4-d8-s0", {})  # completed: nothing logged twice
    assert again.start_trial("t2", "hash-c8-d8-s0", {"strategy": "hash"})
    again.log_metrics("t2", {"best_val_logloss": 0.4, "total_bytes": 50}, step=1)
    again.end_trial("t2", "completed")
    again.end_sweep("FINISHED", {}, "completed")
    runs = find_sweep(client, "exp").runs
    by_trial = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["collide.trial_id"], []).append(
            (run.data.tags["collide.attempt"], run.info.status,
             run.data.tags.get("collide.outcome")))
    assert sorted(by_trial["t1"]) == [("1", "FINISHED", "completed")]
    assert sorted(by_trial["t2"]) == [("1", "KILLED", "killed"), ("2", "FINISHED", "completed")]
    rows = {r["trial_id"]: r for r in trial_rows(runs)}
    assert rows["t2"]["attempts"] == 2
    assert rows["t2"]["excluded"] is None
    assert rows["t2"]["val_logloss"] == 0.4


def test_excluded_rows_say_why(store):
    tracker = _sweep(store)
    _complete(tracker, "ok", "hash-c4-d8-s0", 0.5, 100)
    tracker.start_trial("asha", "hash-c64-d8-s0", {"strategy": "hash"})
    tracker.log_metrics("asha", {"best_val_logloss": 0.45, "total_bytes": 10, "epochs_run": 1},
                        step=1)
    tracker.end_trial("asha", "stopped")
    tracker.start_trial("bad", "hash-c16-d8-s0", {"strategy": "hash"})
    tracker.end_trial("bad", "failed", error="Traceback...\nRuntimeError: boom")
    tracker.start_trial("cut", "hash-c32-d8-s0", {"strategy": "hash"})
    tracker.end_trial("cut", "killed")
    tracker.flush()
    rows = {r["trial_id"]: r
            for r in trial_rows(find_sweep(MlflowClient(store), "exp", completed=False).runs)}
    assert rows["ok"]["excluded"] is None
    assert rows["asha"]["excluded"].startswith("stopped early by the scheduler after 1 epoch(s)")
    assert rows["asha"]["val_logloss"] is None  # so it can never be on the frontier, nor exported
    assert rows["bad"]["excluded"] == "failed: RuntimeError: boom"
    assert rows["cut"]["excluded"] == "interrupted before it finished"


def test_lost_store_goes_to_the_journal_and_sync_replays_it(store, tmp_path):
    tracker = _sweep(store)
    tracker.attach_journal(tmp_path / "sweep")
    _complete(tracker, "t1", "hash-c4-d8-s0", 0.5, 100)
    real = tracker.client
    tracker.client = MlflowClient(f"http://127.0.0.1:{free_port()}")  # the server is gone
    bundle = tmp_path / "ckpt"
    (bundle / "bundles").mkdir(parents=True)
    (bundle / "bundles" / "manifest.json").write_text("{}")
    (bundle / "metrics.json").write_text("{}")
    started = time.monotonic()
    tracker.start_trial("t2", "hash-c8-d8-s0", {"strategy": "hash"})
    assert tracker.offline and time.monotonic() - started < 10
    tracker.log_metrics("t2", {"best_val_logloss": 0.4, "total_bytes": 50}, step=1)
    tracker.log_artifacts("t2", str(bundle))
    (bundle / "metrics.json").unlink()  # Tune may delete the checkpoint: the journal kept a copy
    tracker.end_trial("t2", "completed")
    tracker.end_sweep("FINISHED", {"num_trials": 2}, "completed")
    journal = pending_journal(tmp_path / "sweep")
    assert journal is not None
    applied = replay(journal, lambda op, refs: apply_op(real, op, refs))
    assert applied == len(journal.ops()) and pending_journal(tmp_path / "sweep") is None
    sweep = find_sweep(real, "exp")
    assert sweep.parent.info.status == "FINISHED"
    rows = {r["trial_id"]: r for r in trial_rows(sweep.runs)}
    assert rows["t2"]["val_logloss"] == 0.4 and rows["t2"]["status"] == "FINISHED"
    assert [a.path for a in real.list_artifacts(rows["t2"]["run_id"])] == [
        "bundles", "metrics.json"]


def test_replay_resumes_where_an_interrupted_replay_stopped(store, tmp_path):
    tracker = _sweep(store)
    tracker.attach_journal(tmp_path / "sweep")
    real = tracker.client
    tracker.client = MlflowClient(f"http://127.0.0.1:{free_port()}")
    for i in range(3):
        tracker.start_trial(f"t{i}", f"hash-c{i + 2}-d8-s0", {"strategy": "hash"})
        tracker.end_trial(f"t{i}", "completed")
    tracker.flush()
    journal = pending_journal(tmp_path / "sweep")
    calls = []

    def flaky(op, refs):
        if len(calls) == 3:
            raise ConnectionError("server went away again")
        calls.append(op["op"])
        return apply_op(real, op, refs)

    with pytest.raises(JournalReplayError,
                       match=r"record \d+ of \d+ \(\w+\) could not be written: server went away"):
        replay(journal, flaky)
    replay(journal, lambda op, refs: apply_op(real, op, refs))  # continues; creates nothing twice
    runs = find_sweep(real, "exp", completed=False).runs
    assert sorted(r.info.run_name for r in runs) == ["hash-c2-d8-s0", "hash-c3-d8-s0",
                                                     "hash-c4-d8-s0"]


def test_a_retried_create_run_finds_the_run_it_already_made(store):
    tracker = _sweep(store)
    op = {"op": "create_run", "ref": "trial/t1/1", "experiment_id": tracker.experiment_id,
          "name": "hash-c4-d8-s0",
          "tags": {"mlflow.parentRunId": tracker.parent_run_id, "collide.kind": "trial",
                   "collide.trial_id": "t1",
                   "collide.attempt": "1"}}
    first = apply_op(tracker.client, op, tracker.refs)
    # e.g. the first reply was lost in a timeout
    assert apply_op(tracker.client, op, tracker.refs) == first
    assert len(find_sweep(MlflowClient(store), "exp", completed=False).runs) == 1


class _ThreadSpy:
    """The tracker's real client, noting which thread makes each call."""

    def __init__(self, client):
        self._client, self.threads = client, []

    def __getattr__(self, name):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            self.threads.append(threading.current_thread().name)
            return method(*args, **kwargs)
        return call


def test_trial_writes_run_on_the_writer_thread_in_order_and_it_ends_with_close(store):
    tracker = _sweep(store)
    tracker.client = spy = _ThreadSpy(tracker.client)
    tracker.start_trial("t1", "hash-c4-d8-s0", {"strategy": "hash"})
    for step in range(1, 31):
        tracker.log_metrics("t1", {"val_logloss": 1.0 / step}, step=step)
    tracker.end_trial("t1", "completed")
    writer = tracker._thread
    tracker.close()
    assert set(spy.threads) == {"collide-mlflow-writer"}  # none from the caller
    assert not writer.is_alive()
    (run,) = find_sweep(MlflowClient(store), "exp", completed=False).runs
    history = MlflowClient(store).get_metric_history(run.info.run_id, "val_logloss")
    assert [m.step for m in history] == list(range(1, 31))
    assert run.info.status == "FINISHED"  # the end came after every metric


def test_a_direct_write_waits_for_the_submitted_ones(store):
    tracker = _sweep(store)
    tracker.start_trial("t1", "hash-c4-d8-s0", {"strategy": "hash"})
    tracker.end_trial("t1", "completed")
    tracker.end_sweep("FINISHED", {}, "completed")  # direct: after the trial's writes
    (run,) = find_sweep(MlflowClient(store), "exp").runs
    assert run.info.status == "FINISHED"
    tracker.close()


def test_what_the_writer_thread_meets_is_raised_in_the_caller(store):
    tracker = _sweep(store)  # no journal attached: a lost store cannot be written around
    tracker.client = MlflowClient(f"http://127.0.0.1:{free_port()}")
    tracker.retry_s = 0.0
    tracker.start_trial("t1", "hash-c4-d8-s0", {"strategy": "hash"})
    with pytest.raises(TrackingUnavailableError, match="create_run failed"):
        tracker.flush()
    writer = tracker._thread
    tracker.close()
    assert not writer.is_alive()
