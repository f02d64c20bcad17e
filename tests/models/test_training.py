from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from models_testdata import planted_split, random_split

from models import (
    DLRMConfig,
    FeatureSpec,
    NonFiniteLossError,
    TrainConfig,
    logloss,
    predict_proba,
    train,
)

FEATURES = (
    FeatureSpec("ad", (30,)),
    FeatureSpec("noise", (7,)),
)
TIMING = {"epoch_seconds", "samples_per_second"}


def _config(**kwargs):
    return DLRMConfig(1, FEATURES, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,), **kwargs)


def _data(seed=0):
    train_split, _ = planted_split(600, 30, 3, seed=seed)
    val_split, _ = planted_split(200, 30, 3, seed=seed + 100)
    test_split, _ = planted_split(200, 30, 3, seed=seed + 200)
    return train_split, val_split, test_split


def _without_timing(history):
    return [{k: v for k, v in h.items() if k not in TIMING} for h in history]


def test_same_seed_same_metrics_and_weights():
    tr, va, te = _data()
    cfg = TrainConfig(batch_size=64, epochs=2, lr=1e-2, seed=7)
    a = train(_config(), cfg, tr, va, te)
    b = train(_config(), cfg, tr, va, te)
    assert _without_timing(a.history) == _without_timing(b.history)
    assert a.test_metrics == b.test_metrics
    for (name, x), (_, y) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(x, y), name
    c = train(_config(), TrainConfig(batch_size=64, epochs=2, lr=1e-2, seed=8), tr, va, te)
    assert c.test_metrics != a.test_metrics


def test_history_callback_and_learning():
    tr, va, te = _data()
    seen = []
    result = train(
        _config(),
        TrainConfig(batch_size=32, epochs=5, lr=1e-2),
        tr,
        va,
        te,
        on_epoch=lambda epoch, m: seen.append((epoch, m)),
    )
    assert [e for e, _ in seen] == [1, 2, 3, 4, 5]
    assert [m for _, m in seen] == result.history
    keys = {"epoch", "train_loss", "val_logloss", "val_auc", "val_ne", "val_accuracy"} | TIMING
    assert set(result.history[0]) == keys
    assert set(result.test_metrics) == {"test_logloss", "test_auc", "test_ne", "test_accuracy"}
    assert result.base_rate == pytest.approx(float(tr.labels.mean()))
    # planted click rates are learnable: clearly better than a constant predictor
    assert result.history[-1]["val_ne"] < 0.8
    assert result.test_metrics["test_auc"] > 0.8
    assert all(math.isfinite(v) for h in result.history for v in h.values())


def test_threads_and_global_rng_are_left_as_found():
    tr, va, _ = _data()
    threads_inside = []
    state = torch.get_rng_state()
    train(
        _config(),
        TrainConfig(batch_size=128, epochs=1, num_threads=2),
        tr,
        va,
        on_epoch=lambda e, m: threads_inside.append(torch.get_num_threads()),
    )
    assert threads_inside == [2]
    assert torch.get_num_threads() == 1  # set by the autouse fixture
    assert torch.equal(torch.get_rng_state(), state)


def test_huge_lr_raises_non_finite_loss_error():
    tr, va, _ = _data()
    with pytest.raises(
        NonFiniteLossError, match=r"training loss became (nan|inf) at epoch 1, step \d+"
    ):
        train(_config(), TrainConfig(batch_size=32, epochs=1, lr=1e30), tr, va)


def test_nan_input_names_epoch_and_step():
    tr, va, _ = _data()
    tr.dense[5, 0] = np.nan
    with pytest.raises(
        NonFiniteLossError, match="training loss became nan at epoch 1, step 0; lower lr"
    ):
        train(_config(), TrainConfig(batch_size=len(tr.labels), epochs=1), tr, va)


