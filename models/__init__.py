"""DLRM, the probe, the training loop, metrics and size accounting. torch only; arrays (or
blocks of them: models.stream) in."""

from __future__ import annotations

from models.batch import Batch, EncodedSplit, FusedSplit, GroupLookup
from models.config import (
    DLRMConfig,
    FeatureSpec,
    dense_bytes,
    dense_param_count,
    embedding_bytes,
)
from models.dlrm import DLRM, DenseArch, InteractionArch, OverArch, SparseArch
from models.layout import TableLayout
from models.metrics import (
    SizeReport,
    accuracy,
    auc,
    binary_entropy,
    logloss,
    normalized_entropy,
    signal_captured,
    size_report,
)
from models.probe import ProbeConfig, probe_fingerprint, train_probe
from models.stream import InMemoryBlocks, SplitBlocks, as_blocks, concat_splits, epoch_windows
from models.train import (
    NonFiniteLossError,
    TrainConfig,
    TrainResult,
    evaluate,
    evaluations_per_epoch,
    predict_proba,
    resolve_device,
    score,
    train,
)

__all__ = [
    "DLRM",
    "Batch",
    "DLRMConfig",
    "DenseArch",
    "EncodedSplit",
    "FeatureSpec",
    "FusedSplit",
    "GroupLookup",
    "InteractionArch",
    "NonFiniteLossError",
    "OverArch",
    "ProbeConfig",
    "SizeReport",
    "SparseArch",
    "TableLayout",
    "TrainConfig",
    "TrainResult",
    "accuracy",
    "auc",
    "binary_entropy",
    "dense_bytes",
    "dense_param_count",
    "embedding_bytes",
    "evaluate",
    "evaluations_per_epoch",
    "InMemoryBlocks",
    "SplitBlocks",
    "as_blocks",
    "concat_splits",
    "epoch_windows",
    "logloss",
    "normalized_entropy",
    "predict_proba",
    "resolve_device",
    "probe_fingerprint",
    "score",
    "signal_captured",
    "size_report",
    "train",
    "train_probe",
]
