"""A real `mixed_dim` trial: the same byte budget as `hash` at a compression, its blocks and
projections counted at every precision, written as tables, and exported so that both loaders
give back the vectors the model used."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import numpy as np
import pytest

from mappers import load_bundle, portable
from mappers.portable import table_bytes
from models import ProbeConfig, TrainConfig
from sweep.cli import main
from sweep.datasets import get_source, prepare
from sweep.errors import ConfigError
from sweep.serving import load_export
from sweep.tracking.writer import SweepTracker
from sweep.trial import ModelConfig, TrialConfig, run_trial
from sweep.trial.precision import read_back

TINY = {"num_rows": 6000, "vocab_sizes": (20, 400, 1500), "num_dense": 2}
DIM = 8


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return prepare(get_source("synthetic", **TINY), tmp_path_factory.mktemp("tiny") / "data")


def _config(tiny, tmp_path, **changes) -> TrialConfig:
    base = TrialConfig(data=str(tiny.path), strategy="mixed_dim", compression=8.0, dim=DIM,
                       precisions=("fp32", "int8"),
                       model=ModelConfig(full_threshold=50, bottom_mlp=(8,), top_mlp=(8,)),
                       train=TrainConfig(epochs=2, batch_size=256, lr=0.01, num_threads=1),
                       probe=ProbeConfig(dim=3, epochs=1, num_threads=1),
                       cache_dir=str(tmp_path / "probes"))
    return replace(base, **changes)


@pytest.fixture(scope="module")
def trial(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("trial")
    metrics = run_trial(_config(tiny, out, out_dir=str(out / "run")))
    return metrics, out / "run"


def test_blocks_fill_the_budget_of_a_compression_and_every_byte_is_counted(tiny, trial):
    metrics, run = trial
    details = json.loads((run / "metrics.json").read_text())
    tables = floats_int8 = 0
    for name in tiny.feature_names:
        mapper = load_bundle(run / details["features"][name]["bundle"])
        vocab = len(tiny.vocab[name].ids)
        if vocab <= 50:  # kept full
            assert mapper.name == "full"
            tables += mapper.table_sizes[0] * DIM * 4
            floats_int8 += table_bytes(mapper.table_sizes[0], DIM, "int8")
            continue
        assert mapper.name == "mixed_dim" and len(mapper.blocks) == 4
        assert [d for _, d in mapper.blocks] == [8, 4, 2, 1]
        budget = math.ceil(vocab / 8) * DIM  # what hash gets at this compression, in floats
        stored = sum(n * d for n, d in mapper.blocks) + sum(d * DIM for _, d in mapper.blocks[1:])
        assert budget - 4 * DIM <= stored <= budget  # equal shares, rounded down per block
        assert sum(n for n, _ in mapper.blocks) > math.ceil(vocab / 8)  # more ids get a row
        tables += stored * 4
        floats_int8 += sum(table_bytes(n, d, "int8") for n, d in mapper.blocks) + sum(
            d * DIM * 4 for _, d in mapper.blocks[1:])
    assert metrics["embedding_bytes"] == tables
    projections = sum(info.get("projection_bytes", 0) for info in details["features"].values())
    assert metrics["projection_bytes"] == projections > 0
    assert details["features"]["C3"]["blocks"] == [list(b) for b in load_bundle(
        run / details["features"]["C3"]["bundle"]).blocks]
    assert metrics["precision.int8.embedding_bytes"] == floats_int8
    assert metrics["test_logloss"] < metrics["constant_test_logloss"]


def test_the_trial_writes_blocks_and_projections(tiny, trial):
    _, run = trial
    details = json.loads((run / "metrics.json").read_text())
    entry = details["features"]["C3"]
    mapper = load_bundle(run / entry["bundle"])
    manifest, _ = portable.read_bundle(run / entry["tables"])
    assert manifest["shapes"] == [list(b) for b in mapper.blocks]
    assert manifest["projections"] == [[d, DIM] for _, d in mapper.blocks[1:]]


def test_a_dim_among_its_params_is_refused(tiny, tmp_path):
    with pytest.raises(ConfigError, match="mixed_dim: its dim is the trial's"):
        _config(tiny, tmp_path, mapper_params={"dim": 4})


def test_the_export_gives_back_the_vectors_the_model_used(tiny, trial, tmp_path):
    metrics, run = trial
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = SweepTracker.start(store, "exp", retry_s=0.5)
    tracker.start_trial("t1", "mixed_dim-c8-d8-s0",
                        {"strategy": "mixed_dim", "compression": 8.0, "dim": DIM, "seed": 0})
    tracker.log_metrics("t1", {k: v for k, v in metrics.items() if isinstance(v, int | float)
                               and not isinstance(v, bool)} | {"best_val_logloss": 0.5}, step=1)
    tracker.log_artifacts("t1", str(run))
    tracker.end_trial("t1", "completed")
    tracker.end_sweep("FINISHED", {}, "completed")
    out = tmp_path / "exported"
    assert main(["export", "--experiment", "exp", "--max-bytes", "1e9", "--tracking-uri", store,
                 "--out", str(out)]) == 0
    details = json.loads((run / "metrics.json").read_text())
    trained = portable.read_bundle(run / details["features"]["C3"]["tables"])[1]
    mapper = load_bundle(run / details["features"]["C3"]["bundle"])
    ids = np.asarray(tiny.vocab["C3"].ids)
    rows = mapper.transform(ids)
    starts = np.cumsum([0] + [n for n, _ in mapper.blocks])
    want = np.empty((ids.size, DIM), dtype=np.float32)
    precision = load_export(out).manifest["precision"]
    for k in range(len(mapper.blocks)):
        at = (rows >= starts[k]) & (rows < starts[k + 1])
        block = read_back(trained[f"t{k}_values"], precision)[rows[at] - starts[k]]
        want[at] = block if k == 0 else block @ trained[f"p{k - 1}_values"]
    for loaded in (load_export(out), portable.load_export(out)):
        got = loaded.tables("C3").vectors(loaded.transform_ids("C3", ids))
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    with pytest.raises(IndexError, match="its blocks have"):
        load_export(out).tables("C3").vectors([int(starts[-1])])


def test_a_sweep_of_mixed_dim_over_bags_is_refused_before_ray(tmp_path, capsys, monkeypatch):
    import ray

    monkeypatch.chdir(tmp_path)
    rng = np.random.default_rng(0)
    lines = ["click,user,tags"] + [f"{i % 2},u{rng.integers(300)},t{rng.integers(300)}|"
                                   f"t{rng.integers(300)}" for i in range(3000)]
    (tmp_path / "log.csv").write_text("\n".join(lines) + "\n")
    code = main(["sweep", "--preset", "table", "--strategies", "hash,mixed_dim", "--data-path",
                 str(tmp_path / "log.csv"), "--set", "data.params={label: click, categorical: "
                 "[user], multi_valued: [tags], separator: '|'}",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"])
    assert code == 2
    assert ("strategy mixed_dim needs single-valued features, and tags hold(s) bags of ids"
            in capsys.readouterr().err)
    assert not ray.is_initialized()
