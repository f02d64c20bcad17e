"""What a sweep prints: one progress line, one line per ended trial; Ray's own output to a log file.

By default (`verbose=False`):
- `SweepProgress` prints one line per trial when it ends (name, val logloss, total bytes,
  seconds, or the error) and a progress line: trials done, running and failed, elapsed time,
  ETA and the size of the frontier so far. On a terminal the progress line is redrawn in
  place; anywhere else (a pipe, CI, `ray job submit` logs) every line is plain text without
  ANSI codes, and the progress line is printed every `PLAIN_EVERY_S` seconds.
- `RayOutput` sends Ray's own output to `<sweep dir>/ray-output.log`: the "ray" loggers of the
  driver (errors other than Tune's own trial errors still reach the terminal too), the lines
  Ray forwards from trial processes (checkpoint chatter, trial warnings, tracebacks), and
  Tune's status table.

With `verbose=True` Ray prints as it always does and no progress line is drawn.

Both live in the driver. Ray Tune pickles its callbacks into the experiment (for
`--resume`), so `ProgressCallback` holds only the parent run id and finds the live
`SweepProgress` through `progress_for`.
"""

from __future__ import annotations

import contextlib
import logging
import math
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from ray.tune import Callback, CLIReporter

from sweep.frontier.pareto import format_bytes, pareto_mask
from sweep.tune.points import point_name, point_of

__all__ = ["LOG_FILE", "PENDING_LOGGER", "ProgressCallback", "RayOutput", "SweepProgress",
           "TableReporter", "progress_for"]

LOG_FILE = "ray-output.log"
PLAIN_EVERY_S = 30.0  # progress line period when the output is not a terminal
TTY_EVERY_S = 0.5  # redraw period on a terminal
CLEAR_LINE = "\r\x1b[K"
# Loggers whose errors are about trials, which the per-trial lines already report.
TUNE_LOGGERS = ("ray.tune", "ray.train", "ray.air")
# Where Tune says why no trial has started for a while (resources no node has free, or ever
# will): shown on the terminal too, since a sweep that only waits would otherwise say nothing.
PENDING_LOGGER = "ray.tune.execution.insufficient_resources_manager"

_PROGRESS: dict[str, SweepProgress] = {}
_CAPTURING: list[RayOutput] = []  # the RayOutput capturing Ray's output in this process, if any


def progress_for(parent_run_id: str) -> SweepProgress | None:
    return _PROGRESS.get(parent_run_id)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def frontier_size(points: list[tuple[float, float]]) -> int:
    """How many (bytes, loss) points no other point beats in both (ties count once)."""
    return int(pareto_mask(np.unique(np.asarray(points, dtype=float).reshape(-1, 2), axis=0)).sum())


