"""The `collide` entry point: the parser of every command, and `main(argv) -> int`.

`main` runs in-process, so tests call it directly. It turns what a command raises into one
line and an exit code (`sweep.errors`): a `UserError` (and a file or MLflow error) exits 2,
anything else is a bug in collide and exits 4 with its traceback.

`run` is the `collide` program itself (the console script and `python -m sweep.cli`): `main`
with SIGINT and SIGTERM turned into exit 130 / 143 for the whole command, then the Ray it
started shut down before the process exits, with signals held off meanwhile, so no Ray process
outlives the command and a signal at the very end still ends in 130 / 143, never in 0.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback
from collections.abc import Sequence

from sweep.cli import data, readers, sweeps
from sweep.errors import EXIT_INTERNAL, EXIT_USAGE, UserError
from sweep.tracking.uri import RedactingFormatter, redact_text
from sweep.tune.cluster import shutdown_ray
from sweep.tune.interrupt import SweepInterrupted, command_signals, exit_code_for

__all__ = ["build_parser", "main", "run"]

COMMANDS = {**data.COMMANDS, **sweeps.COMMANDS, **readers.COMMANDS}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="collide",
        description="How far can your embedding tables shrink, and with which id-to-row mapping? "
        "Sweeps DLRM variants over mapping strategy x rows x dim x seed (Ray Tune + MLflow).",
        epilog="Exit codes: 0 ok, 1 some trials failed, 2 bad input or unreachable service, "
        "3 MLflow lost during a sweep (collide sync), 4 internal error, 130/143 interrupted.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging and full "
                                                                     "tracebacks")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    data.add_data_commands(commands)
    sweeps.add_sweep_commands(commands)
    readers.add_reader_commands(commands)
    return parser


def _tracking_uri_in_use(args: argparse.Namespace) -> str | None:
    return getattr(args, "tracking_uri", None) or os.environ.get("MLFLOW_TRACKING_URI")


def _handled(exc: BaseException) -> bool:
    """Errors that mean "could not run as asked" (exit 2) rather than a bug in collide: collide's
    user errors, file and disk errors, and a store that said no."""
    if isinstance(exc, (UserError, OSError, EOFError)):
        return True
    return type(exc).__module__.startswith("mlflow")  # MlflowException and kin: the store said no


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help exits 0, usage errors exit 2
        return int(exc.code or 0)
    # what started it, for the sweep's description
    args.argv = list(sys.argv[1:] if argv is None else argv)
    handler = _StderrHandler()  # every line redacted, whoever logs it (MLflow included)
    handler.setFormatter(RedactingFormatter("collide: %(message)s"))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[handler],
                        force=True)
    try:
        return COMMANDS[args.command](args)
    except (SweepInterrupted, KeyboardInterrupt) as exc:
        return _interrupted(getattr(exc, "signal_name", "SIGINT"))
    # every error ends in one clear line and a documented code
    except Exception as exc:  # noqa: BLE001
        interruption = _interruption(exc)
        if interruption is not None:
            return _interrupted(interruption.signal_name)
        uri = _tracking_uri_in_use(args)
        if not _handled(exc):
            print(redact_text(traceback.format_exc(), uri), file=sys.stderr)
            print(f"collide: internal error: {type(exc).__name__}: {redact_text(str(exc), uri)} "
                  "(this is a bug in collide; please report it)", file=sys.stderr)
            return EXIT_INTERNAL
        if args.verbose:
            print(redact_text(traceback.format_exc(), uri), file=sys.stderr)
        text = str(exc) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.filename}: {exc.strerror or exc}"
        print(f"collide: error: {redact_text(text, uri)}", file=sys.stderr)
        return EXIT_USAGE


def _interruption(exc: BaseException) -> SweepInterrupted | None:
    """The signal's SweepInterrupted that `exc` was raised from or while handling: a library that
    caught it and raised its own error (Ray's `ray.get` turns it into a SystemError when the
    signal lands while it waits) still means the command was interrupted, not a bug."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, SweepInterrupted):
            return cause
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return None


class _StderrHandler(logging.StreamHandler):
    """Logs to whatever sys.stderr is when a record is written (not the one of the first call:
    `main` runs many times in one process under tests, each with its own captured stderr)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def _interrupted(name: str, when: str = "") -> int:
    code = exit_code_for(name)
    print(f"collide: interrupted by {name}{when}; nothing was reported done (exit {code})",
          file=sys.stderr)
    return code


def run(argv: Sequence[str] | None = None) -> None:
    """The `collide` program: `main`, then Ray shut down; exits with the command's code."""
    with command_signals():
        try:
            code = main(argv)
        except SweepInterrupted as exc:  # after main returned, before the process ends
            code = _interrupted(exc.signal_name)
        received = shutdown_ray()
    if received and code not in (exit_code_for(name) for name in received):
        code = _interrupted(received[0], " while Ray shut down")
    raise SystemExit(code)
