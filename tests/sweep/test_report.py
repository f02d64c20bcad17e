"""`collide report` on a tiny experiment in a real sqlite MLflow store (no Ray needed): the tables
regenerate byte for byte, and the intervals are the hand-computed ones."""

from __future__ import annotations

import csv
import math

import pytest

from sweep.cli import main
from sweep.names import trial_name
from sweep.tracking.writer import SweepTracker

# test logloss per (strategy, compression) and seed; hash and frequency_embedding share seeds 0-2
LOSSES = {
    ("hash", 4.0): (0.50, 0.52, 0.57),
    ("frequency_embedding", 4.0): (0.47, 0.50, 0.53),
    ("hash", 16.0): (0.60, 0.61, 0.65),
    ("frequency_embedding", 16.0): (0.61, 0.63, 0.64),
    ("full", None): (0.45, 0.46, 0.44),
}
BYTES = {("hash", 4.0): 3000, ("frequency_embedding", 4.0): 3600, ("hash", 16.0): 1000,
         ("frequency_embedding", 16.0): 1500, ("full", None): 10_000}


def _tiny_experiment(tmp_path) -> str:
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker.start(store, "tiny", retry_s=0.5)
    for (strategy, compression), losses in LOSSES.items():
        for seed, loss in enumerate(losses):
            name = trial_name(strategy, compression, 8, seed)
            tracker.start_trial(name, name, {"strategy": strategy, "compression": compression,
                                             "dim": 8, "seed": seed})
            mapping = 500 if strategy == "frequency_embedding" else 0
            metrics = {"best_val_logloss": loss + 0.01, "test_logloss": loss, "test_ne": loss * 2,
                       "test_auc": 1 - loss,
                       "total_bytes": BYTES[(strategy, compression)], "mapping_bytes": mapping,
                       "embedding_bytes": BYTES[(strategy, compression)] - mapping - 100,
                       "dense_bytes": 100,
                       "collision_rate": 0.25 if strategy == "hash" else 0.125,
                       "unseen_value_rate": 0.01,
                       "fallback_value_rate": 0.0,
                       "unused_row_share": 0.05 * seed, "mean_ids_per_row": 4.0 + seed,
                       "max_ids_per_row": 9.0, "total_seconds": 10.0 + seed,
                       "best_epoch": 1.0 + seed % 2, "epochs_run": 2.0}
            if strategy == "frequency_embedding" and seed < 2:  # seed 2's probe was cached
                metrics["probe_train_seconds"] = 30.0
            if strategy != "full":
                metrics |= {"collision.C1.nmi": 0.5, "collision.C2.nmi": 0.7}
            # the data's vocabulary: C2's differs by seed (data that varies with the seed)
            metrics |= {"vocab.C1.ids": 50.0, "vocab.C1.learned": 10.0, "vocab.C1.full": 1.0,
                        "vocab.C2.ids": 1000.0 + seed, "vocab.C2.learned": 300.0,
                        "vocab.C2.full": 0.0, "vocab.all.ids": 1050.0 + seed,
                        "vocab.all.learned": 310.0, "vocab.all.full": 1.0}
            tracker.log_metrics(name, metrics, step=1)
            tracker.end_trial(name, "completed")
    tracker.end_sweep("FINISHED", {}, "completed")
    return store