class SweepProgress:
    """The sweep's own terminal output: a progress line and one line per ended trial."""

    def __init__(self, parent_run_id: str, num_points: int, stream: TextIO | None = None, *,
                 tty: bool | None = None):
        self.parent_run_id = parent_run_id
        self.num_points = num_points
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.started_trials: dict[str, float] = {}
        # (total_bytes, val_logloss) of completed trials
        self.points: list[tuple[float, float]] = []
        self.finals: dict[str, dict] = {}
        self.counts = {"done": 0, "running": 0, "failed": 0, "pending": num_points}
        self.done_at_start: int | None = None  # trials a resumed sweep had finished before
        self._last_draw = -math.inf
        self._drawn = False  # a progress line is on the terminal now
        self._lock = threading.RLock()

    def __enter__(self) -> SweepProgress:
        _PROGRESS[self.parent_run_id] = self
        if self.tty:
            for handler in logging.getLogger().handlers:
                handler.addFilter(self._before_log)
        return self

    def __exit__(self, *exc: object) -> None:
        _PROGRESS.pop(self.parent_run_id, None)
        for handler in logging.getLogger().handlers:
            handler.removeFilter(self._before_log)
        self.clear()

    # -- events (from ProgressCallback)
    def trial_started(self, trial_id: str) -> None:
        self.started_trials[trial_id] = time.monotonic()

    def trial_result(self, trial_id: str, result: dict) -> None:
        if result.get("final"):
            self.finals[trial_id] = result

    def trial_ended(self, trial_id: str, name: str, error: str | None = None) -> None:
        seconds = time.monotonic() - self.started_trials.pop(trial_id, time.monotonic())
        final = self.finals.pop(trial_id, None)
        if error is not None:
            text = f"trial {name} FAILED after {seconds:.1f} s: {error}"
        elif final is None:
            text = f"trial {name} stopped early by the scheduler after {seconds:.1f} s (not ranked)"
        else:
            loss, size = float(final["val_logloss"]), float(final["total_bytes"])
            self.points.append((size, loss))
            text = (f"trial {name} done: val_logloss {loss:.4f}, total {format_bytes(size)}, "
                    f"{seconds:.1f} s")
        with self._lock:
            # Tune marks the trial ended after its callbacks; count it now, step() recounts
            c = self.counts
            c["done"], c["failed"] = c["done"] + 1, c["failed"] + (error is not None)
            c["running"] = max(0, c["running"] - 1)
            self.clear()
            print(text, file=self.stream, flush=True)
            self._draw(force=self.tty)

    def step(self, trials: list[Any]) -> None:
        """Counts from Tune's trial list (a resumed sweep's finished trials included); redraw if
        due."""
        status = [t.status for t in trials]
        done = sum(s in ("TERMINATED", "ERROR") for s in status)
        if self.done_at_start is None:
            self.done_at_start = done
        running = sum(s == "RUNNING" for s in status)
        total = max(self.num_points, len(trials))
        self.counts = {"done": done, "running": running,
                       "failed": sum(s == "ERROR" for s in status),
                       "pending": total - done - running, "total": total}
        self._draw()

    # -- drawing
    def line(self) -> str:
        c = self.counts
        elapsed = time.monotonic() - self.started
        total = c.get("total", self.num_points)
        finished_now = c["done"] - (self.done_at_start or 0)
        remaining = total - c["done"]
        if finished_now > 0 and remaining > 0:
            eta = _clock(elapsed / finished_now * remaining)
        else:
            eta = "0:00" if remaining == 0 else "--"
        return (f"progress: {c['done']}/{total} done ({c['failed']} failed), {c['running']} "
                f"running, {c['pending']} pending | {_clock(elapsed)} elapsed, ETA {eta} | "
                f"frontier size {frontier_size(self.points)}")

    def _draw(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last_draw < (TTY_EVERY_S if self.tty else PLAIN_EVERY_S):
                return
            self._last_draw = now
            if self.tty:
                self.stream.write(CLEAR_LINE + self.line())
                self._drawn = True
            else:
                self.stream.write(self.line() + "\n")
            self.stream.flush()

    def clear(self) -> None:
        """Take the progress line off the terminal (before anything else prints)."""
        with self._lock:
            if self._drawn:
                self.stream.write(CLEAR_LINE)
                self.stream.flush()
                self._drawn = False

    def _before_log(self, record: logging.LogRecord) -> bool:
        self.clear()  # a log line on the terminal starts on a clean line; the next step redraws
        self._last_draw = -math.inf
        return True


class ProgressCallback(Callback):
    """Tune callback feeding the live `SweepProgress` of its sweep (a no-op when there is none)."""

    def __init__(self, parent_run_id: str):
        self.parent_run_id = parent_run_id

    @property
    def progress(self) -> SweepProgress | None:
        return progress_for(self.parent_run_id)

    def on_step_end(self, iteration, trials, **info):
        if self.progress is not None:
            self.progress.step(trials)

    def on_trial_start(self, iteration, trials, trial, **info):
        if self.progress is not None:
            self.progress.trial_started(trial.trial_id)

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self.progress is not None:
            self.progress.trial_result(trial.trial_id, result)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self.progress is not None:
            self.progress.trial_ended(trial.trial_id, point_name(point_of(trial.config)))

    def on_trial_error(self, iteration, trials, trial, **info):
        if self.progress is not None:
            self.progress.trial_ended(trial.trial_id, point_name(point_of(trial.config)),
                                      _last_line(trial))


def _last_line(trial: Any) -> str:
    """The last line of a failed trial's error: the exception and its message."""
    from sweep.tune.callback import error_text

    lines = [line.strip() for line in error_text(trial).strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "unknown error"


class RayOutput:
    """Ray's own driver output (loggers, forwarded trial output, Tune's table) to the sweep's log
    file.

    Records arrive before the sweep directory is known (`ray.init` runs first), so they are kept
    in memory until `attach`. `verbose=True` changes nothing. Everything is restored on exit.
    """

    def __init__(self, verbose: bool):
        self.verbose = verbose
        self.path: Path | None = None
        self._file: TextIO | None = None
        self._pending: list[str] = []
        self._lock = threading.Lock()
        self._saved: tuple | None = None
        self._dispatcher: Any = None
        self._replaced: list = []
        self._broken = False  # a write failed (a full disk): nothing more is written

    def __enter__(self) -> RayOutput:
        if self.verbose:
            return self
        ray_logger = logging.getLogger("ray")
        self._saved = (ray_logger.handlers[:], ray_logger.propagate)
        to_file = _LineHandler(self.write)
        to_file.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        errors = logging.StreamHandler(sys.stderr)
        errors.setLevel(logging.ERROR)
        errors.addFilter(lambda record: not record.name.startswith(TUNE_LOGGERS))
        errors.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        pending = logging.StreamHandler(sys.stderr)
        pending.setLevel(logging.WARNING)
        pending.addFilter(lambda record: record.name == PENDING_LOGGER)
        pending.setFormatter(logging.Formatter("collide: no trial is running; Ray Tune says: "
                                               "%(message)s"))
        ray_logger.handlers = [to_file, errors, pending]
        ray_logger.propagate = False
        _CAPTURING.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if self in _CAPTURING:
            _CAPTURING.remove(self)
        if self._saved is not None:
            ray_logger = logging.getLogger("ray")
            ray_logger.handlers, ray_logger.propagate = self._saved
            self._saved = None
        if self._dispatcher is not None:
            self._dispatcher.remove_handler("collide_ray_output")
            for name, handler in self._replaced:
                self._dispatcher.add_handler(name, handler)
            self._dispatcher, self._replaced = None, []
        with self._lock:
            if self._file is not None:
                with contextlib.suppress(OSError):  # a full disk already said so
                    self._file.close()
                self._file = None

    def capture_trial_output(self) -> None:
        """After `ray.init`: the lines Ray forwards from trial processes go to the log file too."""
        if self.verbose or self._dispatcher is not None:
            return
        try:
            from ray._private.ray_logging import global_worker_stdstream_dispatcher as dispatcher
        except ImportError:  # a Ray without this hook prints trial output as usual
            return
        with dispatcher._lock:
            self._replaced = [(n, h) for n, h in dispatcher.handlers if n == "ray_print_logs"]
        dispatcher.remove_handler("ray_print_logs")
        dispatcher.add_handler("collide_ray_output", self._worker_lines)
        self._dispatcher = dispatcher

    def attach(self, sweep_dir: Path) -> None:
        """Write to `<sweep_dir>/ray-output.log` from now on, starting with what was kept so far."""
        if self.verbose:
            return
        sweep_dir.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self.path = sweep_dir / LOG_FILE
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in __exit__
            pending, self._pending = self._pending, []
        for line in pending:
            self.write(line)

    def write(self, text: str) -> None:
        line = text if text.endswith("\n") else text + "\n"
        with self._lock:
            if self._broken:
                return
            if self._file is None:
                self._pending.append(line)
                return
            try:
                self._file.write(line)
                self._file.flush()
            except OSError as exc:  # a full disk: say so once, naming the file, then drop it
                self._broken = True
                print(f"collide: cannot write Ray's output to {self.path} ({exc.strerror or exc}); "
                      "the rest of it is dropped", file=sys.stderr, flush=True)

    def _worker_lines(self, data: dict) -> None:
        who = data.get("actor_name") or data.get("task_name") or "worker"
        where = f"({who} pid={data.get('pid')}, ip={data.get('ip')})"
        for line in data.get("lines", []):
            self.write(f"{where} {line}")


class _LineHandler(logging.Handler):
    def __init__(self, write: Callable[[str], None]):
        super().__init__()
        self._write = write

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self._write(self.format(record))
        except Exception:  # noqa: BLE001 - logging must not raise
            self.handleError(record)


class TableReporter(CLIReporter):
    """Tune's status table, written to the capturing `RayOutput`'s log file (printed when verbose).

    Tune pickles its reporter with the experiment, so this holds no file: it finds the live
    `RayOutput` at print time."""

    def _print(self, msg: str) -> None:
        if _CAPTURING:
            _CAPTURING[-1].write(msg)
        else:
            super()._print(msg)
