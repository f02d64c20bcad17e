from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from models_testdata import random_split

from models import (
    DLRM,
    DLRMConfig,
    FeatureSpec,
    FusedSplit,
    TrainConfig,
    dense_param_count,
    embedding_bytes,
)
from models.dlrm import unique_lookup
from models.train import make_optimizers

SUBSETS = {
    "all": None,  # every kind at once, filled from the all_kinds fixture
    "plain": ("plain", "plain2"),
    "double": ("plain", "double"),
    "qr_mult": ("qr_mult", "plain"),
    "qr_add": ("qr_add", "bag_mean"),
    "qr_concat_only": ("qr_concat", "bag_qr"),
    "bags_only": ("bag_mean", "bag_double"),
}


def _features(all_kinds, subset):
    names = SUBSETS[subset]
    return all_kinds if names is None else tuple(f for f in all_kinds if f.name in names)


def _model_and_batch(features, num_dense, interaction, n=4, seed=0):
    config = DLRMConfig(
        num_dense, features, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,), interaction=interaction
    )
    torch.manual_seed(seed)
    model = DLRM(config)
    split = random_split(features, num_dense, n, seed=seed)
    batch = FusedSplit(split, model.layout).batch(torch.arange(n))
    return model, split, batch


@pytest.mark.parametrize("subset", list(SUBSETS))
@pytest.mark.parametrize("num_dense", [0, 3])
@pytest.mark.parametrize("interaction", ["dot", "cat"])
def test_output_shape_and_sparse_grads(all_kinds, subset, num_dense, interaction):
    features = _features(all_kinds, subset)
    model, _, batch = _model_and_batch(features, num_dense, interaction)
    logits = model(batch.dense, batch.lookups)
    assert logits.shape == (4,)
    assert model.interaction_arch(
        None if model.dense_arch is None else model.dense_arch(batch.dense),
        model.sparse_arch(batch.lookups),
    ).shape == (4, model.config.interaction_dim)
    F.binary_cross_entropy_with_logits(logits, batch.labels).backward()
    for w in model.embedding_parameters():
        assert w.grad is None or w.grad.is_sparse
    assert all(p.grad is not None and not p.grad.is_sparse for p in model.dense_parameters())


def _naive_features(model, split, n):
    """Per-feature vectors by explicit loops over samples, for comparison with the fused path."""
    weights = [w.detach().numpy() for w in model.sparse_arch.table_weights()]
    out, t = [], 0
    for f in model.config.features:
        parts = []
        for _ in f.table_sizes:
            w, entry = weights[t], split.tables[t]
            t += 1
            if not f.multi_valued:
                parts.append(w[entry[:n]])
                continue
            rows, offsets = entry
            bags = []
            for i in range(n):
                bag = w[rows[offsets[i] : offsets[i + 1]]]
                pooled = bag.sum(0)
                if f.pooling == "mean" and len(bag):
                    pooled = pooled / len(bag)
                bags.append(pooled)
            parts.append(np.stack(bags))
        if f.combine == "none":
            out.append(parts[0])
        elif f.combine in ("sum", "add"):
            out.append(parts[0] + parts[1])
        elif f.combine == "mult":
            out.append(parts[0] * parts[1])
        else:
            out.append(np.concatenate(parts, axis=1))
    return np.stack(out, axis=1)  # (B, F, D)


@pytest.mark.parametrize("subset", list(SUBSETS))
def test_fused_lookup_matches_naive_loops(all_kinds, subset):
    features = _features(all_kinds, subset)
    model, split, batch = _model_and_batch(features, 2, "dot", n=9, seed=3)
    fused = model.sparse_arch(batch.lookups).detach().numpy()
    np.testing.assert_allclose(fused, _naive_features(model, split, 9), rtol=1e-6, atol=1e-7)


def test_dot_interaction_is_dense_then_pairwise_dots_without_self(all_kinds):
    model, _, batch = _model_and_batch(all_kinds[:3], 2, "dot", n=5)
    dense = model.dense_arch(batch.dense)
    sparse = model.sparse_arch(batch.lookups)
    got = model.interaction_arch(dense, sparse).detach().numpy()
    z = torch.cat([dense.unsqueeze(1), sparse], 1).detach().numpy()
    pairs = [np.sum(z[:, i] * z[:, j], axis=1) for i in range(4) for j in range(i)]
    want = np.concatenate([dense.detach().numpy(), np.stack(pairs, 1)], 1)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_mult_second_table_starts_near_one():
    config = DLRMConfig(0, (FeatureSpec("a", (50, 40), "mult"), FeatureSpec("b", (3,))))
    first, second, _ = DLRM(config).sparse_arch.table_weights()
    assert first.abs().max() <= (1 / 50) ** 0.5
    assert ((second - 1).abs().max() <= (1 / 40) ** 0.5).item()


def test_size_helpers_match_the_instantiated_model(all_kinds):
    for num_dense, interaction in [(0, "dot"), (3, "dot"), (3, "cat")]:
        config = DLRMConfig(num_dense, all_kinds, embedding_dim=6, interaction=interaction)
        model = DLRM(config)
        assert dense_param_count(config) == sum(p.numel() for p in model.dense_parameters())
        emb = sum(w.numel() * 4 for w in model.sparse_arch.table_weights())
        assert embedding_bytes(config) == emb
        assert emb == sum(w.numel() * 4 for w in model.embedding_parameters())


def test_overfits_one_small_batch(all_kinds):
    model, _, batch = _model_and_batch(all_kinds, 3, "dot", n=16, seed=1)
    optimizers = make_optimizers(model, TrainConfig(lr=1e-2))
    for _ in range(300):
        loss = F.binary_cross_entropy_with_logits(model(batch.dense, batch.lookups), batch.labels)
        for opt in optimizers:
            opt.zero_grad()
        loss.backward()
        for opt in optimizers:
            opt.step()
    assert loss.item() < 0.05


def test_unique_lookup_gathers_each_row_once_with_the_same_values_and_gradient():
    torch.manual_seed(0)
    weight = torch.nn.Parameter(torch.randn(20, 3))
    rows = torch.tensor([[4, 7, 4], [7, 7, 19]])
    upstream = torch.randn(2, 3, 3)
    out = unique_lookup(rows, weight)
    (out * upstream).sum().backward()
    grad = weight.grad
    assert grad.is_sparse
    assert grad._indices()[0].tolist() == [4, 7, 19]  # one gradient row per distinct row, sorted
    reference = torch.nn.Parameter(weight.detach().clone())
    expected_out = F.embedding(rows, reference, sparse=True)
    (expected_out * upstream).sum().backward()
    torch.testing.assert_close(out, expected_out)
    torch.testing.assert_close(grad.to_dense(), reference.grad.to_dense())


@pytest.mark.parametrize("optimizer", ["adam", "rowwise_adagrad", "sparse_adam_torch", "adagrad",
                                       "sgd"])
def test_training_gathering_each_row_once_is_the_same_training(optimizer):
    features = (FeatureSpec("a", (30,)), FeatureSpec("b", (7,)))
    config = DLRMConfig(2, features, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,))
    split = random_split(features, 2, 600, seed=3)
    from models import train

    results = [train(config, TrainConfig(batch_size=64, epochs=2, lr=0.05, optimizer=optimizer,
                                         gather_unique=unique, early_stopping_patience=None),
                     split, None).model for unique in (True, False)]
    for a, b in zip(results[0].parameters(), results[1].parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
