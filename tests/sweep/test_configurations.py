"""Frontiers over configurations (sweep.frontier.configurations, stats, the writers, export's
choice)."""

from __future__ import annotations

import csv
import logging
import math

import pytest

from sweep.frontier.configurations import (
    comparisons,
    configuration_key,
    configuration_rows,
    has_replicates,
    pooled_comparisons,
    ranked_rows,
)
from sweep.frontier.export import choose
from sweep.frontier.files import write_pareto_files
from sweep.frontier.pareto import frontier_table
from sweep.frontier.report import plot_pareto, write_configurations_md
from sweep.frontier.stats import chance_count, holm, mean_ci, p_value, paired_difference
from sweep.names import trial_name


def trial(strategy, compression, seed, val, total=1000, test=None, dim=8, **extra):
    name = trial_name(strategy, compression, dim, seed)
    return {"trial_id": name, "run_id": f"run-{name}", "name": name, "status": "FINISHED",
            "strategy": strategy,
            "compression": None if strategy == "full" else compression, "dim": dim, "seed": seed,
            "val_logloss": val, "test_logloss": test if test is not None or val is None else val
            + 0.01, "test_auc": 0.7,
            "test_ne": 0.9, "total_bytes": total, "embedding_bytes": total - 100,
            "mapping_bytes": 0,
            "dense_bytes": 100, "compression_ratio": 4.0, "excluded": None, **extra}


def test_mean_ci_matches_a_hand_computation():
    # mean 0.53; sd = sqrt((0.03^2 + 0.01^2 + 0.04^2) / 2) = sqrt(0.0013); t(0.975, 2 df) = 4.3027
    # (tables)
    estimate = mean_ci([0.50, 0.52, 0.57])
    assert estimate.mean == pytest.approx(0.53)
    assert estimate.sd == pytest.approx(math.sqrt(0.0013))
    assert estimate.half_width == pytest.approx(4.3027 * math.sqrt(0.0013) / math.sqrt(3), rel=1e-4)
    assert estimate.n == 3 and estimate.low < 0.53 < estimate.high


def test_one_value_has_no_interval_and_bad_input_is_refused():
    assert mean_ci([0.4]).half_width is None and not mean_ci([0.4]).excludes_zero()
    with pytest.raises(ValueError, match="at least one value"):
        mean_ci([])
    with pytest.raises(ValueError, match="finite values"):
        mean_ci([0.1, float("nan")])
    with pytest.raises(ValueError, match="level must be in"):
        mean_ci([0.1, 0.2], level=1.5)


def test_paired_difference_uses_the_shared_seeds_only():
    # seeds 0, 1 shared: differences -0.02, -0.04 -> mean -0.03, sd sqrt(0.0002), t(0.975, 1) =
    # 12.706
    difference = paired_difference({0: 0.50, 1: 0.51, 2: 0.9}, {0: 0.52, 1: 0.55})
    assert difference.n == 2 and difference.mean == pytest.approx(-0.03)
    assert difference.half_width == pytest.approx(12.706 * math.sqrt(0.0002) / math.sqrt(2),
                                                  rel=1e-4)
    assert paired_difference({0: 0.5}, {1: 0.5}) is None


def test_holm_matches_a_hand_computation_and_p_matches_the_interval():
    # sorted: 0.005 x 4 = 0.02, 0.01 x 3 = 0.03, 0.03 x 2 = 0.06, then max(0.06, 0.04 x 1) = 0.06
    assert holm([0.01, 0.04, 0.03, None, 0.005]) == pytest.approx([0.03, 0.06, 0.06, None, 0.02])
    assert holm([0.9, 0.8]) == [1.0, 1.0] and holm([]) == [] and holm([None]) == [None]
    assert chance_count(90) == pytest.approx(4.5)
    # two degrees of freedom: p = 1 - |t| / sqrt(t^2 + 2); t = 0.02 / (0.01 / sqrt 3)
    estimate = mean_ci([0.01, 0.02, 0.03])
    t = 0.02 / (0.01 / math.sqrt(3))
    assert p_value(estimate) == pytest.approx(1 - t / math.sqrt(t * t + 2), rel=1e-9)
    assert (p_value(estimate) < 0.05) == estimate.excludes_zero()
    assert p_value(mean_ci([0.5])) is None and p_value(None) is None
    assert p_value(mean_ci([0.0, 0.0])) == 1.0 and p_value(mean_ci([0.1, 0.1])) == 0.0


