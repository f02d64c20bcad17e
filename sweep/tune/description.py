"""The sweep's description in the MLflow UI (experiment and parent run): the grid, the data,
the training options and the command that started it (redacted)."""

from __future__ import annotations

import time

from sweep.config import SweepConfig
from sweep.tracking.uri import redact_text
from sweep.tune.points import grid_points
from sweep.tune.search import configurations

__all__ = ["describe_sweep", "optuna_budget"]


def optuna_budget(config: SweepConfig) -> int:
    """Configurations the optuna search runs: num_samples, or all of the grid's if it holds
    fewer."""
    g = config.grid
    return min(config.samples, len(configurations(g.strategies, g.compressions, g.dims)))


def describe_sweep(config: SweepConfig, fingerprint: str, command: str | None) -> str:
    """The experiment's (and parent run's) description in the MLflow UI: the grid, the data, the
    command."""
    g = config.grid
    if config.search == "grid":
        size = (f"{len(g.strategies)} strategies x {len(g.compressions)} compressions x "
                f"{len(g.dims)} dims x {len(g.seeds)} seeds = {len(grid_points(config))} trials "
                "(grid search)")
    else:
        size = (f"{optuna_budget(config)} configurations sampled by Optuna from the grid below, "
                "each trained with every seed")
    params = ", ".join(f"{k}={v}" for k, v in sorted(dict(config.data.params).items()))
    return "\n".join([
        f"collide sweep **{config.name}**, started {time.strftime('%Y-%m-%d %H:%M:%S %Z')}: "
        f"{size}.",
        "",
        f"- strategies: {', '.join(g.strategies)}",
        f"- compressions: {', '.join(f'{c:g}' for c in g.compressions)}; dims: "
        f"{', '.join(str(d) for d in g.dims)}; seeds: {', '.join(str(s) for s in g.seeds)}",
        f"- data: `{config.data.source}` ({params or 'defaults'}), prepared data "
        f"{fingerprint[:12]}",
        f"- epochs: {config.train.epochs}, batch size {config.train.batch_size}, optimizer "
        f"{config.train.optimizer}",
        f"- command: `{redact_text(command or 'sweep.run_sweep(config) (Python API)')}`",
        "",
        "Each nested run is one trial; the parent run holds pareto.csv, pareto.png, pareto.md and "
        "pareto-trials.csv.",
    ])
