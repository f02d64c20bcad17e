"""Managed tables (models/online.py): raw ids in the batch, rows from the online maps on every
forward pass, ids noted only in training, and each update's changed rows re-initialised with
their optimizer state reset."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from models_testdata import random_split

from models import DLRMConfig, FeatureSpec, TrainConfig, train
from models.online import OnlineMaps, reset_rows
from models.optim import RowSparseAdam, RowWiseAdagrad

FEATURES = (FeatureSpec("plain", (6,)), FeatureSpec("managed", (8,), managed=True))


class ModuloMaps:
    """Row = raw id mod 8 until the first update, then (raw id + 1) mod 8; every update says
    rows 2 and 5 changed. A stand-in with a known schedule (sweep.trial's mch maps are the real
    ones, tested with a real trial)."""

    tables = (1,)

    def __init__(self, remap_every: int):
        self.remap_every, self.shift, self.observed, self.updates = remap_every, 0, 0, 0

    def rows(self, raw: np.ndarray, observe: bool) -> np.ndarray:
        if observe:
            self.observed += raw.size
        return (raw + self.shift) % 8

    def update(self) -> list[np.ndarray]:
        self.updates += 1
        self.shift = 1
        return [np.array([2, 5])]

    def state(self) -> object:
        return copy.deepcopy(self.__dict__)

    def restore(self, state: object) -> None:
        self.__dict__.update(copy.deepcopy(state))


def _splits():
    train_split = random_split(FEATURES, 2, 256, seed=1)
    train_split.tables[1] = np.random.default_rng(2).integers(-10**12, 10**12, 256)  # raw ids
    val = random_split(FEATURES, 2, 64, seed=3)
    val.tables[1] = np.random.default_rng(4).integers(-10**12, 10**12, 64)
    return train_split, val


def _config():
    return DLRMConfig(2, FEATURES, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,))


def test_training_notes_ids_and_updates_every_n_batches_validation_never():
    maps = ModuloMaps(remap_every=3)
    assert isinstance(maps, OnlineMaps)
    train_split, val = _splits()
    result = train(_config(), TrainConfig(batch_size=32, epochs=2, lr=0.01,
                                          early_stopping_patience=None), train_split, val,
                   online=maps)
    assert maps.observed == 2 * 256  # training batches only: validation and test observe nothing
    assert maps.updates == (2 * 256 // 32) // 3 == 5
    assert result.rows_reinitialised == 2 * 5


def test_an_update_reinitialises_its_rows_and_resets_their_optimizer_state():
    maps = ModuloMaps(remap_every=4)
    train_split, val = _splits()
    result = train(_config(), TrainConfig(batch_size=32, epochs=1, lr=0.05,
                                          early_stopping_patience=None), train_split, val,
                   online=maps)  # 8 batches: updates after batches 4 and 8, the last one
    weight = result.model.sparse_arch.weights[0].detach()
    offset = result.model.layout.tables[1].row_offset
    bound = (1 / 8) ** 0.5
    fresh = weight[offset + np.array([2, 5])]
    assert fresh.abs().max() <= bound  # a new row's init, not trained since the last update


@pytest.mark.parametrize("optimizer, key, initial", [
    (RowSparseAdam, "exp_avg", 0.0), (RowSparseAdam, "exp_avg_sq", 0.0),
    (RowWiseAdagrad, "state_sum", 0.0), (torch.optim.Adagrad, "sum", 0.1)])
def test_reset_rows_clears_only_those_rows(optimizer, key, initial):
    weight = torch.nn.Parameter(torch.randn(6, 3))
    kwargs = {"initial_accumulator_value": 0.1} if optimizer is torch.optim.Adagrad else {}
    opt = optimizer([weight], lr=0.1, **kwargs)
    weight.grad = torch.sparse_coo_tensor(torch.tensor([[0, 1, 2, 3, 4, 5]]), torch.randn(6, 3),
                                          (6, 3))
    opt.step()
    before = opt.state[weight][key].clone()
    reset_rows(opt, weight, torch.tensor([1, 4]))
    after = opt.state[weight][key]
    assert torch.all(after[[1, 4]] == initial)
    assert torch.equal(after[[0, 2, 3, 5]], before[[0, 2, 3, 5]])


def test_managed_tables_need_their_maps():
    train_split, val = _splits()
    with pytest.raises(ValueError, match=r"managed tables are \[1\]; online maps must be given"):
        train(_config(), TrainConfig(epochs=1), train_split, val)
    with pytest.raises(ValueError, match=r"managed tables are \[\]"):
        plain = DLRMConfig(2, (FeatureSpec("plain", (6,)), FeatureSpec("b", (8,))),
                           embedding_dim=4)
        train(plain, TrainConfig(epochs=1), random_split(plain.features, 2, 64), None,
              online=ModuloMaps(1))
