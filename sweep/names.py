"""Readable names of trials and configurations; no heavy imports, so readers of MLflow use them.
And `safe_name`: a name that came from outside (a tracking store) made safe to use in a path.
"""

from __future__ import annotations

import re

from mappers import strategy_traits

__all__ = ["configuration_name", "safe_name", "trial_name"]


def safe_name(text: str) -> str:
    """`text` as one path component that stays where it is put: every character other than a
    letter, digit, '.', '_' or '-' (so '/', '\\' and NUL) becomes '_', and so do leading dots
    (so no '..'); an empty name is '_'. Names a tracking store hands collide are untrusted."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "_", text)
    cleaned = re.sub(r"^\.+", lambda leading: "_" * len(leading.group()), cleaned)
    return cleaned or "_"


def trial_name(strategy: str, compression: float | None, dim: int, seed: int, rows: int
               | None = None) -> str:
    """Readable run name, e.g. `frequency_embedding-c16-d16-s0`; `full-d16-s0` for the full
    table."""
    return f"{configuration_name(strategy, compression, dim, rows)}-s{seed}"


def configuration_name(strategy: str, compression: float | None, dim: int, rows: int
                       | None = None, precision: str = "fp32") -> str:
    """A configuration (a trial without its seed), e.g. `frequency_embedding-c16-d16`; `full-d16`
    for a strategy that takes no compression; `hash-c16-d16-int8` for its tables stored in int8
    (fp32, as trained, has no suffix)."""
    stored = "" if precision == "fp32" else f"-{precision}"
    if not strategy_traits(strategy).takes_compression:
        return f"{strategy}-d{dim}{stored}"
    size = f"c{compression:g}" if compression is not None else f"r{rows}"
    return f"{strategy}-{size}-d{dim}{stored}"
