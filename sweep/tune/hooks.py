"""Fault injection and an audit trail for collide's own tests: not a user option.

Tests of failure handling need a trial that fails on purpose, and tests of resuming need to
know which trials trained. The driver reads these hooks once, from the environment variable
COLLIDE_TEST_HOOKS (a JSON object, e.g. {"fail_trials": ["hash-c16-d8-s0"],
"trial_start_log": "/abs/starts.jsonl"}), and hands them to every trial with the data, so they
reach trials on any node. They are never part of a sweep's config, its record in MLflow, or
the command line.
"""

from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass, fields
from pathlib import Path

__all__ = ["ENVIRONMENT_VARIABLE", "TrialHooks"]

ENVIRONMENT_VARIABLE = "COLLIDE_TEST_HOOKS"


@dataclass(frozen=True)
class TrialHooks:
    # trial names (e.g. hash-c16-d8-s0) that raise when they start
    fail_trials: tuple[str, ...] = ()
    # each trainable start appends a JSON line to this absolute path
    trial_start_log: str | None = None
    # [absolute directory, count]: a trial that starts training waits there until `count`
    # trials have started (tests that need trials running side by side, e.g. on two nodes)
    start_barrier: tuple[str, int] | None = None

    @classmethod
    def from_environment(cls) -> TrialHooks:
        text = os.environ.get(ENVIRONMENT_VARIABLE)
        if not text:
            return cls()
        values = json.loads(text)
        known = {f.name for f in fields(cls)}
        if not isinstance(values, dict) or set(values) - known:
            raise RuntimeError(f"{ENVIRONMENT_VARIABLE} must be a JSON object with keys "
                               f"{sorted(known)}, got {text!r}")
        barrier = values.get("start_barrier")
        hooks = cls(fail_trials=tuple(values.get("fail_trials", ())),
                    trial_start_log=values.get("trial_start_log"),
                    start_barrier=None if barrier is None else (str(barrier[0]), int(barrier[1])))
        for what, path in (("trial_start_log", hooks.trial_start_log),
                           ("start_barrier", hooks.start_barrier and hooks.start_barrier[0])):
            if path is not None and not Path(path).is_absolute():
                raise RuntimeError(f"{ENVIRONMENT_VARIABLE}: {what} must be an absolute path "
                                   f"(trials run elsewhere), got {path!r}")
        return hooks

    def started(self, name: str, trial_id: str, kind: str) -> None:
        """Note a trainable start (`kind`: "train" or "restored"); fail it if it is to fail."""
        if self.trial_start_log:
            line = json.dumps({"trial": name, "trial_id": trial_id, "kind": kind,
                               "pid": os.getpid(),
                               "host": socket.gethostname(), "time": time.time()})
            with open(self.trial_start_log, "a", encoding="utf-8") as f:
                f.write(line + "\n")
        if kind == "train" and name in self.fail_trials:
            raise RuntimeError(f"injected failure for trial {name} ({ENVIRONMENT_VARIABLE} "
                               "fail_trials)")
        if kind == "train" and self.start_barrier is not None:
            self._wait_at_barrier(trial_id)

    def _wait_at_barrier(self, trial_id: str, timeout_s: float = 180.0) -> None:
        directory, count = Path(self.start_barrier[0]), self.start_barrier[1]
        directory.mkdir(parents=True, exist_ok=True)
        (directory / trial_id).touch()
        deadline = time.monotonic() + timeout_s
        while len(list(directory.iterdir())) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{ENVIRONMENT_VARIABLE} start_barrier: {count} trials did not "
                                   f"start within {timeout_s:.0f} s")
            time.sleep(0.1)
