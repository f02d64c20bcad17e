"""The test hooks' start barrier: trials that start training wait until `count` have started."""

from __future__ import annotations

import json
import threading

import pytest

from sweep.tune.hooks import ENVIRONMENT_VARIABLE, TrialHooks


def test_trials_wait_at_the_barrier_until_enough_have_started(tmp_path, monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE,
                       json.dumps({"start_barrier": [str(tmp_path / "barrier"), 2]}))
    hooks = TrialHooks.from_environment()
    first = threading.Thread(target=hooks.started, args=("a", "t1", "train"))
    first.start()
    first.join(timeout=0.5)
    assert first.is_alive(), "the first trial went on before the second had started"
    hooks.started("b", "t2", "train")
    first.join(timeout=10)
    assert not first.is_alive()
    hooks.started("c", "t3", "train")  # later trials do not wait
    hooks.started("a", "t1", "restored")  # a restore never waits


def test_a_relative_barrier_directory_is_refused(monkeypatch):
    monkeypatch.setenv(ENVIRONMENT_VARIABLE, json.dumps({"start_barrier": ["barrier", 2]}))
    with pytest.raises(RuntimeError, match="start_barrier must be an absolute path"):
        TrialHooks.from_environment()


def test_a_barrier_that_never_fills_fails_the_trial(tmp_path):
    hooks = TrialHooks(start_barrier=(str(tmp_path), 2))
    with pytest.raises(RuntimeError, match="2 trials did not start within 0 s"):
        hooks._wait_at_barrier("t1", timeout_s=0.2)
