"""Click-prediction metrics and model size accounting: pure functions on arrays and ints.

All logarithms are natural, so ``normalized_entropy`` = logloss / binary entropy of the
training click rate is a ratio of quantities in the same unit (He et al., 2014).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score

from models.config import DLRMConfig, dense_bytes, embedding_bytes

EPS = 1e-7  # probabilities are clipped to [EPS, 1 - EPS] before taking logs


def _check(labels: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=np.float64)
    p = np.asarray(probs, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(
            f"labels and probs must be 1-D of equal length, got {y.shape} and {p.shape}"
        )
    if y.size == 0:
        raise ValueError("labels must not be empty, got 0 samples")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be 0 or 1")
    bad = int(np.count_nonzero(~np.isfinite(p)))
    if bad:
        raise ValueError(f"probs must be finite, got {bad} NaN/inf values")
    if p.min() < 0 or p.max() > 1:
        raise ValueError(f"probs must be in [0, 1], got range [{p.min()}, {p.max()}]")
    return y, p


def logloss(labels: np.ndarray, probs: np.ndarray) -> float:
    """Mean binary cross-entropy (natural log); probs clipped to [EPS, 1 - EPS]."""
    y, p = _check(labels, probs)
    p = np.clip(p, EPS, 1 - EPS)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def auc(labels: np.ndarray, probs: np.ndarray) -> float:
    """ROC AUC (scikit-learn). NaN when labels hold a single class: AUC is undefined there."""
    y, p = _check(labels, probs)
    if y.min() == y.max():
        return math.nan
    return float(roc_auc_score(y, p))


def accuracy(labels: np.ndarray, probs: np.ndarray, threshold: float = 0.5) -> float:
    """Fraction of samples where (prob > threshold) equals the label."""
    y, p = _check(labels, probs)
    return float(np.mean((p > threshold) == (y == 1)))


def binary_entropy(rate: float) -> float:
    """H(rate) = -rate ln(rate) - (1 - rate) ln(1 - rate), for rate in (0, 1)."""
    if not 0.0 < rate < 1.0:
        raise ValueError(f"rate must be in (0, 1) for a non-zero entropy, got {rate}")
    return -rate * math.log(rate) - (1 - rate) * math.log1p(-rate)


def normalized_entropy(labels: np.ndarray, probs: np.ndarray, base_rate: float) -> float:
    """NE = logloss / H(base_rate), base_rate = the training click rate. < 1 beats a constant."""
    return logloss(labels, probs) / binary_entropy(base_rate)


def signal_captured(model_logloss: float, constant_logloss: float, bayes_logloss: float) -> float:
    """(constant - model) / (constant - bayes): 0 for a constant predictor, 1 for the Bayes
    optimum (known on synthetic data with planted click rates)."""
    for name, v in (
        ("model_logloss", model_logloss),
        ("constant_logloss", constant_logloss),
        ("bayes_logloss", bayes_logloss),
    ):
        if not math.isfinite(v):
            raise ValueError(f"{name} must be finite, got {v}")
    if constant_logloss <= bayes_logloss:
        raise ValueError(
            f"constant_logloss must exceed bayes_logloss, got {constant_logloss} <= {bayes_logloss}"
        )
    return (constant_logloss - model_logloss) / (constant_logloss - bayes_logloss)


@dataclass(frozen=True)
class SizeReport:
    """Bytes serving must hold (fp32 weights), see docs/DESIGN.md "size"."""

    embedding_bytes: int  # rows x dim x 4 summed over tables (QR concat tables at D/2)
    mapping_bytes: int  # what the mapper stores to map a raw id (from the mappers)
    dense_bytes: int  # MLP parameters x 4
    total_bytes: int  # the sum of the three
    compression_ratio: float | None  # full model total_bytes / total_bytes; None: no reference


def size_report(
    config: DLRMConfig, mapping_bytes: int, full_total_bytes: int | None = None
) -> SizeReport:
    """Sizes of a model with ``config`` whose mapper stores ``mapping_bytes``."""
    if isinstance(mapping_bytes, bool) or not isinstance(mapping_bytes, int | np.integer):
        raise TypeError(f"mapping_bytes must be an int, got {mapping_bytes!r}")
    if mapping_bytes < 0:
        raise ValueError(f"mapping_bytes must be >= 0, got {mapping_bytes}")
    if full_total_bytes is not None and full_total_bytes <= 0:
        raise ValueError(f"full_total_bytes must be a positive int, got {full_total_bytes}")
    emb, dense = embedding_bytes(config), dense_bytes(config)
    total = emb + int(mapping_bytes) + dense
    ratio = None if full_total_bytes is None else full_total_bytes / total
    return SizeReport(emb, int(mapping_bytes), dense, total, ratio)
