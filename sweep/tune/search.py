"""`--search optuna`: Optuna proposes configurations; each runs once per seed, and never twice.

A configuration is strategy x compression x dim (`full` ignores compression). Seeds are
replicates, not a search dimension: a proposed configuration is trained once for every
seed of the grid, and Optuna is told the mean over its seeds of the two objectives
(val_logloss, total_bytes) when the last seed ends. Optuna's categorical sampler often
proposes a configuration it has already seen. Such a proposal is not trained again:
Optuna is told the stored result (or, while that configuration is still running, the
proposal is dropped) and asked again. After `MAX_ASKS` repeats in a row, the next
configuration nobody has run yet is taken instead. When every configuration of the grid
has run the search ends, however many samples were asked for (the runner says so first).

The state (the Optuna study and what ran) is pickled by Ray Tune into the experiment
directory, so `collide sweep --resume` continues the same search.
"""

from __future__ import annotations

import logging
import math
import pickle
from collections.abc import Sequence

import numpy as np
from ray.tune.search import Searcher

from mappers import get_strategy

__all__ = ["ConfigurationSearch", "configurations"]

log = logging.getLogger(__name__)

MAX_ASKS = 50  # repeated proposals in a row before the next unexplored configuration is taken
Key = tuple  # (strategy, compression or None, dim)


def configurations(strategies: Sequence[str], compressions: Sequence[float],
                   dims: Sequence[int]) -> list[Key]:
    """The grid's distinct configurations, in grid order (a strategy that takes no compression,
    `full`, once per dim)."""
    keys: list[Key] = []
    for strategy in strategies:
        for compression in compressions:
            for dim in dims:
                sized = get_strategy(strategy).takes_compression
                key = (strategy, float(compression) if sized else None, int(dim))
                if key not in keys:
                    keys.append(key)
    return keys


class ConfigurationSearch(Searcher):
    """Multi-objective Optuna (TPE) over configurations; every proposal runs once per seed."""

    def __init__(self, strategies: Sequence[str], compressions: Sequence[float],
                 dims: Sequence[int],
                 seeds: Sequence[int], num_configurations: int, sampler_seed: int = 0):
        import optuna

        super().__init__(metric="val_logloss", mode="min")
        optuna.logging.set_verbosity(optuna.logging.WARNING)  # not a line per study and trial
        self.seeds = [int(s) for s in seeds]
        self.grid = configurations(strategies, compressions, dims)
        self.budget = min(int(num_configurations), len(self.grid))
        self.space = {"strategy": optuna.distributions.CategoricalDistribution(list(strategies)),
                      "compression": optuna.distributions.CategoricalDistribution(
                          [float(c) for c in compressions]),
                      "dim": optuna.distributions.CategoricalDistribution([int(d) for d in dims])}
        self.study = optuna.create_study(directions=["minimize", "minimize"],
                                         sampler=optuna.samplers.TPESampler(seed=int(sampler_seed)))
        self.proposed: dict[Key, int] = {}  # configuration -> its Optuna trial number
        self.queue: list[tuple[Key, int]] = []  # (configuration, seed) waiting for a Tune trial
        # seed -> objectives (None: failed)
        self.results: dict[Key, dict[int, tuple[float, float] | None]] = {}
        # what Optuna was told per finished configuration
        self.told: dict[Key, list[float] | None] = {}
        self.trials: dict[str, tuple[Key, int]] = {}  # Tune trial id -> (configuration, seed)
        self.repeats = 0  # proposals that repeated a configuration (not trained again)

    def set_search_properties(self, metric, mode, config, **spec) -> bool:
        return True  # the objectives are fixed: (val_logloss, total_bytes), both minimised

    def suggest(self, trial_id: str) -> dict | None:
        if not self.queue:
            if len(self.proposed) >= self.budget:
                return Searcher.FINISHED
            self._propose()
        key, seed = self.queue.pop(0)
        self.trials[trial_id] = (key, seed)
        strategy, compression, dim = key
        return {"point": {"strategy": strategy, "compression": compression, "dim": dim,
                          "seed": seed}}

    def _propose(self) -> None:
        """Ask Optuna for a configuration not proposed before and queue one trial per seed."""
        import optuna

        for _ in range(MAX_ASKS):
            trial = self.study.ask(self.space)
            key = _key(trial.params)
            if key not in self.proposed:
                return self._queue(key, trial.number)
            self.repeats += 1
            stored = self.told.get(key)
            # ran already: the sampler learns its result again, nothing trains
            if stored is not None:
                self.study.tell(trial, stored)
            else:  # still running (or every seed failed): drop the repeat
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        key = next(k for k in self.grid if k not in self.proposed)  # budget <= grid: one is left
        log.info("optuna repeated configurations %d times in a row; taking %s, not run yet",
                 MAX_ASKS, _name(key))
        params = {"strategy": key[0], "compression": key[1] if key[1] is not None else self.space[
            "compression"].choices[0], "dim": key[2]}
        self.study.enqueue_trial(params)
        trial = self.study.ask(self.space)
        self._queue(key, trial.number)

    def _queue(self, key: Key, number: int) -> None:
        self.proposed[key] = number
        self.results[key] = {}
        self.queue.extend((key, seed) for seed in self.seeds)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if trial_id not in self.trials:
            return
        key, seed = self.trials[trial_id]
        ok = (not error and result is not None and _finite(result, "val_logloss")
              and _finite(result, "total_bytes"))
        self.results[key][seed] = (float(result["val_logloss"]),
                                   float(result["total_bytes"])) if ok else None
        if len(self.results[key]) < len(self.seeds):
            return
        done = [v for v in self.results[key].values() if v is not None]
        trial_number = self.proposed[key]
        if done:
            values = [float(np.mean([v[0] for v in done])), float(np.mean([v[1] for v in done]))]
            self.told[key] = values
            self.study.tell(trial_number, values)
        else:
            import optuna

            self.told[key] = None
            self.study.tell(trial_number, state=optuna.trial.TrialState.FAIL)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__dict__.copy(), f)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as f:
            self.__dict__.update(pickle.load(f))


def _key(params: dict) -> Key:
    strategy = params["strategy"]
    sized = get_strategy(strategy).takes_compression
    return strategy, float(params["compression"]) if sized else None, int(params["dim"])


def _name(key: Key) -> str:
    strategy, compression, dim = key
    return f"{strategy}-d{dim}" if compression is None else f"{strategy}-c{compression:g}-d{dim}"


def _finite(result: dict, key: str) -> bool:
    value = result.get(key)
    return isinstance(value, (int, float)) and math.isfinite(value)
