"""Mixed-dimension features (models/mixed.py): the forward pass against a naive loop, the stored
shapes and bytes, padding that stays zero under every optimizer, and the config's errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from models_testdata import random_split

from models import DLRM, DLRMConfig, FeatureSpec, FusedSplit, TrainConfig, embedding_bytes, train
from models.train import OPTIMIZERS

D = 8
FEATURES = (
    FeatureSpec("qr", (4, 3), combine="concat"),  # a group-1 table first: the order is remapped
    FeatureSpec("mixed", (2 + 5 + 9,), combine="mixed", blocks=((2, D), (5, 4), (9, 2))),
    FeatureSpec("plain", (6,)),
    FeatureSpec("mixed2", (3 + 4,), combine="mixed", blocks=((3, D), (4, 1))),
)


def _config(features=FEATURES) -> DLRMConfig:
    return DLRMConfig(2, features, embedding_dim=D, bottom_mlp=(8,), top_mlp=(8,))


def test_forward_is_each_block_at_its_dim_then_projected():
    torch.manual_seed(0)
    model = DLRM(_config())
    split = random_split(FEATURES, 2, 40, seed=1)
    batch = FusedSplit(split, model.layout).batch(torch.arange(40))
    out = model.sparse_arch(batch.lookups).detach().numpy()  # (B, F, D)
    stored = [t.detach().numpy() for t in model.sparse_arch.stored_tables()]
    projections = [p.detach().numpy() for p in model.sparse_arch.projections()]
    # stored order: qr's 2 tables, mixed's 3 blocks, plain, mixed2's 2 blocks
    for position, table, first, blocks, projection in ((1, 2, 2, FEATURES[1].blocks, 0),
                                                       (3, 4, 6, FEATURES[3].blocks, 2)):
        rows = split.tables[table]
        starts = np.cumsum([0] + [n for n, _ in blocks])
        for i, row in enumerate(rows):
            k = int(np.searchsorted(starts, row, side="right") - 1)
            vector = stored[first + k][row - starts[k]]
            assert vector.shape == (blocks[k][1],)
            want = vector if k == 0 else vector @ projections[projection + k - 1]
            np.testing.assert_allclose(out[i, position], want, rtol=1e-5, atol=1e-6)
    plain = model.sparse_arch.table_weights()[3].detach().numpy()
    np.testing.assert_allclose(out[:, 2], plain[split.tables[3]], rtol=1e-6)


def test_stored_shapes_and_bytes_are_the_blocks_and_projections():
    config = _config()
    model = DLRM(config)
    stored, projections = model.sparse_arch.stored_tables(), model.sparse_arch.projections()
    assert [tuple(t.shape) for t in stored] == list(config.stored_shapes)
    assert [tuple(p.shape) for p in projections] == list(config.projection_shapes) == [
        (4, D), (2, D), (1, D)]
    assert embedding_bytes(config) == 4 * (sum(t.numel() for t in stored)
                                           + sum(p.numel() for p in projections))
    assert embedding_bytes(config) < 4 * sum(w.numel() for w in model.embedding_parameters())


@pytest.mark.parametrize("optimizer", [o for o in OPTIMIZERS if o != "sparse_adam_torch"])
def test_padding_stays_zero_and_the_model_learns(optimizer):
    config = _config()
    tr, va = random_split(FEATURES, 2, 400, seed=5), random_split(FEATURES, 2, 100, seed=6)
    result = train(config, TrainConfig(batch_size=32, epochs=3, lr=1e-2, optimizer=optimizer,
                                       early_stopping_patience=None), tr, va)
    assert all(math.isfinite(h["train_loss"]) for h in result.history)
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    sparse = result.model.sparse_arch
    for m, blocks in enumerate(sparse.mixed.blocks):
        begin = sparse.mixed.row_offsets[m]
        weight = sparse.weights[0].detach()
        for rows, dim in blocks:
            assert torch.count_nonzero(weight[begin:begin + rows, dim:]) == 0
            assert torch.count_nonzero(weight[begin:begin + rows, :dim]) == rows * dim
            begin += rows
    padding = sparse.mixed.projections.detach().clone()
    for m, blocks in enumerate(sparse.mixed.blocks):
        for k, (_, dim) in enumerate(blocks[1:], start=1):
            assert torch.count_nonzero(padding[m, k - 1, :dim]) == dim * D
            padding[m, k - 1, :dim] = 0
    assert torch.count_nonzero(padding) == 0


@pytest.mark.parametrize("rows, blocks, message", [
    (5, ((2, D), (2, 4)), "rows sum to"),
    (5, (), "needs blocks"),
    (4, ((2, 4), (2, 2)), "first block must have"),
    (4, ((2, D), (2, 16)), "first block must have"),
])
def test_bad_blocks_are_refused(rows, blocks, message):
    with pytest.raises(ValueError, match=message):
        _config((FeatureSpec("m", (rows,), combine="mixed", blocks=blocks),
                 FeatureSpec("plain", (3,))))


def test_blocks_of_other_combines_and_mixed_bags_are_refused():
    with pytest.raises(ValueError, match="blocks are for combine='mixed' only"):
        FeatureSpec("m", (4,), blocks=((4, D),))
    with pytest.raises(ValueError, match="need a single-valued feature"):
        FeatureSpec("m", (4,), combine="mixed", blocks=((4, D),), multi_valued=True)
