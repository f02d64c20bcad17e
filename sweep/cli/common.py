"""What the commands that talk to MLflow share: the --tracking-uri option, the refusal of a
credential in a process argument, and the runs-view line.

A tracking URI that holds a credential is refused as a command-line argument: every user of
the machine can read process arguments. Put it in MLFLOW_TRACKING_URI, or use
MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD / MLFLOW_TRACKING_TOKEN. Everything
printed shows the URI redacted.
"""

from __future__ import annotations

import argparse

from sweep.errors import CliError
from sweep.tracking.ui import DEFAULT_HOST, DEFAULT_PORT, runs_view_url
from sweep.tracking.uri import has_credentials, redact

__all__ = ["add_tracking_uri", "print_runs_view", "refuse_secret_argument"]


def add_tracking_uri(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI "
                                               "or ./mlflow.db); one with a password must come "
                                               "through MLFLOW_TRACKING_URI instead")


def refuse_secret_argument(uri: str | None, option: str = "--tracking-uri") -> None:
    if uri and has_credentials(uri):
        raise CliError(f"{option} {redact(uri)} carries a credential, and process arguments are "
                       "visible to every user of this machine: set MLFLOW_TRACKING_URI (or "
                       "MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD / "
                       "MLFLOW_TRACKING_TOKEN) in the environment instead")


def print_runs_view(tracking_uri: str, experiment_id: str) -> None:
    """Where the sweep's runs are in the MLflow UI (a server's own, or `collide ui`'s)."""
    if tracking_uri.startswith(("http://", "https://")):
        print(f"MLflow runs view: {runs_view_url(tracking_uri, experiment_id)}")
    else:
        print(f"MLflow runs view: run `collide ui`, then open "
              f"{runs_view_url(f'http://{DEFAULT_HOST}:{DEFAULT_PORT}', experiment_id)}")
