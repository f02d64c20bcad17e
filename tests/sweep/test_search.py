"""The optuna search over configurations: seeds are replicates, no configuration trains twice,
Optuna learns the mean over seeds, and the search ends when the grid is exhausted."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from sweep.tune.search import ConfigurationSearch, configurations


def objectives(point: dict) -> dict:
    """A deterministic stand-in for a trained trial's result: smaller tables lose more."""
    compression = point["compression"] or 1.0
    return {"val_logloss": 0.5 + 0.01 * np.log2(compression) + 0.001 * point["seed"]
            - 0.0001 * point["dim"],
            "total_bytes": 1000.0 * point["dim"] / compression + 7 * point["seed"]}


def drive(search: ConfigurationSearch, fail: set[str] = frozenset(), number: int = 0) -> list[dict]:
    """Ask for trials until the searcher finishes, completing each at once; returns the points
    run."""
    points = []
    while (suggestion := search.suggest(f"t{number}")) not in (ConfigurationSearch.FINISHED, None):
        point = suggestion["point"]
        name = f"{point['strategy']}-{point['compression']}-{point['dim']}-{point['seed']}"
        search.on_trial_complete(f"t{number}", None if name in fail else objectives(point),
                                 error=name in fail)
        points.append(point)
        number += 1
    return points


def test_configurations_count_full_once_per_dim():
    keys = configurations(["full", "hash"], [4, 16], [8, 16])
    assert keys == [("full", None, 8), ("full", None, 16), ("hash", 4.0, 8), ("hash", 4.0, 16),
                    ("hash", 16.0, 8),
                    ("hash", 16.0, 16)]


@pytest.mark.parametrize("sampler_seed", [0, 1, 2])
def test_each_proposed_configuration_runs_once_per_seed_and_optuna_learns_the_mean(sampler_seed):
    search = ConfigurationSearch(["full", "hash", "qr", "frequency"], [2, 4, 8, 16], [8, 16],
                                 [0, 1, 2], 12,
                                 sampler_seed=sampler_seed)
    points = drive(search)
    runs = [(p["strategy"], p["compression"], p["dim"], p["seed"]) for p in points]
    # no configuration trained twice; every seed of each
    assert len(runs) == len(set(runs)) == 12 * 3
    by_configuration: dict = {}
    for strategy, compression, dim, seed in runs:
        by_configuration.setdefault((strategy, compression, dim), []).append(seed)
    assert len(by_configuration) == 12 and all(sorted(s) == [0, 1, 2]
                                               for s in by_configuration.values())
    for key, number in search.proposed.items():  # what Optuna was told: the mean over the 3 seeds
        strategy, compression, dim = key
        results = [objectives({"strategy": strategy, "compression": compression, "dim": dim,
                               "seed": s})
                   for s in (0, 1, 2)]
        expected = [np.mean([r["val_logloss"] for r in results]),
                    np.mean([r["total_bytes"] for r in results])]
        assert np.allclose(search.study.trials[number].values, expected)


def test_a_grid_smaller_than_the_budget_runs_every_configuration_once_then_finishes():
    search = ConfigurationSearch(["hash", "frequency_embedding"], [4, 16], [8], [0], 6)
    assert search.budget == 4
    points = drive(search)
    assert sorted((p["strategy"], p["compression"]) for p in points) == [
        ("frequency_embedding", 4.0), ("frequency_embedding", 16.0), ("hash", 4.0), ("hash", 16.0)]
    assert search.suggest("again") == ConfigurationSearch.FINISHED


def test_repeated_proposals_are_told_the_stored_result_not_trained():
    search = ConfigurationSearch(["hash", "qr"], [4, 16], [8], [0], 4, sampler_seed=3)
    assert len(drive(search)) == 4
    # every Optuna trial beyond the 4 proposals is a repeat, told the stored result (or dropped
    # while running)
    assert search.repeats > 0 and len(search.study.trials) == 4 + search.repeats
    stored = {tuple(search.told[k]) for k in search.proposed}
    assert all(tuple(t.values) in stored for t in search.study.trials if t.state.name == "COMPLETE")


def test_all_seeds_failed_is_told_failed_and_a_failed_seed_gets_the_others_mean():
    search = ConfigurationSearch(["hash"], [4, 16], [8], [0, 1], 2)
    drive(search, fail={"hash-4.0-8-0", "hash-4.0-8-1", "hash-16.0-8-1"})
    assert search.told[("hash", 4.0, 8)] is None
    assert search.study.trials[search.proposed[("hash", 4.0, 8)]].state.name == "FAIL"
    only = objectives({"strategy": "hash", "compression": 16.0, "dim": 8, "seed": 0})
    assert np.allclose(search.told[("hash", 16.0, 8)], [only["val_logloss"], only["total_bytes"]])


def test_the_state_survives_save_and_restore(tmp_path):
    search = ConfigurationSearch(["hash", "qr", "frequency"], [4, 16], [8], [0], 5, sampler_seed=1)
    first = search.suggest("t0")
    search.save(str(tmp_path / "state.pkl"))
    restored = ConfigurationSearch(["hash"], [4], [8], [0], 1)
    restored.restore(str(tmp_path / "state.pkl"))
    assert restored.trials == {"t0": search.trials["t0"]} and restored.budget == 5
    restored.on_trial_complete("t0", objectives(first["point"]))
    points = [first["point"], *drive(restored, number=1)]
    assert len({(p["strategy"], p["compression"]) for p in points}) == 5
    pickle.dumps(restored)  # Tune pickles the searcher with the experiment
