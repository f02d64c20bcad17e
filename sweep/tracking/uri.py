"""The MLflow tracking URI as text: its default, its redacted form, and the secrets it holds.

- `default_tracking_uri()`: MLFLOW_TRACKING_URI, else `sqlite:///<launch dir>/mlflow.db`.
- `redact(uri)`: the URI with its password (and secret query values) replaced by `***`.
  Everything collide prints, logs as a param or tag, or writes to a file uses this form.
- `has_credentials(uri)`: whether a URI carries a secret; the CLI refuses such a URI as a
  command-line argument (every user of the machine can read process arguments) and asks
  for MLFLOW_TRACKING_URI, or MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD /
  MLFLOW_TRACKING_TOKEN, instead.
- `mlflow_http_policy()`: MLflow's own HTTP retries off and a request timeout, so callers
  that retry (the sweep's tracker) decide how long to wait; and MLflow's "View run at URL"
  lines off, since MLflow prints the tracking URI as given, credentials included.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

__all__ = [
    "RedactingFormatter",
    "environment_secrets",
    "default_tracking_uri",
    "has_credentials",
    "mlflow_http_policy",
    "redact",
    "redact_text",
    "remember",
]

SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "secret", "token", "key", "credential",
                     "signature", "sig")


def default_tracking_uri(launch_dir: str | Path | None = None) -> str:
    """MLFLOW_TRACKING_URI, else an absolute sqlite file in the launch directory."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    return "sqlite:///" + str((Path(launch_dir or Path.cwd()) / "mlflow.db").resolve())


def _secret_key(key: str) -> bool:
    return any(word in key.lower() for word in SECRET_QUERY_KEYS)


def has_credentials(uri: str) -> bool:
    """True when `uri` holds a password, a user-info token, or a secret query value."""
    parts = urlsplit(uri)
    return bool(parts.password or (parts.username and "@" in parts.netloc)
                or any(_secret_key(k) for k, _ in parse_qsl(parts.query, keep_blank_values=True)))


def redact(uri: str | None) -> str | None:
    """`uri` with its password (or a lone user-info token) and secret query values as `***`."""
    if not uri or "://" not in uri or not has_credentials(uri):
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0] if ":" in userinfo else "***"
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, "***" if _secret_key(k) else v) for k, v in pairs], safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@contextmanager
def mlflow_http_policy(max_retries: int = 0, timeout_s: float = 30.0) -> Iterator[None]:
    """Within the block, MLflow makes one HTTP attempt per call with `timeout_s`, and prints no
    run URLs (restored after)."""
    wanted = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(max_retries),
              "MLFLOW_HTTP_REQUEST_TIMEOUT": str(int(max(1, timeout_s))),
              "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}
    before = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


_KNOWN: dict[str, list[str]] = {}  # every tracking URI this process used -> its secrets
# The credentials MLflow takes from the environment (besides those inside the URI).
SECRET_VARIABLES = ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_PASSWORD")
USER_VARIABLE = "MLFLOW_TRACKING_USERNAME"


def _basic(user: str, password: str) -> str:
    """The HTTP Basic form of a credential, as a server may echo it back."""
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _secrets_of(uri: str) -> list[str]:
    parts = urlsplit(uri)
    secrets = [s for s in (parts.password,) if s]
    secrets += [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if _secret_key(k)
                and v]
    if parts.username and parts.password:
        secrets.append(_basic(unquote(parts.username), unquote(parts.password)))
        secrets += [s for s in (unquote(parts.password),) if s != parts.password]
    if parts.username and not parts.password and "@" in parts.netloc:
        secrets.append(parts.username)
    return secrets


def environment_secrets() -> list[str]:
    """The credentials MLflow would send that come from the environment: a token, a password,
    and the Basic form of username and password."""
    found = [os.environ[name] for name in SECRET_VARIABLES if os.environ.get(name)]
    user, password = os.environ.get(USER_VARIABLE), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    if user and password:
        found.append(_basic(user, password))
    return found


def remember(uri: str | None) -> None:
    """Note a tracking URI in use, so `redact_text` hides its secrets in any later message."""
    if uri and "://" in uri and uri not in _KNOWN:
        _KNOWN[uri] = _secrets_of(uri)


def redact_text(text: str, uri: str | None = None) -> str:
    """`text` with every credential collide was given replaced by ***: the secrets of `uri` and
    of every URI this process has used, and those of the environment (`environment_secrets`),
    each also in its HTTP Basic form where it has one."""
    remember(uri)
    for known in _KNOWN:
        text = text.replace(known, redact(known) or "")
    secrets = {s for found in _KNOWN.values() for s in found} | set(environment_secrets())
    for secret in sorted(secrets, key=len, reverse=True):  # a longer one may hold a shorter
        text = text.replace(secret, "***")
    return text


class RedactingFormatter(logging.Formatter):
    """A log formatter whose every line goes through `redact_text`: no credential reaches a
    log, whatever library wrote the message."""

    def format(self, record: logging.LogRecord) -> str:
        return redact_text(super().format(record))
