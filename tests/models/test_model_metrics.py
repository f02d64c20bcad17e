from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss, roc_auc_score

from models import (
    DLRM,
    DLRMConfig,
    FeatureSpec,
    accuracy,
    auc,
    binary_entropy,
    logloss,
    normalized_entropy,
    signal_captured,
    size_report,
)


def test_auc_by_hand_and_sklearn():
    # positives 0.35, 0.8 vs negatives 0.1, 0.4: pairs ranked right: (.35>.1), (.8>.1), (.8>.4)
    y, p = np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])
    assert auc(y, p) == pytest.approx(3 / 4)
    # a tie between a positive and a negative counts 1/2:
    # pos {.2, .7, .9} x neg {.2, .5}: .5 + 0 + 1 + 1 + 1 + 1 = 4.5 of 6 pairs
    y, p = np.array([0, 1, 1, 0, 1]), np.array([0.2, 0.2, 0.7, 0.5, 0.9])
    assert auc(y, p) == pytest.approx(4.5 / 6)
    assert auc(y, p) == pytest.approx(roc_auc_score(y, p))


def test_auc_is_nan_for_a_single_class():
    assert math.isnan(auc(np.ones(5), np.linspace(0.1, 0.9, 5)))
    assert math.isnan(auc(np.zeros(3), np.full(3, 0.5)))


def test_logloss_and_ne_by_hand():
    y, p = np.array([1, 0, 0, 1]), np.array([0.8, 0.3, 0.1, 0.6])
    hand = -(math.log(0.8) + math.log(0.7) + math.log(0.9) + math.log(0.6)) / 4
    assert logloss(y, p) == pytest.approx(hand, rel=1e-12)
    assert logloss(y, p) == pytest.approx(log_loss(y, p), rel=1e-12)
    base_rate = 0.25  # training click rate
    entropy = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    assert binary_entropy(base_rate) == pytest.approx(entropy, rel=1e-12)
    assert normalized_entropy(y, p, base_rate) == pytest.approx(hand / entropy, rel=1e-12)
    # NE of the constant predictor at the true rate is exactly 1
    y = np.array([1, 0, 0, 0])
    assert normalized_entropy(y, np.full(4, 0.25), 0.25) == pytest.approx(1.0, rel=1e-12)


def test_logloss_clips_certain_predictions():
    y = np.array([1.0, 0.0])
    assert logloss(y, np.array([1.0, 0.0])) == pytest.approx(-math.log(1 - 1e-7), rel=1e-6)
    wrong = logloss(y, np.array([0.0, 1.0]))
    assert math.isfinite(wrong) and wrong == pytest.approx(-math.log(1e-7), rel=1e-6)


def test_all_one_labels():
    y = np.ones(4)
    assert logloss(y, np.full(4, 0.5)) == pytest.approx(math.log(2))
    assert accuracy(y, np.array([0.9, 0.6, 0.4, 0.5])) == 0.5  # 0.5 is not > 0.5
    with pytest.raises(
        ValueError, match=r"rate must be in \(0, 1\) for a non-zero entropy, got 1.0"
    ):
        normalized_entropy(y, np.full(4, 0.5), base_rate=float(y.mean()))


@pytest.mark.parametrize("fn", [logloss, auc, accuracy])
def test_bad_inputs_raise(fn):
    with pytest.raises(ValueError, match="labels must not be empty, got 0 samples"):
        fn(np.array([]), np.array([]))
    with pytest.raises(ValueError, match=r"1-D of equal length, got \(2,\) and \(3,\)"):
        fn(np.zeros(2), np.zeros(3))
    with pytest.raises(ValueError, match="labels must be 0 or 1"):
        fn(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="probs must be finite, got 1 NaN/inf values"):
        fn(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match=r"probs must be in \[0, 1\], got range \[-0.1, 0.2\]"):
        fn(np.array([0, 1]), np.array([-0.1, 0.2]))


def test_signal_captured():
    assert signal_captured(0.5, 0.7, 0.4) == pytest.approx(2 / 3)
    assert signal_captured(0.7, 0.7, 0.4) == 0.0
    assert signal_captured(0.4, 0.7, 0.4) == 1.0
    with pytest.raises(
        ValueError, match="constant_logloss must exceed bayes_logloss, got 0.4 <= 0.4"
    ):
        signal_captured(0.5, 0.4, 0.4)
    with pytest.raises(ValueError, match="model_logloss must be finite, got nan"):
        signal_captured(math.nan, 0.7, 0.4)


def test_size_report_by_hand():
    d = 4
    config = DLRMConfig(
        num_dense=2,
        features=(
            FeatureSpec("full", (10,)),  # vocab 9 + 1 OOV row: 10 * 4 * 4 = 160
            FeatureSpec("hash", (5,)),  # 5 * 4 * 4 = 80
            FeatureSpec("qr_mult", (3, 4), "mult"),  # (3 + 4) * 4 * 4 = 112
            FeatureSpec("qr_concat", (3, 4), "concat"),  # halves at D/2 = 2: (3 + 4) * 2 * 4 = 56
            FeatureSpec("learned", (6,)),  # 6 * 4 * 4 = 96
        ),
        embedding_dim=d,
        bottom_mlp=(3,),
        top_mlp=(2,),
        interaction="cat",
    )
    embedding = 160 + 80 + 112 + 56 + 96
    # bottom 2 -> 3 -> 4: (2*3 + 3) + (3*4 + 4) = 25
    # top: cat input 4 + 5 * 4 = 24 -> 2 -> 1: (24*2 + 2) + (2*1 + 1) = 53
    dense = (25 + 53) * 4
    mapping = 12 * 9 + 16  # learned map: 8-byte key + 4-byte row per id (K = 9) + seeds
    report = size_report(config, mapping, full_total_bytes=9400)
    assert report.embedding_bytes == embedding == 504
    assert report.dense_bytes == dense == 312
    assert report.mapping_bytes == 124
    assert report.total_bytes == 504 + 124 + 312 == 940
    assert report.compression_ratio == pytest.approx(10.0)
    assert sum(p.numel() for p in DLRM(config).dense_parameters()) * 4 == dense
    assert size_report(config, 0).compression_ratio is None


def test_size_report_errors():
    config = DLRMConfig(1, (FeatureSpec("a", (3,)),))
    with pytest.raises(ValueError, match="mapping_bytes must be >= 0, got -1"):
        size_report(config, -1)
    with pytest.raises(TypeError, match="mapping_bytes must be an int, got 1.5"):
        size_report(config, 1.5)
    with pytest.raises(ValueError, match="full_total_bytes must be a positive int, got 0"):
        size_report(config, 1, full_total_bytes=0)