def test_cells_that_differ_only_by_dim_pool_per_seed():
    values = {("frequency_embedding", 4.0, 8, "fp32"): {0: 0.50, 1: 0.52, 2: 0.55, 3: 0.6},
              ("frequency_embedding", 4.0, 16, "fp32"): {0: 0.48, 1: 0.50, 2: 0.53},
              ("hash", 4.0, 8, "fp32"): {0: 0.53, 1: 0.54, 2: 0.58, 3: 0.6},
              ("hash", 4.0, 16, "fp32"): {0: 0.52, 1: 0.53, 2: 0.55},
              ("embedding", 4.0, 8, "fp32"): {0: 0.51, 1: 0.52, 2: 0.56},
              ("embedding", 4.0, 16, "fp32"): {0: 0.49, 1: 0.51, 2: 0.52}}
    pooled = pooled_comparisons(values, "frequency_embedding", 4.0, "fp32", [8, 16])
    # per seed (seed 3 ran d8 only, so it is left out): d8 -0.03 -0.02 -0.03, d16 -0.04 -0.03 -0.02
    # -> -0.035, -0.025, -0.025
    expected = mean_ci([-0.035, -0.025, -0.025])
    assert pooled["vs_hash"] == pytest.approx(expected.mean) and pooled["vs_hash_pairs"] == 3
    assert pooled["vs_hash_ci"] == pytest.approx(expected.half_width)
    assert pooled["vs_hash_p"] == pytest.approx(p_value(expected))
    assert pooled["vs_hash_verdict"] == "better than hash"
    # the paired difference from embedding: d8 -0.01 0 -0.01, d16 -0.01 -0.01 +0.01
    assert pooled["vs_embedding"] == pytest.approx(
        mean_ci([-0.01, -0.005, 0.0]).mean) and pooled["vs_embedding_pairs"] == 3
    assert pooled_comparisons(values, "frequency_embedding", 4.0, "fp32", [8, 32])[
        "vs_hash_verdict"] == "no hash run to compare"
    # a matched cell of frequency_embedding carries its difference from embedding too
    cell = comparisons(values, ("frequency_embedding", 4.0, 8, "fp32"))
    assert cell["vs_embedding"] == pytest.approx(mean_ci([-0.01, 0.0, -0.01]).mean)


def test_a_configuration_is_its_mean_over_seeds_with_the_median_seed_named():
    rows = [trial("hash", 4, 0, 0.50), trial("hash", 4, 1, 0.52), trial("hash", 4, 2, 0.57),
            trial("qr", 4, 0, 0.60), trial("qr", 4, 1, 0.62)]
    hash_row, qr_row = configuration_rows(rows)
    assert hash_row["configuration"] == "hash-c4-d8" and hash_row["seeds"] == [0, 1, 2]
    assert hash_row["val_logloss"] == pytest.approx(0.53)
    assert hash_row["val_logloss_ci"] == pytest.approx(mean_ci([0.50, 0.52, 0.57]).half_width)
    assert hash_row["test_logloss"] == pytest.approx(0.54) and hash_row["total_bytes"] == 1000
    assert (hash_row["median_seed"], hash_row["median_run_id"]) == (1, "run-hash-c4-d8-s1")
    assert qr_row["median_seed"] == 0  # an even count: the lower of the two middle ones


def test_a_failed_seed_is_counted_and_a_configuration_without_seeds_is_not_ranked():
    rows = [trial("hash", 4, 0, 0.50), trial("hash", 4, 1, None, status="FAILED"),
            trial("qr", 4, 0, None, status="FAILED", excluded="trial failed")]
    hash_row, qr_row = configuration_rows(rows)
    assert (hash_row["n_seeds"], hash_row["not_ranked"], hash_row["val_logloss_ci"]) == (1, 1, None)
    assert qr_row["val_logloss"] is None and "qr-c4-d8-s0: trial failed" in qr_row["excluded"]
    table = frontier_table([hash_row, qr_row])
    assert [r["on_frontier"] for r in table] == [True, False]


def test_seed_noise_no_longer_picks_the_winner():
    # the case: B's luckiest seed beats every seed of A, but A is better on average
    rows = [trial("a", 4, s, v) for s, v in enumerate((0.50, 0.50, 0.50))]
    rows += [trial("b", 4, s, v) for s, v in enumerate((0.45, 0.60, 0.60))]
    by_trial = [r["name"] for r in frontier_table(rows) if r["on_frontier"]]
    assert by_trial == ["b-c4-d8-s0"]
    by_configuration = [r["configuration"] for r in frontier_table(configuration_rows(rows))
                        if r["on_frontier"]]
    assert by_configuration == ["a-c4-d8"]


def test_ranked_rows_are_configurations_only_when_seeds_repeat_them(caplog):
    one_seed = [trial("hash", 4, 0, 0.5), trial("qr", 4, 0, 0.6)]
    assert not has_replicates(one_seed) and ranked_rows(one_seed)[1] == "trials"
    with caplog.at_level(logging.WARNING):
        assert ranked_rows(one_seed, per_trial=True)[1] == "trials"
    assert "per-trial ranking has no effect here" in caplog.text
    two_seeds = one_seed + [trial("hash", 4, 1, 0.5)]
    assert ranked_rows(two_seeds)[1] == "configurations"
    assert ranked_rows(two_seeds, per_trial=True)[1] == "trials"


