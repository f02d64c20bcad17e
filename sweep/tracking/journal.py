"""A local journal of MLflow writes that could not be made, replayed once the store is back.

When the tracking store stays unreachable past the tracker's retries, `SweepTracker`
stops calling MLflow and appends every further write here instead, so the sweep runs on
and loses nothing. `collide sync SWEEP_DIR` (or the end of the sweep, if the store came
back) replays the journal in order.

Layout, inside the sweep's Ray Tune experiment directory (collide's own)::

    tracking-journal/
      ops.jsonl        one write per line: {"op", "ref", ...}; the first line maps the
                       refs already known to MLflow run ids ({"op": "refs", "runs": {...}})
      artifacts/NNNN/  copies of the directories the journaled log_artifacts ops upload
      progress.json    how many ops a replay has applied, and the refs it resolved
                       (so an interrupted replay resumes where it stopped)
      done             written when every op is applied

A ref names a run independently of MLflow: "parent" or "trial/<trial id>/<attempt>".
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweep.errors import UserError

__all__ = ["JOURNAL_DIR", "JournalReplayError", "TrackingJournal", "pending_journal", "replay"]

log = logging.getLogger(__name__)

JOURNAL_DIR = "tracking-journal"


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, sort_keys=True))
    os.replace(tmp, path)


class JournalReplayError(UserError):
    """A journaled write was refused again; names the record, and the next replay starts there."""


@dataclass
class TrackingJournal:
    """Append-only journal of tracker writes (see the module docstring)."""

    path: Path

    @property
    def ops_file(self) -> Path:
        return self.path / "ops.jsonl"

    def start(self, known_runs: dict[str, str]) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "done").unlink(missing_ok=True)
        self.append({"op": "refs", "runs": dict(known_runs)})

    def append(self, op: dict) -> None:
        op = dict(op)
        # the source may be temporary: keep a copy
        if op.get("op") in ("log_artifacts", "log_artifact"):
            count = (len(list((self.path / "artifacts").glob("*")))
                     if (self.path / "artifacts").is_dir() else 0)
            copy = self.path / "artifacts" / f"{count:04d}"
            if op["op"] == "log_artifacts":
                shutil.copytree(op["local_dir"], copy)
                op["local_dir"] = str(copy.relative_to(self.path))
            else:
                copy.mkdir(parents=True)
                shutil.copy2(op["local_path"], copy)
                op["local_path"] = str((copy / Path(op["local_path"]).name).relative_to(self.path))
        with open(self.ops_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(op, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def ops(self) -> list[dict]:
        if not self.ops_file.is_file():
            return []
        ops = []
        for number, line in enumerate(self.ops_file.read_text(encoding="utf-8").splitlines(),
                                      start=1):
            if not line.strip():
                continue
            try:
                ops.append(json.loads(line))
            except json.JSONDecodeError:  # a write cut short by a kill: only the last line can be
                log.warning("%s:%d: incomplete journal line ignored", self.ops_file, number)
        return ops

    @property
    def is_done(self) -> bool:
        return (self.path / "done").is_file()


def pending_journal(sweep_dir: str | Path) -> TrackingJournal | None:
    """The journal of the sweep in `sweep_dir` if it holds writes not yet replayed."""
    journal = TrackingJournal(Path(sweep_dir) / JOURNAL_DIR)
    return journal if journal.ops_file.is_file() and not journal.is_done else None


def replay(journal: TrackingJournal, apply: Callable[[dict, dict[str, str]], str | None],
           on_progress: Callable[[int, int], None] | None = None) -> int:
    """Apply every op not yet applied, in order; returns how many were applied now.

    `apply(op, refs)` performs one op against MLflow, resolving `op["ref"]` through `refs`,
    and returns the run id when the op created a run. Progress is saved after every op.
    """
    progress_file = journal.path / "progress.json"
    progress = (json.loads(progress_file.read_text()) if progress_file.is_file()
                else {"applied": 0, "refs": {}})
    refs: dict[str, str] = dict(progress["refs"])
    ops = journal.ops()
    applied = 0
    for index in range(progress["applied"], len(ops)):
        op = dict(ops[index])
        if op["op"] == "refs":
            refs.update(op["runs"])
        else:
            if op["op"] == "log_artifacts":
                op["local_dir"] = str(journal.path / op["local_dir"])
            elif op["op"] == "log_artifact":
                op["local_path"] = str(journal.path / op["local_path"])
            try:
                created = apply(op, refs)
            except Exception as exc:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise JournalReplayError(
                    f"{journal.ops_file}: record {index + 1} of {len(ops)} ({op['op']}) could not "
                    "be "
                    f"written: {why}; fix the cause and sync again: it continues from this record"
                ) from exc
            if created is not None:
                refs[op["ref"]] = created
        applied += 1
        _write_json(progress_file, {"applied": index + 1, "refs": refs, "time": time.time()})
        if on_progress is not None:
            on_progress(index + 1, len(ops))
    (journal.path / "done").write_text(json.dumps({"applied": len(ops), "time": time.time()}))
    return applied
