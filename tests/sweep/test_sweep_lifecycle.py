"""How a sweep ends when it is stopped: Ctrl-C, SIGTERM, SIGKILL of the driver, then --resume.

Each test runs the real `collide` CLI as a process of its own (its own process group, as
a user's terminal would) with a real Ray and a real MLflow sqlite store, and signals it
the way a user or a scheduler would. No mocks.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from e2e_support import (
    TINY,
    collide,
    finished_trial_runs,
    hooks_env,
    kill_group,
    no_process_left,
    output_of,
    run_mark,
    trial_runs,
    trial_starts,
    wait_until,
)
from mlflow.tracking import MlflowClient

from sweep.tracking.records import find_sweep, trial_rows

pytestmark = pytest.mark.slow

# Trials of a few seconds each, one at a time, so a signal lands while some are running.
SLOW = [*TINY, "--num-cpus", "1", "--set", "data.params={num_rows: 30000, vocab_sizes: [40, 600, "
                                           "3000], num_dense: 2}",
        "--epochs", "3", "--set", "train.early_stopping_patience=null"]


def _sigkill_mid_sweep(args: list[str], launch: Path, env: dict[str, str] | None = None) -> Path:
    """Run `collide ARGS` and SIGKILL its process group once 2 trials finished and one runs; the
    store."""
    driver = collide(args, launch, env)
    db = launch / "mlflow.db"
    try:
        wait_until(lambda: len(finished_trial_runs(db)) >= 2 and trial_runs(db, "RUNNING"), 300,
                   "two finished trials and a running one", interval=0.05)
    finally:
        kill_group(driver)  # SIGKILL: no handler runs, Ray and the trials die with the group
    return db


def _runs(launch: Path, experiment: str) -> list:
    return find_sweep(MlflowClient(f"sqlite:///{launch / 'mlflow.db'}"), experiment,
                      completed=False).runs


@pytest.mark.parametrize(("signum", "to_group", "code"),
                         [(signal.SIGINT, True, 130), (signal.SIGTERM, False, 143),
                          (signal.SIGTERM, True, 143)],
                         ids=["ctrl-c-to-the-group", "sigterm-to-the-driver", "kill-TERM-PGID"])
def test_a_signal_stops_the_trials_and_nothing_reports_success(tmp_path, signum, to_group, code):
    """Ctrl-C reaches the terminal's whole process group; a scheduler's SIGTERM reaches the
    driver, or its whole group (`kill -TERM -PGID`, Slurm): either way the trials stop, the runs
    end KILLED, and no process of the sweep is left."""
    name = f"stop-{signum.name.lower()}-{'group' if to_group else 'driver'}"
    earlier = signum == signal.SIGINT  # one case is enough for the fallback to a completed sweep
    if earlier:
        done = collide(["sweep", "--preset", "smoke", "--name", name, "--strategies", "hash",
                        "--compressions", "4", *TINY], tmp_path)
        assert done.wait(timeout=300) == 0, output_of(done)
    mark = run_mark()
    sweep = collide(["sweep", "--preset", "smoke", "--name", name, "--strategies", "hash,frequency",
                     "--compressions", "2,4,8,16", *SLOW], tmp_path, mark)
    try:
        db = tmp_path / "mlflow.db"
        wait_until(lambda: len(finished_trial_runs(db)) >= 2 and trial_runs(db, "RUNNING"), 300,
                   "a finished and a running trial of the 2nd sweep", interval=0.05)
        if to_group:
            kill_group(sweep, signum)
        else:
            sweep.send_signal(signum)
        assert sweep.wait(timeout=120) == code
    finally:
        kill_group(sweep)
    no_process_left(mark)
    out = output_of(sweep)
    assert f"INTERRUPTED by {signum.name} (exit {code})" in out
    assert "Resume with: collide sweep --resume" in out
    # collide's own lines carry no traceback; a trial process that the signal reaches mid-shutdown
    # may still
    # have Ray forward its KeyboardInterrupt trace, prefixed "(trainable pid=...)" (seen once in
    # four CI runs)
    own = "\n".join(line for line in out.splitlines() if "(trainable pid=" not in line)
    assert "pareto files" not in out and "Traceback" not in own
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    interrupted = find_sweep(client, name, completed=False)
    assert interrupted.parent.info.status == "KILLED"
    assert interrupted.parent.data.tags["collide.state"] == "interrupted"
    statuses = Counter(r.info.status for r in interrupted.runs)
    assert (statuses["RUNNING"], statuses["FINISHED"] >= 1, statuses["KILLED"] >= 1) == (
        0, True, True), \
        statuses
    for run in interrupted.runs:
        if run.info.status == "KILLED":
            assert run.data.tags["collide.outcome"] == "killed"
    if not earlier:
        return
    # pareto and export fall back to the completed sweep, and say which one they used and what they
    # skipped
    pareto = collide(["pareto", "--experiment", name, "--out", str(tmp_path / "p")], tmp_path)
    assert pareto.wait(timeout=120) == 0
    said = output_of(pareto)
    used = find_sweep(client, name)
    assert f"parent run {used.parent_run_id}" in said
    assert f"skipped newer: {interrupted.parent_run_id} is KILLED" in said


@pytest.mark.parametrize("to_group", [False, True], ids=["to-the-driver", "ctrl-c-to-the-group"])
def test_a_signal_while_the_probes_train_is_an_interruption_not_a_bug(tmp_path, to_group):
    """A SIGINT that lands while the driver waits on the probe tasks, before any trial or parent
    run exists: exit 130 and the line saying so, no "internal error", no traceback of collide's,
    and no process left (the SystemError Ray makes of a signal that lands as it unpacks a result:
    `test_cli.py::test_an_error_raised_from_a_signal_is_an_interruption`)."""
    mark = run_mark()
    sweep = collide(["sweep", "--preset", "smoke", "--name", "stop-probe", "--strategies",
                     "frequency_embedding", "--compressions", "4", *TINY, "--set",
                     "data.params={num_rows: 300000, vocab_sizes: [40, 600, 3000], num_dense: 2}",
                     "--set", "probe.epochs=20"], tmp_path, mark)
    try:
        wait_until(lambda: "training the probe" in output_of(sweep), 300, "the probe tasks",
                   interval=0.05)
        if to_group:
            os.killpg(sweep.pid, signal.SIGINT)
        else:
            sweep.send_signal(signal.SIGINT)
        assert sweep.wait(timeout=120) == 130, output_of(sweep)
    finally:
        kill_group(sweep)
    no_process_left(mark)
    out = output_of(sweep)
    assert "interrupted by SIGINT" in out and "internal error" not in out, out
    own = "\n".join(line for line in out.splitlines() if "pid=" not in line)
    assert "Traceback" not in own, out


def test_resume_after_sigkill_runs_every_point_exactly_once(tmp_path):
    starts = tmp_path / "starts.jsonl"
    args = ["sweep", "--preset", "smoke", "--name", "resume", "--strategies", "hash,frequency",
            "--compressions", "2,4,8", *SLOW]
    hooks = hooks_env(trial_start_log=str(starts))
    db = _sigkill_mid_sweep(args, tmp_path, hooks)
    finished_before = set(finished_trial_runs(db))
    assert 2 <= len(finished_before) < 6
    left_running = [r for r in _runs(tmp_path, "resume") if r.info.status == "RUNNING"]
    assert left_running, "a SIGKILLed driver leaves its runs RUNNING until a resume cleans up"

    resumed = collide(["sweep", "--resume", "--name", "resume"], tmp_path, hooks)
    try:
        assert resumed.wait(timeout=600) == 0, output_of(resumed)
    finally:
        kill_group(resumed)
    points = {f"{s}-c{c}-d8-s0" for s in ("hash", "frequency") for c in (2, 4, 8)}
    trained = Counter(s["trial"] for s in trial_starts(starts) if s["kind"] == "train")
    assert set(trained) == points
    for name in finished_before:
        assert trained[name] == 1, \
            f"{name} finished before the kill but trained {trained[name]} times"
    runs = _runs(tmp_path, "resume")
    assert not [r.info.run_name for r in runs if r.info.status == "RUNNING"]
    finished = Counter(r.info.run_name for r in runs if r.info.status == "FINISHED")
    assert finished == Counter(points), finished  # exactly one FINISHED run per point
    for run in left_running:
        assert MlflowClient(f"sqlite:///{db}").get_run(run.info.run_id).info.status == "KILLED"
    sweep = find_sweep(MlflowClient(f"sqlite:///{db}"), "resume")  # the same sweep, now completed
    assert sweep.parent_run_id == left_running[0].data.tags["mlflow.parentRunId"]
    rows = trial_rows(sweep.runs)
    assert len(rows) == 6 and all(r["excluded"] is None for r in rows)
    experiment_dir = Path(sweep.parent.data.tags["collide.experiment_dir"])
    with open(experiment_dir / "pareto.csv", newline="") as f:
        table = list(csv.DictReader(f))
    # a point per trial and table precision
    assert sorted(r["trial_id"] for r in table if r["precision"] == "fp32") == sorted(
        r["trial_id"] for r in rows) and len(table) == 4 * len(rows)
    assert "pareto.csv" in [a.path for a in MlflowClient(f"sqlite:///{db}").list_artifacts(
        sweep.parent_run_id)]
    before = len(trial_starts(starts))
    # says so, runs nothing
    again = collide(["sweep", "--resume", "--name", "resume"], tmp_path, hooks)
    assert again.wait(timeout=120) == 0
    assert "had already completed: nothing to resume" in output_of(again)
    assert len(trial_starts(starts)) == before


def test_resume_of_an_optuna_sweep_after_sigkill(tmp_path):
    """Restored trials replay what they reported (sizes included), which Optuna's multi-objective
    check needs."""
    starts = tmp_path / "starts.jsonl"
    args = ["sweep", "--preset", "smoke", "--name", "optuna", "--search", "optuna", "--num-samples",
            "6",
            "--strategies", "hash,frequency,qr", "--compressions", "2,4,8,16", *SLOW]
    hooks = hooks_env(trial_start_log=str(starts))
    _sigkill_mid_sweep(args, tmp_path, hooks)
    finished_ids = {r.data.tags["collide.trial_id"] for r in _runs(tmp_path, "optuna")
                    if r.info.status == "FINISHED"}
    resumed = collide(["sweep", "--resume", "--name", "optuna"], tmp_path, hooks)
    try:
        assert resumed.wait(timeout=600) == 0, output_of(resumed)
    finally:
        kill_group(resumed)
    trained = Counter(s["trial_id"] for s in trial_starts(starts) if s["kind"] == "train")
    assert len(trained) == 6
    for trial_id in finished_ids:
        assert trained[trial_id] == 1
    runs = _runs(tmp_path, "optuna")
    assert not [r for r in runs if r.info.status == "RUNNING"]
    finished = Counter(r.data.tags["collide.trial_id"] for r in runs if r.info.status == "FINISHED")
    # one FINISHED run per sampled trial
    assert len(finished) == 6 and set(finished.values()) == {1}


def test_timeout_stops_the_sweep_like_a_scheduler_and_resume_finishes_it(tmp_path):
    """`timeout` signals collide and then its whole process group (Ray included, before Ray ran
    in sessions of its own). collide stops the trials, says 143, leaves nothing running, and
    `--resume` finishes the sweep."""
    mark = run_mark()
    args = ["timeout", "35", sys.executable, "-m", "sweep.cli", "sweep", "--preset", "smoke",
            "--name", "timed", "--strategies", "hash,frequency", "--compressions", "2,4,8,16",
            *SLOW, "--seeds", "0,1", "--set", "train.batch_size=32"]  # 16 trials of seconds each
    done = subprocess.run(args, cwd=tmp_path, env={**os.environ, **mark}, capture_output=True,
                          text=True, timeout=240)
    out = done.stdout + done.stderr
    assert done.returncode == 124, out  # timeout's own code: the command ran out of time
    assert "INTERRUPTED by SIGTERM (exit 143)" in out
    no_process_left(mark)
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    stopped = find_sweep(client, "timed", completed=False)
    assert stopped.parent.info.status == "KILLED"
    assert {r.info.status for r in stopped.runs} <= {"FINISHED", "KILLED"}
    resumed = collide(["sweep", "--resume", "--name", "timed"], tmp_path, mark)
    try:
        assert resumed.wait(timeout=600) == 0, output_of(resumed)
    finally:
        kill_group(resumed)
    no_process_left(mark)
    finished = find_sweep(client, "timed")
    assert finished.parent_run_id == stopped.parent_run_id
    assert len(trial_rows(finished.runs)) == 16
    assert all(row["excluded"] is None for row in trial_rows(finished.runs))


def test_a_signal_as_the_sweep_ends_leaves_no_ray_process_and_no_success_it_did_not_finish(
        tmp_path):
    """Ctrl-C just after the last trial ended (while collide writes the frontier, prints, and
    shuts Ray down): the process ends 0 only if it had already finished, never with an "Exception
    ignored" trace, and no Ray agent is left behind."""
    mark = run_mark()
    sweep = collide(["sweep", "--preset", "smoke", "--name", "late", "--strategies", "hash",
                     "--compressions", "4,16", *TINY], tmp_path, mark)
    try:
        wait_until(lambda: "pareto files:" in output_of(sweep), 300, "the sweep's end",
                   interval=0.02)
        kill_group(sweep, signal.SIGINT)
        code = sweep.wait(timeout=120)
    finally:
        kill_group(sweep)
    out = output_of(sweep)
    assert code in (0, 130), out
    assert "Exception ignored" not in out and "Traceback" not in out
    if code == 130:
        assert "interrupted by SIGINT" in out
    no_process_left(mark)
