"""What a sweep prints: the progress line, one line per ended trial, Ray's output kept in a file."""

from __future__ import annotations

import io
import logging
import re
from pathlib import Path
from types import SimpleNamespace

import mlflow
import pytest

from sweep.tracking.ui import runs_view_url
from sweep.tracking.writer import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG
from sweep.tune.output import (
    CLEAR_LINE,
    LOG_FILE,
    ProgressCallback,
    RayOutput,
    SweepProgress,
    TableReporter,
    frontier_size,
)

ANSI = re.compile(r"\x1b\[")


def _trials(*statuses: str) -> list:
    return [SimpleNamespace(status=s) for s in statuses]


def test_frontier_size_counts_points_no_other_beats_in_both():
    assert frontier_size([]) == 0
    assert frontier_size([(10, 0.5), (20, 0.4), (30, 0.45), (5, 0.6)]) == 3
    assert frontier_size([(10, 0.5), (10, 0.5), (10, 0.6)]) == 1  # ties count once


def test_plain_output_has_one_line_per_ended_trial_and_no_ansi():
    out = io.StringIO()
    with SweepProgress("p1", 3, out, tty=False) as progress:
        progress.step(_trials("RUNNING", "RUNNING", "PENDING"))
        for trial_id in ("a", "b", "c"):
            progress.trial_started(trial_id)
        progress.trial_result("a", {"final": True, "val_logloss": 0.61234, "total_bytes": 2048})
        progress.trial_ended("a", "hash-c4-d8-s0")
        progress.trial_ended("b", "qr-c4-d8-s0", "RuntimeError: boom")
        progress.trial_ended("c", "hash-c16-d8-s0")  # no final result: stopped by the scheduler
    lines = out.getvalue().splitlines()
    assert not ANSI.search(out.getvalue())
    assert lines[0] == ("progress: 0/3 done (0 failed), 2 running, 1 pending | 0:00 elapsed, ETA "
                        "-- | frontier size 0")
    assert re.fullmatch(r"trial hash-c4-d8-s0 done: val_logloss 0\.6123, total 2\.0 KiB, \d+\.\d s",
                        lines[1])
    assert re.fullmatch(r"trial qr-c4-d8-s0 FAILED after \d+\.\d s: RuntimeError: boom", lines[2])
    assert re.fullmatch(r"trial hash-c16-d8-s0 stopped early by the scheduler after \d+\.\d s "
                        r"\(not ranked\)",
                        lines[3])
    assert len(lines) == 4  # the next plain progress line is due only after PLAIN_EVERY_S
    assert progress.counts["done"] == 3 and progress.counts["failed"] == 1


def test_terminal_output_redraws_one_line_in_place_and_clears_it_for_log_lines(caplog):
    out = io.StringIO()
    handler = logging.StreamHandler(io.StringIO())
    logging.getLogger().addHandler(handler)
    try:
        with SweepProgress("p2", 2, out, tty=True) as progress:
            progress.step(_trials("TERMINATED", "RUNNING"))
            drawn = out.getvalue()
            assert drawn.startswith(CLEAR_LINE + "progress: 1/2 done") and "\n" not in drawn
            # nothing finished in this run yet: a resumed trial does not count
            assert "ETA --" in drawn
            logging.getLogger("collide-test").warning("a warning")
            # taken off the line before the log line prints
            assert out.getvalue().endswith(CLEAR_LINE)
            progress.trial_result("t", {"final": True, "val_logloss": 0.5, "total_bytes": 100})
            progress.trial_ended("t", "full-d8-s0")
        text = out.getvalue()
        assert "\ntrial full-d8-s0" not in text and CLEAR_LINE + "trial full-d8-s0 done" in text
        assert "progress: 2/2 done (0 failed), 0 running, 0 pending" in text and "ETA 0:00" in text
        assert text.endswith(CLEAR_LINE)  # nothing left on the line when the sweep ends
    finally:
        logging.getLogger().removeHandler(handler)
    assert not any(f.__self__ is progress for f in handler.filters if hasattr(f, "__self__"))


def test_callback_without_a_live_progress_does_nothing():
    callback = ProgressCallback("nobody")
    callback.on_step_end(1, _trials("RUNNING"))
    callback.on_trial_start(1, [], SimpleNamespace(trial_id="x"))


def test_ray_output_keeps_ray_logs_and_trial_lines_in_the_sweep_log(tmp_path, capsys):
    ray_logger = logging.getLogger("ray")
    before = (ray_logger.handlers[:], ray_logger.propagate)
    with RayOutput(verbose=False) as output:
        logging.getLogger("ray.tune.experiment").warning("Experiment state snapshotting ...")
        output._worker_lines({"pid": 42, "ip": "10.0.0.2", "actor_name": "trainable",
                              "lines": ["Checkpoint successfully created at: x"]})
        TableReporter(max_report_frequency=1)._print("== Status ==")
        # the trial line says it
        logging.getLogger("ray.tune.tune").error("Trial task failed for trial t")
        # not about a trial: shown
        logging.getLogger("ray._private.worker").error("lost the cluster")
        output.attach(tmp_path)
        logging.getLogger("ray.train").info("after attach")
        path = output.path
    assert path == tmp_path / LOG_FILE
    log = path.read_text()
    for text in ("Experiment state snapshotting", "(trainable pid=42, ip=10.0.0.2) Checkpoint "
                                                  "successfully",
                 "== Status ==", "Trial task failed", "lost the cluster", "after attach"):
        assert text in log
    captured = capsys.readouterr()
    assert "lost the cluster" in captured.err and "Trial task failed" not in captured.err
    assert "Checkpoint" not in captured.out + captured.err and "== Status ==" not in captured.out
    assert (ray_logger.handlers, ray_logger.propagate) == before  # restored


def test_verbose_ray_output_changes_nothing(tmp_path, capsys):
    ray_logger = logging.getLogger("ray")
    before = ray_logger.handlers[:]
    with RayOutput(verbose=True) as output:
        assert ray_logger.handlers == before
        output.attach(tmp_path)
        TableReporter(max_report_frequency=1)._print("== Status ==")
    assert not (tmp_path / LOG_FILE).exists() and "== Status ==" in capsys.readouterr().out


def test_runs_view_url_is_the_direct_link_without_credentials():
    assert runs_view_url("http://127.0.0.1:5000",
                         "7") == "http://127.0.0.1:5000/#/experiments/7/runs"
    assert runs_view_url("https://u:pw@mlflow.example/base/?token=x", "12") == \
        "https://mlflow.example/base/#/experiments/12/runs"


def test_the_experiment_kind_is_one_the_installed_mlflow_ui_knows():
    """MLflow's UI reads `mlflow.experimentKind` to open the model-training view; check the value
    against the UI bundle of the MLflow installed here, not against memory."""
    bundle = Path(mlflow.__file__).parent / "server" / "js" / "build" / "static" / "js"
    if not bundle.is_dir():
        pytest.skip(f"this MLflow install has no UI bundle at {bundle}")
    texts = [p.read_text(errors="replace") for p in bundle.glob("main.*.js")]
    assert any(f'"{EXPERIMENT_KIND}"' in t
               for t in texts), f"{EXPERIMENT_KIND} unknown to the installed MLflow UI"
    assert any(EXPERIMENT_KIND_TAG in t
               for t in [p.read_text(errors="replace") for p in bundle.glob("*.js")])
