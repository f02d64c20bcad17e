"""What collide tells the user when it cannot do what was asked, and the exit codes of `collide`.

Every error that means "could not run as asked" (bad input, config, files or services) is a
`UserError`: the CLI prints it as one line, `collide: error: ...`, and exits 2. Anything else
is a bug in collide, and the CLI exits 4 with its traceback. So a `ValueError` raised deep in
numpy never passes for a user's mistake, and a user's mistake never shows a traceback.

Exit codes (README, "Exit codes"):

    0    success
    1    a sweep completed, but some of its trials failed (their MLflow runs are FAILED)
    2    could not run as asked: bad input or config, an output directory collide does not
         own, an unreachable tracking store, a file or disk error; nothing was reported done
    3    the sweep's trials ran, but MLflow stayed unreachable: `collide sync DIR` uploads them
    4    an internal error (a bug in collide): the traceback is printed
    130  interrupted by SIGINT (143: SIGTERM); `collide sweep --resume` continues a sweep
"""

from __future__ import annotations

__all__ = [
    "EXIT_FAILED_TRIALS",
    "EXIT_INTERNAL",
    "EXIT_OK",
    "EXIT_TRACKING_LOST",
    "EXIT_USAGE",
    "CliError",
    "ConfigError",
    "DataError",
    "UserError",
]

EXIT_OK, EXIT_FAILED_TRIALS, EXIT_USAGE, EXIT_TRACKING_LOST, EXIT_INTERNAL = 0, 1, 2, 3, 4


class UserError(ValueError):
    """The input, the config, a file or a service cannot do what was asked (exit 2).

    A ValueError, so code that validates with `except ValueError` keeps working."""


class CliError(UserError):
    """A command line that cannot run: names the option and what it takes."""


class ConfigError(UserError):
    """A sweep or trial config that cannot run: names the key and what is allowed."""


class DataError(UserError):
    """Input data or a data source's options that cannot be prepared: names the file (and line)
    or the option."""
