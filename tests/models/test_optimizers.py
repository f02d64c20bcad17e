"""make_optimizers honours TrainConfig.optimizer, lr and embedding_lr."""

from __future__ import annotations

import pytest
import torch
from models_testdata import planted_split

from models import DLRM, DLRMConfig, FeatureSpec, TrainConfig, train
from models.optim import RowSparseAdam, RowWiseAdagrad
from models.train import make_optimizers

FEATURES = (FeatureSpec("ad", (30,)), FeatureSpec("noise", (7,)))
CONFIG = DLRMConfig(1, FEATURES, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,))

# optimizer -> (type for the tables, type for the MLPs)
EXPECTED_TYPES = {
    "adam": (RowSparseAdam, torch.optim.Adam),
    "sparse_adam_torch": (torch.optim.SparseAdam, torch.optim.Adam),
    "rowwise_adagrad": (RowWiseAdagrad, torch.optim.Adam),
    "adagrad": (torch.optim.Adagrad, torch.optim.Adam),
    "sgd": (torch.optim.SGD, torch.optim.SGD),
}


def _params(optimizer: torch.optim.Optimizer) -> set[int]:
    return {id(p) for group in optimizer.param_groups for p in group["params"]}


@pytest.mark.parametrize("optimizer", sorted(EXPECTED_TYPES))
@pytest.mark.parametrize(
    ("lr", "embedding_lr", "table_lr"),
    [(0.003, None, 0.003), (0.003, 0.5, 0.5)],
    ids=["tables_at_lr", "embedding_lr_override"],
)
def test_make_optimizers_types_and_learning_rates(optimizer, lr, embedding_lr, table_lr):
    model = DLRM(CONFIG)
    config = TrainConfig(optimizer=optimizer, lr=lr, embedding_lr=embedding_lr)
    tables, mlps = make_optimizers(model, config)
    assert (type(tables), type(mlps)) == EXPECTED_TYPES[optimizer]
    assert [g["lr"] for g in tables.param_groups] == [table_lr]
    assert [g["lr"] for g in mlps.param_groups] == [lr]
    assert _params(tables) == {id(p) for p in model.embedding_parameters()}
    assert _params(mlps) == {id(p) for p in model.dense_parameters()}


def _initial_model(seed: int) -> DLRM:
    """The model train() starts from with this seed (it seeds the init the same way)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return DLRM(CONFIG)


def _weights_after_one_step(optimizer: str) -> dict[str, torch.Tensor]:
    train_split, _ = planted_split(256, 30, 3, seed=0)
    config = TrainConfig(batch_size=256, epochs=1, lr=0.05, optimizer=optimizer, seed=0)
    result = train(CONFIG, config, train_split, None)  # one full-batch step
    return {k: v.detach().clone() for k, v in result.model.state_dict().items()}


def test_the_optimizer_changes_the_training_step():
    initial = {k: v.detach().clone() for k, v in _initial_model(0).state_dict().items()}
    after = {name: _weights_after_one_step(name) for name in EXPECTED_TYPES}
    for name, weights in after.items():  # every optimizer takes a step from the same init
        assert any(not torch.equal(weights[k], initial[k]) for k in initial), name
    for a, b in (("sgd", "adam"), ("sgd", "adagrad"), ("adam", "adagrad"),
                 ("rowwise_adagrad", "adagrad"), ("rowwise_adagrad", "adam")):
        changed = [k for k in initial if not torch.equal(after[a][k], after[b][k])]
        assert changed, f"{a} and {b} took the same step"
    # the MLPs' first step: Adam moves every weight with a gradient by about lr, SGD by lr * grad
    adam_step = (after["adam"]["over_arch.mlp.0.weight"] - initial["over_arch.mlp.0.weight"]).abs()
    sgd_step = (after["sgd"]["over_arch.mlp.0.weight"] - initial["over_arch.mlp.0.weight"]).abs()
    assert adam_step.max().item() == pytest.approx(0.05, rel=1e-3)
    assert not torch.allclose(sgd_step, adam_step)
