"""Ctrl-C and SIGTERM during a sweep: stop the trials, record what happened, never report success.

`Interrupts` is a context manager for the driver. While it is active:

- the first SIGINT or SIGTERM is recorded (`signal_name`), and if Ray Tune's loop is
  running (`in_tune`), Tune is asked to stop gracefully through SIGUSR1, which Tune always
  handles: it saves the experiment state (so `--resume` can continue) and stops the
  running trials; the runner then marks their runs and the parent KILLED;
- outside Tune's loop (preparing data, training the probe) the signal raises
  `SweepInterrupted` at once;
- a second signal raises `SweepInterrupted` at once, inside Tune's loop too; one that comes
  within REPEAT_S of the first is the same request (`timeout` and `kill -TERM -PGID` reach the
  driver twice: once as itself, once as a member of its process group).

`command_signals()` covers a whole `collide` command (the console script, `sweep.cli.run`):
outside a sweep, SIGINT and SIGTERM raise `SweepInterrupted` at once, so every command ends
with 130 / 143 and a line saying so, never a traceback or a 0. `hold_signals()` records them
instead, for work that must not be cut short (shutting down Ray).

Ray Tune's own SIGINT handler is switched off meanwhile (TUNE_DISABLE_SIGINT_HANDLER=1):
it would swallow the signal and let the sweep report success.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

__all__ = ["Interrupts", "SweepInterrupted", "command_signals", "exit_code_for", "hold_signals"]

REPEAT_S = 1.0  # a signal this soon after the first is the same request, not "stop at once"


# named for what happened, like KeyboardInterrupt
class SweepInterrupted(BaseException):  # noqa: N818
    """The sweep was stopped by a signal before it finished.

    A BaseException, like KeyboardInterrupt, so that no `except Exception` on the way (MLflow
    wraps the errors of a request; the tracker retries failed writes) swallows it."""

    def __init__(self, signal_name: str):
        super().__init__(f"interrupted by {signal_name}")
        self.signal_name = signal_name


def exit_code_for(signal_name: str | None) -> int:
    """The shell convention: 128 + the signal number (130 for SIGINT, 143 for SIGTERM)."""
    return 128 + int(getattr(signal, signal_name or "SIGINT"))


class Interrupts:
    """Record SIGINT / SIGTERM and turn them into a graceful Tune stop (see the module
    docstring)."""

    def __init__(self) -> None:
        self.signal_name: str | None = None
        self.in_tune = False
        self._first_at = 0.0
        self._previous: dict[int, object] = {}
        self._env_before: str | None = None
        self._active = False

    @property
    def interrupted(self) -> bool:
        return self.signal_name is not None

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self.signal_name is not None and self.in_tune \
                and time.monotonic() - self._first_at < REPEAT_S:
            return  # the same request again (the process and its group were both signalled)
        if self.signal_name is not None or not self.in_tune:
            self.signal_name = self.signal_name or name
            raise SweepInterrupted(self.signal_name)
        self.signal_name = name
        self._first_at = time.monotonic()
        # Tune's loop has not installed its handler yet
        if not callable(signal.getsignal(signal.SIGUSR1)):
            raise SweepInterrupted(name)
        print(f"\ncollide: {name} received: stopping the trials and saving the sweep's state "
              "(send it again to stop at once)", flush=True)
        signal.raise_signal(signal.SIGUSR1)  # Ray Tune's graceful stop

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is not threading.main_thread():
            return self  # signals reach only the main thread; nothing to install
        self._active = True
        self._env_before = os.environ.get("TUNE_DISABLE_SIGINT_HANDLER")
        os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handle)
        # A handler left by an earlier Tune run in this process would stop that run, not this one.
        self._previous[signal.SIGUSR1] = signal.signal(signal.SIGUSR1, signal.SIG_DFL)
        return self

    def reinstall(self) -> None:
        """Take SIGINT / SIGTERM back after `ray.init`, which installs handlers of its own
        (a SIGTERM that exits, and a native one that aborts the driver)."""
        if self._active:
            for signum in (signal.SIGINT, signal.SIGTERM):
                signal.signal(signum, self._handle)

    def __exit__(self, *exc: object) -> None:
        if not self._active:
            return
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)  # type: ignore[arg-type]
        if self._env_before is None:
            os.environ.pop("TUNE_DISABLE_SIGINT_HANDLER", None)
        else:
            os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = self._env_before
        self._active = False


def _raise(signum: int, frame: FrameType | None) -> None:
    raise SweepInterrupted(signal.Signals(signum).name)


@contextmanager
def command_signals() -> Iterator[None]:
    """SIGINT and SIGTERM raise `SweepInterrupted` for the whole block (a `collide` command;
    a sweep's `Interrupts` takes over while it runs). Only in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, _raise) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def hold_signals() -> Iterator[list[str]]:
    """Record SIGINT and SIGTERM instead of acting on them for the block; yields the names of
    those received, in order."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def record(signum: int, frame: FrameType | None) -> None:
        received.append(signal.Signals(signum).name)

    previous = {s: signal.signal(s, record) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
