"""Readable names of trials and configurations; no heavy imports, so readers of MLflow use them."""

from __future__ import annotations

from mappers import strategy_traits

__all__ = ["configuration_name", "trial_name"]


def trial_name(strategy: str, compression: float | None, dim: int, seed: int, rows: int
               | None = None) -> str:
    """Readable run name, e.g. `frequency_embedding-c16-d16-s0`; `full-d16-s0` for the full
    table."""
    return f"{configuration_name(strategy, compression, dim, rows)}-s{seed}"


def configuration_name(strategy: str, compression: float | None, dim: int, rows: int
                       | None = None) -> str:
    """A configuration (a trial without its seed), e.g. `frequency_embedding-c16-d16`; `full-d16`
    for a strategy that takes no compression."""
    if not strategy_traits(strategy).takes_compression:
        return f"{strategy}-d{dim}"
    size = f"c{compression:g}" if compression is not None else f"r{rows}"
    return f"{strategy}-{size}-d{dim}"
