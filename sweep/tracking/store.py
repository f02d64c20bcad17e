"""The tracking store: the one way collide builds an MLflow client, and a fast reachability check.

- `connect(uri)`: every reader and writer gets its client here, so what a connection
  promises (the URI's secrets remembered for redaction) holds everywhere;
- `check_tracking_uri(uri, create=...)`: raise `TrackingUnavailableError` within `timeout`
  seconds when the store cannot be reached, before any data is prepared or Ray starts; and a
  UserError for a database store collide must not open (`sweep.tracking.sql_store`): only a
  sweep (`create`) may make a new one, and none holds tables other than MLflow's.
"""

from __future__ import annotations

import socket
import threading
import time
from contextlib import nullcontext
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from sweep.errors import UserError
from sweep.tracking.sql_store import check_sql_store, creating_sqlite_store, sqlite_path
from sweep.tracking.uri import mlflow_http_policy, redact, redact_text, remember

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

__all__ = ["TrackingUnavailableError", "check_tracking_uri", "connect"]

DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "postgres": 5432, "mysql": 3306,
                 "mssql": 1433}
CHECK_TIMEOUT_S = 10.0


def connect(tracking_uri: str) -> MlflowClient:
    """An MLflow client of `tracking_uri`; its secrets are remembered so `redact_text` hides
    them."""
    from mlflow.tracking import MlflowClient

    remember(tracking_uri)
    return MlflowClient(tracking_uri)


class TrackingUnavailableError(UserError):
    """The MLflow tracking store cannot be reached (or refused us): names the redacted URI."""


def _tcp_check(uri: str, timeout: float) -> None:
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]
    if not parts.hostname or scheme not in DEFAULT_PORTS:
        return
    port = parts.port or DEFAULT_PORTS[scheme]
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        raise TrackingUnavailableError(
            f"MLflow tracking URI {redact(uri)} is not reachable: cannot connect to "
            f"{parts.hostname}:{port} ({exc.strerror or exc}). Start the tracking server or fix "
            "--tracking-uri / MLFLOW_TRACKING_URI"
        ) from None


def check_tracking_uri(uri: str, timeout: float = CHECK_TIMEOUT_S, *, create: bool = False) -> None:
    """Raise TrackingUnavailableError unless one read of the tracking store succeeds in `timeout`
    seconds. A database store is looked at read-only first (`sweep.tracking.sql_store`): only
    with `create` (a sweep) may it be new, and it must never hold tables other than MLflow's."""
    started = time.monotonic()
    remember(uri)
    db = sqlite_path(uri)
    if db is not None and not db.parent.is_dir():
        raise TrackingUnavailableError(f"MLflow tracking URI {redact(uri)}: directory "
                                       f"{db.parent} does not exist")
    _tcp_check(uri, timeout / 2)
    outcome: dict = {}

    def probe() -> None:
        try:
            check_sql_store(uri, create=create)
            with creating_sqlite_store(uri) if create else nullcontext():
                connect(uri).search_experiments(max_results=1)
        except Exception as exc:  # noqa: BLE001 - any failure means "not usable"; reported below
            outcome["error"] = exc

    thread = threading.Thread(target=probe, name="collide-tracking-check", daemon=True)
    with mlflow_http_policy(max_retries=0, timeout_s=max(1.0, timeout / 2)):
        thread.start()
        thread.join(max(0.1, timeout - (time.monotonic() - started)))
    if thread.is_alive():
        raise TrackingUnavailableError(f"MLflow tracking URI {redact(uri)} did not answer within "
                                       f"{timeout:.0f} s; check that the server is up and the URI "
                                       "is right")
    error = outcome.get("error")
    if isinstance(error, UserError):
        raise error
    if error is not None:
        text = str(error).strip()
        reason = text.splitlines()[0][:300] if text else type(error).__name__
        raise TrackingUnavailableError(f"MLflow tracking URI {redact(uri)} cannot be used: "
                                       f"{redact_text(reason, uri)}")
