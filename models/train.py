"""Train a DLRM on encoded arrays: one readable loop, seeded, with per-epoch validation.

Optimizers (``TrainConfig.optimizer``); the tables always get a sparse-gradient optimizer,
so a step touches only the rows (and optimizer state) of the ids in the batch:

- ``"adam"`` (default): lazy Adam on the tables (``models.optim.RowSparseAdam``: the math of
  ``torch.optim.SparseAdam`` with index ops on the batch's unique rows), fused ``Adam`` on
  the MLPs, both at ``lr`` = 1e-3. Chosen by measurement on the default synthetic data
  (benchmarks/README.md, "Training throughput", and benchmarks/optimizer_quality.py): it reached the
  best validation logloss; sparse Adagrad was a little faster per step but peaked lower, and
  SGD with DLRM's small table init needed far more epochs. Cost of Adam: two moment tensors
  per table (3x table memory in training; serving size is unaffected).
- ``"sparse_adam_torch"``: ``torch.optim.SparseAdam`` on the tables: the same updates as
  ``"adam"``, slower; the reference that ``benchmarks/train_throughput.py`` and the tests
  compare against.
- ``"adagrad"``: sparse ``Adagrad`` on the tables, fused ``Adam`` on the MLPs.
- ``"sgd"``: plain SGD everywhere, as the reference DLRM.

``embedding_lr`` overrides the tables' learning rate (None: ``lr``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models import metrics
from models.batch import EncodedSplit, FusedSplit
from models.config import DLRMConfig
from models.dlrm import DLRM
from models.optim import RowSparseAdam

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sparse_adam_torch", "adagrad", "sgd")
DEVICES = ("cpu", "cuda", "auto")


class NonFiniteLossError(RuntimeError):
    """The training loss (or a prediction) became NaN or inf."""


@dataclass(frozen=True)
class TrainConfig:
    """How one DLRM is trained. Each field's `help` is what `collide train --help` shows."""

    batch_size: int = field(default=2048, metadata={"help": "samples per optimizer step"})
    epochs: int = field(default=3, metadata={"help": "passes over the training split"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate of the MLPs"})
    embedding_lr: float | None = field(default=None, metadata={
        "help": "learning rate of the tables; None: the same as lr"})
    optimizer: str = field(default="adam", metadata={
        "help": "'adam', 'sparse_adam_torch', 'adagrad' or 'sgd' (see models/train.py)"})
    device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'auto' (cuda if "
                                                         "available)"})
    seed: int = field(default=0, metadata={"help": "model init and shuffling"})
    # the best epoch's weights are restored, so test metrics belong to the model val selected
    early_stopping_patience: int | None = field(default=1, metadata={
        "help": "stop after this many epochs without a val logloss gain and keep the best epoch's "
                "weights; None: train every epoch"})
    num_threads: int | None = field(default=None, metadata={
        "help": "torch intra-op threads; None: leave torch's setting"})
    eval_batch_size: int = field(default=16384, metadata={"help": "samples per forward pass when "
                                                                  "evaluating"})

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "eval_batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("lr", "embedding_lr"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite float, got {v!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        for name in ("early_stopping_patience", "num_threads"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v <= 0):
                raise ValueError(f"{name} must be None or a positive int, got {v!r}")


@dataclass
class TrainResult:
    model: DLRM  # trained (with early stopping: the best epoch's weights)
    history: list[dict[str, float]]  # one dict per epoch, see ``train``
    test_metrics: dict[str, float] | None  # test_logloss, test_auc, test_ne, test_accuracy
    best_epoch: int  # epoch with the lowest val logloss (the last epoch without val)
    stopped_early: bool = False
    base_rate: float = field(default=math.nan)  # training click rate, the NE reference
    # float32 [N_test], the returned model's predictions on test
    test_probs: np.ndarray | None = None


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device='cuda' was requested but torch sees no CUDA device")
    return torch.device(name)


def make_optimizers(model: DLRM, config: TrainConfig) -> list[torch.optim.Optimizer]:
    """One optimizer for the sparse tables and one for the MLPs (see module docstring)."""
    emb, dense = model.embedding_parameters(), model.dense_parameters()
    emb_lr = config.embedding_lr if config.embedding_lr is not None else config.lr
    if config.optimizer == "sgd":
        return [torch.optim.SGD(emb, lr=emb_lr), torch.optim.SGD(dense, lr=config.lr)]
    # fused Adam: one kernel over all MLP tensors, ~4x faster than the default on CPU
    dense_opt = torch.optim.Adam(dense, lr=config.lr, fused=True)
    if config.optimizer == "adam":
        return [RowSparseAdam(emb, lr=emb_lr), dense_opt]
    if config.optimizer == "sparse_adam_torch":
        return [torch.optim.SparseAdam(emb, lr=emb_lr), dense_opt]
    return [torch.optim.Adagrad(emb, lr=emb_lr), dense_opt]


@torch.inference_mode()
def _predict(model: DLRM, data: FusedSplit, batch_size: int) -> np.ndarray:
    model.eval()
    probs = np.empty(data.num_samples, dtype=np.float32)
    for start in range(0, data.num_samples, batch_size):
        stop = min(start + batch_size, data.num_samples)
        batch = data.batch(torch.arange(start, stop, device=data.labels.device))
        probs[start:stop] = torch.sigmoid(model(batch.dense, batch.lookups)).cpu().numpy()
    return probs


def predict_proba(model: DLRM, split: EncodedSplit, batch_size: int = 16384) -> np.ndarray:
    """Click probabilities float32 [N] of a trained model on a split."""
    device = next(model.parameters()).device
    return _predict(model, FusedSplit(split, model.layout, device), batch_size)


def evaluate(
    model: DLRM, data: FusedSplit, base_rate: float, batch_size: int, prefix: str
) -> dict[str, float]:
    """{prefix}_logloss, _auc, _ne, _accuracy on one split."""
    return score(data.labels.cpu().numpy(), _predict(model, data, batch_size), base_rate, prefix)


def score(labels: np.ndarray, probs: np.ndarray, base_rate: float, prefix: str) -> dict[str, float]:
    """{prefix}_logloss, _auc, _ne, _accuracy of predicted click probabilities against labels."""
    if not np.isfinite(probs).all():
        raise NonFiniteLossError(f"model predicts non-finite probabilities on the {prefix} split")
    auc = metrics.auc(labels, probs)
    if math.isnan(auc):
        logger.warning("%s labels hold a single class: %s_auc is undefined (NaN)", prefix, prefix)
    return {
        f"{prefix}_logloss": metrics.logloss(labels, probs),
        f"{prefix}_auc": auc,
        f"{prefix}_ne": metrics.normalized_entropy(labels, probs, base_rate),
        f"{prefix}_accuracy": metrics.accuracy(labels, probs),
    }


def _check_finite(losses: Tensor, first: int, last: int, epoch: int) -> None:
    """Raise NonFiniteLossError naming the first step in [first, last] with a bad loss."""
    bad = ~torch.isfinite(losses[first : last + 1])
    if bool(bad.any()):
        step = first + int(bad.nonzero()[0, 0])
        raise NonFiniteLossError(
            f"training loss became {losses[step].item()} at epoch {epoch}, step {step}; "
            "lower lr or check the inputs for NaN/inf"
        )


def _train_epoch(
    model: DLRM,
    data: FusedSplit,
    optimizers: list[torch.optim.Optimizer],
    order: Tensor,
    batch_size: int,
    step_losses: Tensor,
    epoch: int,
) -> None:
    """One pass over ``data`` in ``order``; step i's loss goes to ``step_losses[i]``."""
    model.train()
    check_every = 1 if order.device.type == "cpu" else 64  # a check syncs with the device
    checked = 0
    num_steps = len(step_losses)
    # explicit opt-out of sparse invariant checks (else torch warns at the first sparse step)
    with torch.sparse.check_sparse_tensor_invariants(enable=False):
        for step in range(num_steps):
            batch = data.batch(order[step * batch_size : (step + 1) * batch_size])
            logits = model(batch.dense, batch.lookups)  # (B,)
            loss = F.binary_cross_entropy_with_logits(logits, batch.labels)
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            loss.backward()
            for opt in optimizers:
                opt.step()
            step_losses[step] = loss.detach()
            if (step + 1) % check_every == 0 or step == num_steps - 1:
                _check_finite(step_losses, checked, step, epoch)
                checked = step + 1


@contextmanager
def _torch_threads(num_threads: int | None) -> Iterator[None]:
    """Set torch's intra-op threads for a block (None: leave as is), then restore them."""
    previous = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class _EarlyStopping:
    """Tracks the best val logloss; with a patience, keeps a copy of the best weights."""

    def __init__(self, patience: int | None):
        self.patience, self.best_loss, self.best_epoch, self.stale = patience, math.inf, 0, 0
        self.best_state: dict[str, Tensor] | None = None

    def should_stop(self, epoch: int, val_logloss: float, model: DLRM) -> bool:
        if val_logloss < self.best_loss:
            self.best_loss, self.best_epoch, self.stale = val_logloss, epoch, 0
            if self.patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def restore_best(self, model: DLRM, last_epoch: int) -> None:
        if self.best_state is not None and self.best_epoch != last_epoch:
            model.load_state_dict(self.best_state)
            logger.info("restored the weights of epoch %d (best val logloss)", self.best_epoch)


def _format(metrics_: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.5g}" for k, v in metrics_.items() if k != "epoch")


def train(
    model_config: DLRMConfig,
    train_config: TrainConfig,
    train: EncodedSplit,
    val: EncodedSplit | None,
    test: EncodedSplit | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
) -> TrainResult:
    """Train DLRM(model_config) on ``train``; validate on ``val`` after every epoch.

    History entries hold epoch, train_loss, epoch_seconds (training + validation),
    samples_per_second (training samples per second of training time) and, with ``val``,
    val_logloss, val_auc, val_ne (against the training click rate), val_accuracy.
    ``on_epoch(epoch, entry)`` is called after each epoch's validation; the epoch is logged
    at INFO only without it (at DEBUG with it: the caller shows it). Early stopping
    (on val logloss, restoring the best weights) works on ``val``; without ``val`` every
    epoch runs and the last weights are kept.
    """
    cfg = train_config
    if val is None:
        cfg = replace(cfg, early_stopping_patience=None)  # nothing to select on
    for name, split in (("train", train), ("val", val), ("test", test)):
        if split is not None and split.num_samples == 0:
            raise ValueError(f"{name} split must not be empty, got 0 samples")
    base_rate = float(np.mean(train.labels, dtype=np.float64))
    if not 0.0 < base_rate < 1.0:
        raise ValueError(
            f"train labels must hold both classes (for NE), got click rate {base_rate}"
        )
    device = resolve_device(cfg.device)
    with _torch_threads(cfg.num_threads):
        with torch.random.fork_rng(devices=[]):  # seed the init without touching global state
            torch.manual_seed(cfg.seed)
            model = DLRM(model_config).to(device)
        splits = {"train": train, "val": val, "test": test}
        data = {k: FusedSplit(s, model.layout, device) for k, s in splits.items() if s is not None}
        optimizers = make_optimizers(model, cfg)
        generator = torch.Generator().manual_seed(cfg.seed)
        n, bs = train.num_samples, cfg.batch_size
        num_steps = (n + bs - 1) // bs
        step_losses = torch.empty(num_steps, device=device)
        step_sizes = torch.full((num_steps,), float(bs), device=device)
        step_sizes[-1] = n - bs * (num_steps - 1)
        stopper = _EarlyStopping(cfg.early_stopping_patience)
        history: list[dict[str, float]] = []
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            order = torch.randperm(n, generator=generator).to(device)
            _train_epoch(model, data["train"], optimizers, order, bs, step_losses, epoch)
            train_seconds = time.perf_counter() - t0
            entry = {"epoch": epoch, "train_loss": float((step_losses * step_sizes).sum()) / n}
            if val is not None:
                entry.update(evaluate(model, data["val"], base_rate, cfg.eval_batch_size, "val"))
            entry["epoch_seconds"] = time.perf_counter() - t0
            entry["samples_per_second"] = n / train_seconds
            history.append(entry)
            # a caller that takes the epoch shows it; logging it too printed each epoch twice
            logger.log(logging.DEBUG if on_epoch else logging.INFO, "epoch %d: %s", epoch,
                       _format(entry))
            if on_epoch is not None:
                on_epoch(epoch, dict(entry))
            if val is not None and stopper.should_stop(epoch, entry["val_logloss"], model):
                break
        last_epoch = len(history)
        stopper.restore_best(model, last_epoch)
        test_metrics = test_probs = None
        if test is not None:
            test_probs = _predict(model, data["test"], cfg.eval_batch_size)
            test_metrics = score(data["test"].labels.cpu().numpy(), test_probs, base_rate, "test")
            logger.info("test: %s", _format(test_metrics))
    best_epoch = last_epoch if val is None else stopper.best_epoch
    return TrainResult(model, history, test_metrics, best_epoch, last_epoch < cfg.epochs, base_rate,
                       test_probs)
