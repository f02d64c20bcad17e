"""Strategies describe themselves: `sweep/` asks the registry, never a strategy's name.

Two checks. A scan of sweep/'s source finds no comparison of a strategy with a string literal
(`strategy == "full"`, `in ("embedding", ...)`) and no registry call with a literal name. And a
toy strategy, registered in `mappers.MAPPERS` only, runs through `run_trial` and the evidence
report like a shipped one: nothing outside mappers/ had to learn its name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import mappers
from mappers.base import Mapper
from models import ProbeConfig, TrainConfig
from sweep.datasets import get_source, prepare
from sweep.frontier.evidence import gather
from sweep.frontier.evidence_files import write_report
from sweep.trial import ModelConfig, TrialConfig, run_trial

SWEEP = Path(__file__).resolve().parents[2] / "sweep"
REGISTRY_CALLS = {"get_mapper", "get_strategy", "strategy_traits"}


def _is_name(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value,
                                                         str) and node.value in mappers.MAPPERS


def _names_in(node: ast.AST) -> bool:
    """A strategy-name literal, or a tuple / list / set of literals holding one."""
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        return any(_is_name(element) for element in node.elts)
    return _is_name(node)


def strategy_name_uses(source: str) -> list[tuple[int, str]]:
    """(line, code) of each comparison with a strategy-name literal and each registry call with
    one."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare) and any(_names_in(side)
                                                 for side in (node.left, *node.comparators)):
            found.append((node.lineno, ast.unparse(node)))
        if isinstance(node, ast.Call) and node.args and _is_name(node.args[0]):
            called = (node.func.attr if isinstance(node.func, ast.Attribute)
                      else getattr(node.func, "id", ""))
            if called in REGISTRY_CALLS:
                found.append((node.lineno, ast.unparse(node)))
    return found


def test_the_scan_finds_what_it_looks_for():
    code = ('if strategy == "full": pass\nok = s in ("embedding", "x")\nm = get_mapper("hash")\n'
            'fine = strategy == other\ndefault = "hash"\n')
    assert [line for line, _ in strategy_name_uses(code)] == [1, 2, 3]


def test_sweep_never_compares_a_strategy_name_with_a_literal():
    found = [f"{path.relative_to(SWEEP.parent)}:{line}: {code}"
             for path in sorted(SWEEP.rglob("*.py"))
             for line, code in strategy_name_uses(path.read_text())]
    why = "strategy knowledge outside mappers/ (ask the mapper class's traits):\n"
    assert not found, why + "\n".join(found)


class ModuloMapper(Mapper):
    """A toy strategy: row = id mod num_rows. Registered for these tests only."""

    name = "modulo"
    report_rank = 50
    compared_with = ("frequency",)

    def __init__(self, *, num_rows: int, seed: int = 0) -> None:
        super().__init__(seed=seed)
        self.num_rows = int(num_rows)
        self._params = {"num_rows": self.num_rows, "seed": self.seed}

    def _fit(self, ids, counts, embeddings):
        pass

    def _transform_flat(self, ids):
        return np.mod(ids, self.num_rows)

    @property
    def table_sizes(self):
        return (self.num_rows,)

    @property
    def nbytes(self):
        return 8


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(mappers.MAPPERS, ModuloMapper.name, ModuloMapper)
    return ModuloMapper.name


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    source = get_source("synthetic", num_rows=4000, vocab_sizes=(12, 300, 900), num_dense=2)
    return prepare(source, tmp_path_factory.mktemp("toy") / "data")


def _row(metrics: dict, trial_id: str) -> dict:
    """A trial row as `sweep.tracking.records.trial_rows` gives it, from run_trial's metrics."""
    keys = ("strategy", "compression", "dim", "seed", "val_logloss", "test_logloss", "test_auc",
            "test_ne",
            "total_bytes", "embedding_bytes", "mapping_bytes", "dense_bytes", "compression_ratio",
            "collision_rate", "unseen_value_rate", "fallback_value_rate")
    return {**{k: metrics.get(k) for k in keys}, "trial_id": trial_id, "run_id": trial_id,
            "name": trial_id,
            "status": "FINISHED", "excluded": None}


def test_a_toy_strategy_runs_through_run_trial_and_the_report(toy, data, tmp_path):
    rows = []
    for strategy in (toy, "hash", "frequency"):
        for seed in (0, 1):
            config = TrialConfig(data=str(data.path), strategy=strategy, compression=4.0, dim=4,
                                 seed=seed,
                                 model=ModelConfig(bottom_mlp=(8,), top_mlp=(8,)),
                                 train=TrainConfig(epochs=1, batch_size=256, num_threads=1),
                                 probe=ProbeConfig(dim=3, epochs=1),
                                 cache_dir=str(tmp_path / "probes"))
            metrics = run_trial(config)
            # 12 ids <= 16: full
            assert metrics["strategy"] == strategy and metrics["features_mapped"] == 2
            rows.append(_row(metrics, f"{strategy}-{seed}"))
    tables = gather(rows)
    matched = {r["strategy"]: r for r in tables["matched"]}
    assert list(matched) == ["hash", "frequency", toy]  # report_rank 1, 4, 50
    assert matched[toy]["vs_hash_pairs"] == 2 and matched[toy]["vs_hash_verdict"] != "baseline"
    assert matched[toy]["vs_frequency_pairs"] == 2  # its compared_with trait, paired by seed
    assert matched["hash"]["vs_frequency_pairs"] == 0
    files = write_report(tables, tmp_path / "report", experiment="toy", parent_run_id="p",
                         command="test")
    assert f"`{toy}`" in files["report.md"].read_text()
    assert f"{toy}-c4-d4" in files["configurations.csv"].read_text()