def test_export_chooses_a_configuration_then_its_median_seed_and_says_so():
    rows = [trial("hash", 4, s, v, total=1000) for s, v in enumerate((0.50, 0.52, 0.57))]
    rows += [trial("full", 1, s, v, total=9000) for s, v in enumerate((0.40, 0.41, 0.42))]
    point, selection = choose(rows, max_bytes=5000)
    assert point["name"] == "hash-c4-d8-s1"
    assert selection["ranked"] == "configurations" and selection["configuration"] == "hash-c4-d8"
    assert selection["seeds"] == [0, 1, 2]
    assert selection["seed"] == 1
    assert "median" in selection["seed_rule"]
    assert selection["val_logloss_mean"] == pytest.approx(0.53)
    point, selection = choose(rows, max_bytes=5000, per_trial=True)
    assert point["name"] == "hash-c4-d8-s0" and selection["ranked"] == "trials"


def test_the_files_rank_configurations_and_keep_every_trial(tmp_path):
    rows = [trial("hash", 4, s, v) for s, v in enumerate((0.50, 0.52, 0.57))]
    rows += [trial("full", 1, s, v, total=9000) for s, v in enumerate((0.40, 0.41, 0.42))]
    trials, ranked, files = write_pareto_files(rows, tmp_path, title="t")
    assert len(trials) == 6 and len(ranked) == 2
    assert set(files) == {"pareto.csv", "pareto.png", "pareto.md", "pareto-trials.csv"}
    with open(files["pareto.csv"], newline="") as f:
        configurations = list(csv.DictReader(f))
    assert [r["configuration"] for r in configurations] == ["hash-c4-d8", "full-d8"]
    assert configurations[0]["seeds"] == "[0, 1, 2]" and float(
        configurations[0]["val_logloss"]) == pytest.approx(0.53)
    with open(files["pareto-trials.csv"], newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    markdown = files["pareto.md"].read_text()
    assert "| hash-c4-d8 | 0,1,2 |" in markdown and "0.5300 +- 0.0896" in markdown
    assert ("2 configurations over seeds 0, 1, 2: 2 ranked, 0 not ranked; 2 on the frontier."
            in markdown)


def test_configuration_writers_handle_partial_and_empty_tables(tmp_path):
    rows = [trial("hash", 4, 0, 0.5), trial("hash", 4, 1, None, status="FAILED", excluded="trial "
                                                                                          "failed")]
    table = frontier_table(configuration_rows(rows))
    text = write_configurations_md(table, tmp_path / "p.md").read_text()
    assert "| hash-c4-d8 | 0 (1 of 2) |" in text and "- hash-c4-d8: 1 of 2 seeds" in text
    assert plot_pareto(table, tmp_path / "p.png").stat().st_size > 1000
    empty = frontier_table(configuration_rows([trial("qr", 4, 0, None, excluded="trial failed")]))
    assert "No configuration completed" in write_configurations_md(
        empty, tmp_path / "e.md").read_text()


def test_export_says_when_the_median_seed_is_past_a_bound_the_mean_meets():
    # mean 0.40 meets --max-val-loss 0.40, but the median seed has 0.41
    rows = [trial("hash", 4, s, v) for s, v in enumerate((0.38, 0.41, 0.41))]
    point, selection = choose(rows, max_val_loss=0.40)
    assert point["seed"] == 1 and "holds for the mean over seeds (0.4000)" in selection["note"]
    assert "note" not in choose(rows, max_val_loss=0.45)[1]


def test_precision_points_make_a_point_per_trial_and_precision():
    from sweep.frontier.configurations import precision_points

    trial = {"trial_id": "t1", "name": "hash-c4-d8-s0", "strategy": "hash", "compression": 4.0,
             "dim": 8, "seed": 0, "precision": "fp32", "total_bytes": 1000, "embedding_bytes": 800,
             "mapping_bytes": 0, "dense_bytes": 200, "val_logloss": 0.5, "test_logloss": 0.51,
             "excluded": None, "window.1.test_logloss": 0.52,
             "precision.int8.total_bytes": 450.0, "precision.int8.embedding_bytes": 250.0,
             "precision.int8.val_logloss": 0.501, "precision.int8.test_logloss": 0.512}
    failed = {**trial, "trial_id": "t2", "excluded": "failed", "val_logloss": None}
    fp32, int8, kept_failed = precision_points([trial, failed])
    assert fp32["precision"] == "fp32" and fp32["total_bytes"] == 1000
    assert not any(k.startswith("precision.") for k in fp32) and "window.1.test_logloss" in fp32
    assert (int8["trial_id"], int8["name"], int8["precision"]) == ("t1-int8", "hash-c4-d8-s0-int8",
                                                                   "int8")
    assert int8["total_bytes"] == 450 and isinstance(int8["total_bytes"], int)
    assert (int8["val_logloss"], int8["test_logloss"], int8["mapping_bytes"]) == (0.501, 0.512, 0)
    assert "window.1.test_logloss" not in int8  # the test windows are the fp32 model's
    assert kept_failed["trial_id"] == "t2"  # an excluded trial keeps its one row, no points
    assert configuration_key(int8) == ("hash", 4.0, 8, "int8")
    assert configuration_key({"strategy": "hash", "compression": 4.0, "dim": 8}) == (
        "hash", 4.0, 8, "fp32")  # a row of an older sweep: as trained