def test_early_stopping_restores_best_weights():
    # random labels: nothing to learn, so a large lr overfits and val logloss rises
    features = (FeatureSpec("a", (200,)), FeatureSpec("b", (200,)))
    config = DLRMConfig(2, features, embedding_dim=8, bottom_mlp=(16,), top_mlp=(16,))
    tr, va = random_split(features, 2, 400, seed=1), random_split(features, 2, 200, seed=2)
    result = train(
        config, TrainConfig(batch_size=32, epochs=8, lr=3e-2, early_stopping_patience=2), tr, va
    )
    assert result.stopped_early
    losses = [h["val_logloss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) + 1
    assert len(losses) == result.best_epoch + 2
    restored = logloss(va.labels, predict_proba(result.model, va))
    assert restored == pytest.approx(losses[result.best_epoch - 1], rel=1e-6)


def test_without_val():
    tr, _, te = _data()
    result = train(_config(), TrainConfig(batch_size=128, epochs=2), tr, None, te)
    assert set(result.history[1]) == {"epoch", "train_loss"} | TIMING
    assert result.best_epoch == 2
    stopping = train(_config(), TrainConfig(batch_size=128, epochs=2, early_stopping_patience=1),
                     tr, None, te)
    assert len(stopping.history) == 2 and not stopping.stopped_early  # no val: every epoch runs


def test_single_class_val_gives_nan_auc_with_a_warning(caplog):
    tr, va, _ = _data()
    va.labels[:] = 0.0
    result = train(_config(), TrainConfig(batch_size=128, epochs=1), tr, va)
    assert math.isnan(result.history[0]["val_auc"])
    assert math.isfinite(result.history[0]["val_logloss"])
    assert "val labels hold a single class: val_auc is undefined (NaN)" in caplog.text


def test_degenerate_splits_fail_before_training():
    tr, va, _ = _data()
    empty = random_split(FEATURES, 1, 0)
    with pytest.raises(ValueError, match="val split must not be empty, got 0 samples"):
        train(_config(), TrainConfig(), tr, empty)
    tr.labels[:] = 1.0
    with pytest.raises(ValueError, match="train labels must hold both classes .* click rate 1.0"):
        train(_config(), TrainConfig(), tr, va)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(batch_size=0), "batch_size must be a positive int, got 0"),
        (dict(epochs=True), "epochs must be a positive int, got True"),
        (dict(lr=-1.0), "lr must be a positive finite float, got -1.0"),
        (dict(embedding_lr=math.inf), "embedding_lr must be a positive finite float, got inf"),
        (
            dict(optimizer="lamb"),
            r"optimizer must be one of \('adam', 'sparse_adam_torch', 'rowwise_adagrad', "
            r"'adagrad', 'sgd'\), got 'lamb'",
        ),
        (dict(device="tpu"), r"device must be one of \('cpu', 'cuda', 'auto'\), got 'tpu'"),
        (
            dict(early_stopping_patience=0),
            "early_stopping_patience must be None or a positive int, got 0",
        ),
        (dict(num_threads=-2), "num_threads must be None or a positive int, got -2"),
    ],
)
def test_train_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**kwargs)


@pytest.mark.parametrize("optimizer", ["adagrad", "sgd", "sparse_adam_torch"])
def test_other_optimizers_run(optimizer):
    tr, va, _ = _data()
    result = train(
        _config(), TrainConfig(batch_size=64, epochs=1, optimizer=optimizer, lr=0.05), tr, va
    )
    assert math.isfinite(result.history[0]["val_logloss"])


@pytest.mark.parametrize("names", [None, ("qr_concat", "bag_qr")])
def test_trains_every_table_kind(all_kinds, names):
    features = all_kinds if names is None else tuple(f for f in all_kinds if f.name in names)
    config = DLRMConfig(2, features, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,))
    tr, va = random_split(features, 2, 300, seed=5), random_split(features, 2, 100, seed=6)
    result = train(config, TrainConfig(batch_size=64, epochs=2, lr=1e-2), tr, va, va)
    assert all(math.isfinite(v) for h in result.history for v in h.values())
    assert result.history[1]["train_loss"] < result.history[0]["train_loss"]


def test_default_adam_trains_as_torch_sparse_adam(all_kinds):
    """The default table optimizer (RowSparseAdam) is torch's SparseAdam made fast: the same
    training run, bags, QR and double-hash tables included, ends with the same weights and
    the same metrics up to float rounding."""
    config = DLRMConfig(2, all_kinds, embedding_dim=4, bottom_mlp=(8,), top_mlp=(8,))
    tr, va = random_split(all_kinds, 2, 600, seed=5), random_split(all_kinds, 2, 200, seed=6)
    runs = {name: train(config, TrainConfig(batch_size=64, epochs=2, lr=1e-2, optimizer=name,
                                            early_stopping_patience=None), tr, va)
            for name in ("adam", "sparse_adam_torch")}
    fast, reference = runs["adam"], runs["sparse_adam_torch"]
    for a, b in zip(fast.model.state_dict().values(), reference.model.state_dict().values(),
                    strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)
    for a, b in zip(fast.history, reference.history, strict=True):
        assert a["val_logloss"] == pytest.approx(b["val_logloss"], rel=1e-5)