def _read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_report_tables_regenerate_byte_for_byte_and_match_a_hand_computation(tmp_path, capsys):
    store = _tiny_experiment(tmp_path)
    out = tmp_path / "results" / "tiny"
    argv = ["report", "--experiment", "tiny", "--tracking-uri", store, "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "5 configurations; frontier: " in printed and "report.md" in printed
    names = ("report.md", "configurations.csv", "matched.csv", "collisions.csv", "trials.csv")
    first = {n: (out / n).read_bytes() for n in names}
    assert (out / "frontier.png").stat().st_size > 10_000
    assert main(argv) == 0  # the same MLflow data again
    assert {n: (out / n).read_bytes() for n in names} == first

    matched = {(r["compression"], r["strategy"]): r for r in _read(out / "matched.csv")}
    c4 = matched[("4", "frequency_embedding")]
    # paired by seed: -0.03, -0.02, -0.04 -> mean -0.03, sd 0.01, t(0.975, 2 df) = 4.3027 (tables)
    assert float(c4["vs_hash"]) == pytest.approx(-0.03)
    assert float(c4["vs_hash_ci"]) == pytest.approx(4.3027 * 0.01 / math.sqrt(3), rel=1e-4)
    assert c4["vs_hash_verdict"] == "better than hash" and c4["vs_hash_pairs"] == "3"
    assert c4["vs_frequency"] == "" and c4["vs_frequency_pairs"] == "0"  # no frequency run here
    # hash c4 alone: mean 0.53, sd sqrt(0.0013)
    assert float(matched[("4", "hash")]["test_logloss_ci"]) == pytest.approx(
        4.3027 * math.sqrt(0.0013) / math.sqrt(3), rel=1e-4)
    assert matched[("4", "hash")]["vs_hash_verdict"] == "baseline"
    # c16: differences 0.01, 0.02, -0.01: the interval holds 0
    assert matched[("16", "frequency_embedding")]["vs_hash_verdict"] == "no clear difference"

    configurations = {r["configuration"]: r for r in _read(out / "configurations.csv")}
    assert configurations["frequency_embedding-c4-d8"]["bytes_without_mapping"] == "3100"
    assert configurations["full-d8"]["on_frontier"] == "True"
    # hash-c16 (1000 B, 0.62) is the smallest; frequency_embedding-c16 (1500 B, 0.6267) is dominated
    # by it
    assert configurations["hash-c16-d8"]["on_frontier"] == "True"
    assert configurations["frequency_embedding-c16-d8"]["on_frontier"] == "False"

    collisions = {(r["strategy"], r["compression"]): r for r in _read(out / "collisions.csv")}
    assert float(collisions[("hash", "4")]["collision_rate"]) == 0.25
    assert float(collisions[("frequency_embedding", "4")]["nmi"]) == pytest.approx(0.6)
    hashed = collisions[("hash", "4")]  # table usage: the mean over the 3 seeds
    assert float(hashed["unused_row_share"]) == pytest.approx(0.05)
    assert (float(hashed["mean_ids_per_row"]), float(hashed["max_ids_per_row"])) == (5.0, 9.0)

    markdown = first["report.md"].decode()
    assert ("| `hash` | 4x | 3 | 0.2500 | 0.0100 | 0.0000 | 0.0500 | 5.0 | 9.0 | 0.6000 | - |"
            in markdown)
    assert ("| 4x | 8 | fp32 | `frequency_embedding` | 3 |" in markdown
            and "-0.0300 +- 0.0248" in markdown)
    assert "- `hash`: 1000 B to 2.9 KiB (hash-c16-d8, hash-c4-d8)" in markdown
    assert "Reference, the full table: d8 fp32: 9.8 KiB, test logloss 0.4500 +- " in markdown
    # over both cells: lower at c4 only (-0.03 and +0.0067: mean -0.0117), better by its CI at c4
    # only, and by neither after Holm (below)
    assert ("| `frequency_embedding` | 2 | 1 | 1 | 0 | 0 | 0 | -0.0117 | -0.0300 | +0.0067 |"
            in markdown)
    # Holm by hand. With 2 degrees of freedom the two-sided p of t is 1 - |t| / sqrt(t^2 + 2).
    # c4: t = -0.03 / (0.01 / sqrt 3) = -5.19615, p = 0.035099; c16: differences 0.01, 0.02, -0.01,
    # t = 0.75593, p = 0.52860. Holm over the 2: 2 x 0.035099 = 0.070197, then max(0.070197,
    # 1 x 0.52860) = 0.52860: neither stays clear at 0.05.
    c4_p, c16_p = (1 - t / math.sqrt(t * t + 2) for t in (5.196152, 0.755929))
    assert float(c4["vs_hash_p"]) == pytest.approx(c4_p, rel=1e-5)
    assert float(c4["vs_hash_p_holm"]) == pytest.approx(2 * c4_p, rel=1e-5)
    c16 = matched[("16", "frequency_embedding")]
    assert float(c16["vs_hash_p_holm"]) == pytest.approx(c16_p, rel=1e-5)
    assert c4["vs_hash_holm_verdict"] == "no clear difference"
    assert ("2 cells were tested against hash. If no strategy differed from hash, chance alone "
            "would make about 0.1 of their uncorrected intervals exclude 0; 1 do. After Holm's "
            "correction 0 stay clear.") in markdown
    # one dim, so the pooled rows are the cells themselves
    pooled = {(r["compression"], r["strategy"]): r for r in _read(out / "pooled.csv")}
    assert float(pooled[("4", "frequency_embedding")]["vs_hash_p_holm"]) == pytest.approx(
        2 * c4_p, rel=1e-5)
    vocabulary = {r["feature"]: r for r in _read(out / "vocabulary.csv")}
    assert (vocabulary["C2"]["ids_min"], vocabulary["C2"]["ids_max"]) == ("1000", "1002")
    assert "| C1 | 50 | 10 | full |" in markdown and "| C2 | 1,000 to 1,002 | 300 | mapped |" \
        in markdown and "| all | 1,050 to 1,052 | 310 | 1 full |" in markdown
    assert "collide report --experiment tiny" in markdown and "mlflow.db" in markdown
    # compute: the trials' mean seconds, and the probe's for a learned map
    assert "| hash-c4-d8 | 0,1,2 |" in markdown and "| 11 s |" in markdown
    assert "| 11 s + 30 s probe |" in markdown
    assert float(configurations["frequency_embedding-c4-d8"]["probe_train_seconds"]) == 30.0
    # the sweep's compute: 5 configurations x (10 + 11 + 12) s; a probe per seed, one cached
    assert ("Compute: 165 s of trials (0.0 h; 15 of 15 trials recorded theirs), plus 60 s "
            "training 2 of 3 probes (one per seed;") in markdown
    # trials.csv: each trial's own values, per seed, that the means above come from
    trials = _read(out / "trials.csv")
    assert len(trials) == sum(len(v) for v in LOSSES.values())  # fp32 only: no precision scored
    rows = [r for r in trials if r["strategy"] == "hash" and r["compression"] == "16"]
    assert [(r["seed"], float(r["test_logloss"]), r["best_epoch"]) for r in rows] == [
        ("0", 0.60, "1.0"), ("1", 0.61, "2.0"), ("2", 0.65, "1.0")]
    assert rows[0]["name"] == "hash-c16-d8-s0" and rows[0]["precision"] == "fp32"
    assert float(rows[0]["val_logloss"]) == pytest.approx(0.61)


def test_report_refuses_a_directory_it_did_not_write(tmp_path, capsys):
    store = _tiny_experiment(tmp_path)
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my notes")
    assert main(["report", "--experiment", "tiny", "--tracking-uri", store, "--out", str(out)]) == 2
    assert "report.md" in capsys.readouterr().err
    assert (out / "report.md").read_text() == "my notes"


# Staleness: test logloss per (strategy, window) and seed, at c4 d8; unseen share per window.
WINDOW_LOSSES = {
    ("hash", 1): (0.50, 0.52, 0.54), ("hash", 2): (0.55, 0.56, 0.60),
    ("hash", 3): (0.60, 0.61, 0.62),
    ("frequency_embedding", 1): (0.46, 0.49, 0.50), ("frequency_embedding", 2): (0.53, 0.55, 0.58),
    ("frequency_embedding", 3): (0.60, 0.62, 0.61),
}
UNSEEN = {1: 0.02, 2: 0.05, 3: 0.11}


def _windowed_experiment(store: str, name: str) -> None:
    tracker = SweepTracker.start(store, name, retry_s=0.5)
    for strategy in ("hash", "frequency_embedding"):
        for seed in range(3):
            trial = f"{strategy}-c4-d8-s{seed}"
            tracker.start_trial(trial, trial,
                                {"strategy": strategy, "compression": 4.0, "dim": 8, "seed": seed})
            metrics = {"best_val_logloss": 0.5, "test_logloss": 0.55, "total_bytes": 3000,
                       "mapping_bytes": 0,
                       "embedding_bytes": 2900, "dense_bytes": 100}
            for window in (1, 2, 3):
                metrics |= {f"window.{window}.test_logloss": WINDOW_LOSSES[(
                    strategy, window)][seed],
                            f"window.{window}.unseen_value_rate": UNSEEN[window],
                            f"window.{window}.rare_value_rate": 2 * UNSEEN[window],
                            f"window.{window}.rows": 1000.0,
                            f"window.{window}.constant_test_logloss": 0.65}
            tracker.log_metrics(trial, metrics, step=1)
            tracker.end_trial(trial, "completed")
    tracker.end_sweep("FINISHED", {}, "completed")


def test_report_staleness_tables_match_a_hand_computation_and_go_when_the_sweep_has_no_windows(
    tmp_path, capsys):
    store = _tiny_experiment(tmp_path)  # "tiny": no windows
    _windowed_experiment(store, "aging")
    out = tmp_path / "results"
    argv = ["report", "--experiment", "aging", "--tracking-uri", store, "--out", str(out)]
    assert main(argv) == 0
    first = (out / "staleness.csv").read_bytes()
    assert (out / "staleness.png").stat().st_size > 10_000
    assert main(argv) == 0
    assert (out / "staleness.csv").read_bytes() == first

    rows = {(r["strategy"], r["window"]): r for r in _read(out / "staleness.csv")}
    assert float(rows[("hash", "3")]["unseen_value_rate"]) == 0.11 and rows[(
        "hash", "3")]["rows"] == "1000"
    w1 = rows[("frequency_embedding", "1")]
    # paired by seed: -0.04, -0.03, -0.04 -> mean -0.03667, sd 0.005774
    assert float(w1["vs_hash"]) == pytest.approx(-0.11 / 3)
    assert float(w1["vs_hash_ci"]) == pytest.approx(4.3027 * math.sqrt(1 / 3 * 1e-4) / math.sqrt(3),
                                                    rel=1e-4)
    assert w1["vs_hash_verdict"] == "better than hash" and w1["vs_hash_change"] == ""
    w3 = rows[("frequency_embedding", "3")]
    # window 3 differences 0.00, +0.01, -0.01; change from window 1 per seed: +0.04, +0.04, +0.03
    assert float(w3["vs_hash"]) == pytest.approx(
        0.0, abs=1e-12) and w3["vs_hash_verdict"] == "no clear difference"
    assert float(w3["vs_hash_change"]) == pytest.approx(0.11 / 3)
    assert float(w3["vs_hash_change_ci"]) == pytest.approx(
        4.3027 * math.sqrt(1 / 3 * 1e-4) / math.sqrt(3), rel=1e-4)
    # its test: t = (0.11 / 3) / (sqrt(1e-4 / 3) / sqrt 3) = 11, p = 1 - 11 / sqrt(11^2 + 2); the
    # family of last-window changes holds this one alone, so Holm leaves it as it is
    assert float(w3["vs_hash_change_p"]) == pytest.approx(1 - 11 / math.sqrt(123), rel=1e-6)
    assert w3["vs_hash_change_p_holm"] == w3["vs_hash_change_p"]
    assert rows[("frequency_embedding", "2")]["vs_hash_change_p_holm"] == ""
    markdown = (out / "report.md").read_text()
    assert "| unseen | 0.0200 | 0.0500 | 0.1100 |" in markdown
    assert "| 4x | 8 | `frequency_embedding` | -0.0367 +- 0.0143 |" in markdown
    assert "| +0.0367 +- 0.0143 | 0.0082 |" in markdown

    # the same folder, now a sweep without windows: the staleness files collide wrote there go
    assert main(["report", "--experiment", "tiny", "--tracking-uri", store, "--out", str(out)]) == 0
    assert not (out / "staleness.csv").exists() and not (out / "staleness.png").exists()
    assert "Staleness" not in (out / "report.md").read_text()
    assert "staleness.csv" not in (out / ".collide-output.json").read_text()
    capsys.readouterr()


def test_the_compute_line_says_when_every_probe_was_cached_and_leaves_probes_out_without_maps():
    from sweep.frontier.evidence_files import _compute_line

    cached = {"num_trials": 4, "compute": {"trial_seconds": 7200.0, "trials_timed": 3,
                                           "probe_seconds": 0.0, "probes_timed": 0, "probes": 2}}
    assert _compute_line(cached) == (
        "Compute: 7,200 s of trials (2.0 h; 3 of 4 trials recorded theirs); its 2 probes (one "
        "per seed) were trained earlier and cached, so their time is not recorded.")
    no_maps = {"num_trials": 1, "compute": {"trial_seconds": 5.0, "trials_timed": 1,
                                            "probe_seconds": 0.0, "probes_timed": 0, "probes": 0}}
    assert _compute_line(no_maps) == ("Compute: 5 s of trials (0.0 h; 1 of 1 trials recorded "
                                      "theirs).")
