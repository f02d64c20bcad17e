"""`collide ui`: the MLflow UI on a sweep's tracking store, bound to 127.0.0.1 by default."""

from __future__ import annotations

import subprocess
import sys

__all__ = ["ui_command"]


def ui_command(tracking_uri: str, port: int = 5000, host: str = "127.0.0.1") -> list[str]:
    """The `mlflow ui` command line serving `tracking_uri` (a sqlite or database store)."""
    if tracking_uri.startswith(("http://", "https://")):
        raise ValueError(f"{tracking_uri} is already a tracking server: open it in a browser instead")
    if not 0 < port < 65536:
        raise ValueError(f"port must be in 1..65535, got {port}")
    return [sys.executable, "-m", "mlflow", "ui", "--backend-store-uri", tracking_uri,
            "--host", host, "--port", str(port)]


def serve_ui(tracking_uri: str, port: int = 5000, host: str = "127.0.0.1") -> int:
    """Run the UI in the foreground until interrupted; returns its exit code."""
    print(f"MLflow UI for {tracking_uri} at http://{host}:{port}  (Ctrl-C to stop)", flush=True)
    try:
        return subprocess.call(ui_command(tracking_uri, port, host))
    except KeyboardInterrupt:
        return 0
