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
- ``"rowwise_adagrad"``: row-wise Adagrad on the tables (``models.optim.RowWiseAdagrad``,
  FBGEMM's ``EXACT_ROWWISE_ADAGRAD``: one accumulator per row, a third of Adam's state
  traffic), fused ``Adam`` on the MLPs. Its tables want a larger rate than Adam's:
  ``embedding_lr`` 0.003 matched ``adam``'s validation logloss (benchmarks/README.md, "Issue
  26"); at the shared default 1e-3 it learns the tables slowly.
- ``"adagrad"``: sparse ``Adagrad`` on the tables, fused ``Adam`` on the MLPs.
- ``"sgd"``: plain SGD everywhere, as the reference DLRM.

``embedding_lr`` overrides the tables' learning rate (None: ``lr``).

With ``gather_unique``, training lookups of single-valued tables gather each distinct row of
a batch once (``models.dlrm.unique_lookup``): the same math, and the tables' gradient has one
sorted row per distinct row, so the table optimizers skip their own sort-and-sum. It is off by
default: on the CPU the sort only moved from the optimizer to the lookup, and the expansion
cost more than the saved gathers (benchmarks/README.md, "Issue 26").
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from models import metrics
from models.batch import EncodedSplit, FusedSplit
from models.config import DLRMConfig, embedding_init_bound
from models.dlrm import DLRM
from models.online import OnlineMaps, reset_rows
from models.optim import RowSparseAdam, RowWiseAdagrad
from models.stream import SplitBlocks, as_blocks, shuffled_windows

logger = logging.getLogger(__name__)

OPTIMIZERS = ("adam", "sparse_adam_torch", "rowwise_adagrad", "adagrad", "sgd")
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
        "help": "'adam', 'sparse_adam_torch', 'rowwise_adagrad', 'adagrad' or 'sgd' (see "
                "models/train.py)"})
    gather_unique: bool = field(default=False, metadata={
        "help": "training lookups gather each distinct row of a batch once and the tables' "
                "gradient has one row per distinct row (the same math; models.dlrm."
                "unique_lookup); off by default: on the CPU it was no faster "
                "(benchmarks/README.md, Issue 26)"})
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
    # scored between epochs for a scheduler (ASHA) that should not wait for a whole epoch
    eval_every_rows: int | None = field(default=None, metadata={
        "help": "also score validation every this many training rows within an epoch (on a fixed "
                "sample of eval_sample_rows validation rows) and report it; None: once per epoch"})
    eval_sample_rows: int = field(default=100_000, metadata={
        "help": "validation rows scored at each eval_every_rows point: a seeded sample of the "
                "validation split, all of it when smaller"})

    def __post_init__(self) -> None:
        for name in ("batch_size", "epochs", "eval_batch_size", "eval_sample_rows"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        for name in ("lr", "embedding_lr"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v > 0):
                raise ValueError(f"{name} must be a positive finite float, got {v!r}")
        if not isinstance(self.gather_unique, bool):
            raise ValueError(f"gather_unique must be true or false, got {self.gather_unique!r}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {DEVICES}, got {self.device!r}")
        for name in ("early_stopping_patience", "num_threads", "eval_every_rows"):
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
    rows_reinitialised: int = 0  # rows the online maps' updates gave to another id


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
    if config.optimizer == "rowwise_adagrad":
        return [RowWiseAdagrad(emb, lr=emb_lr), dense_opt]
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


def _predict_blocks(model: DLRM, split: SplitBlocks,
                    batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(labels, click probabilities), float32 [N] each, of a split read a block at a time."""
    device = next(model.parameters()).device
    labels, probs = [], []
    for index in range(split.num_blocks):
        part = split.block(index)
        probs.append(_predict(model, FusedSplit(part, model.layout, device), batch_size))
        labels.append(np.asarray(part.labels, dtype=np.float32))
    empty = np.empty(0, dtype=np.float32)
    return (np.concatenate(labels) if labels else empty), (np.concatenate(probs) if probs
                                                            else empty)


def predict_proba(model: DLRM, split: EncodedSplit | SplitBlocks,
                  batch_size: int = 16384) -> np.ndarray:
    """Click probabilities float32 [N] of a trained model on a split."""
    return _predict_blocks(model, as_blocks(split), batch_size)[1]


def evaluate(model: DLRM, split: EncodedSplit | SplitBlocks, base_rate: float, batch_size: int,
             prefix: str) -> dict[str, float]:
    """{prefix}_logloss, _auc, _ne, _accuracy on one split."""
    return score(*_predict_blocks(model, as_blocks(split), batch_size), base_rate, prefix)


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


def _check_finite(losses: Tensor, first: int, last: int, epoch: int, offset: int = 0) -> None:
    """Raise NonFiniteLossError naming the first step in [first, last] with a bad loss (steps
    counted from `offset` in the epoch)."""
    bad = ~torch.isfinite(losses[first : last + 1])
    if bool(bad.any()):
        step = first + int(bad.nonzero()[0, 0])
        raise NonFiniteLossError(
            f"training loss became {losses[step].item()} at epoch {epoch}, step {offset + step}; "
            "lower lr or check the inputs for NaN/inf"
        )


class _Epoch:
    """One pass over the training split in this epoch's shuffled windows (models.stream)."""

    def __init__(self, model: DLRM, optimizers: list[torch.optim.Optimizer], cfg: TrainConfig,
                 device: torch.device, generator: torch.Generator,
                 build_threads: int | None = None):
        self.model, self.optimizers, self.cfg = model, optimizers, cfg
        self.device, self.generator = device, generator
        self.check_every = 1 if device.type == "cpu" else 64  # a check syncs with the device
        # the next windows are built by background threads while this one trains: on CUDA, where
        # the host would otherwise leave the GPU idle while it builds a window; not on the CPU,
        # where the threads would take the cores the training uses
        self.build_threads = (default_build_threads(device) if build_threads is None
                              else build_threads)
        self.online = model.sparse_arch.online  # managed tables' maps (models/online.py)
        self.batches = 0  # training batches so far, all epochs
        self.reinitialised = 0  # rows re-initialised by the online maps' updates
        self.reinit_generator = torch.Generator().manual_seed(cfg.seed + 0x6D6368)

    def _windows(self, train: SplitBlocks) -> Iterator[tuple[FusedSplit, Tensor]]:
        """(the window's fused rows, the order to visit them) on the training device."""
        layout, cuda = self.model.layout, self.device.type == "cuda"

        def build(rows: EncodedSplit) -> FusedSplit:
            data = FusedSplit(rows, layout)
            # pinned, so that the copy below runs without blocking the host
            return data.moved(Tensor.pin_memory) if cuda else data

        windows = shuffled_windows(train, self.generator, build=build, threads=self.build_threads)
        try:
            for data, order in windows:
                if cuda:
                    yield (data.moved(lambda t: t.to(self.device, non_blocking=True)),
                           order.pin_memory().to(self.device, non_blocking=True))
                else:
                    yield data, order
        finally:
            windows.close()  # stops and joins the threads that build windows ahead

    def run(self, train: SplitBlocks, epoch: int,
            on_rows: Callable[[int], None] | None = None) -> float:
        """Train one epoch; returns the mean training loss. `on_rows(rows)` is called after
        each batch with the rows trained so far this epoch, and leaves the model in training
        mode."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        rows = step = 0
        # closed on the way out, an error included: the prefetching thread ends with the epoch
        with closing(self._windows(train)) as windows:
            for data, order in windows:
                sizes = [min(self.cfg.batch_size, data.num_samples - start)
                         for start in range(0, data.num_samples, self.cfg.batch_size)]
                losses = torch.empty(len(sizes), device=self.device)
                checked = 0
                # explicit opt-out of sparse invariant checks (else torch warns at the first sparse
                # step)
                with torch.sparse.check_sparse_tensor_invariants(enable=False):
                    for k, size in enumerate(sizes):
                        start = k * self.cfg.batch_size
                        losses[k] = self._step(data.batch(order[start:start + size]))
                        self.batches += 1
                        if self.online is not None and self.batches % self.online.remap_every == 0:
                            self._remap()
                        if (k + 1) % self.check_every == 0 or k == len(sizes) - 1:
                            _check_finite(losses, checked, k, epoch, step)
                            checked = k + 1
                        rows += size
                        if on_rows is not None:
                            on_rows(rows)
                loss_sum += (losses * torch.tensor(sizes, dtype=losses.dtype,
                                                   device=self.device)).sum()
                step += len(sizes)
        return float(loss_sum) / max(rows, 1)

    @torch.no_grad()
    def _remap(self) -> None:
        """Apply the online maps' update: each row that changed id starts as a new row
        (models/online.py)."""
        weight = self.model.sparse_arch.weights[0]
        layout = self.model.layout
        for t, rows in zip(self.online.tables, self.online.update(), strict=True):
            if len(rows) == 0:
                continue
            place = layout.tables[t]
            index = torch.from_numpy(np.asarray(rows, dtype=np.int64) + place.row_offset)
            bound = embedding_init_bound(place.num_rows)
            fresh = torch.empty(len(rows), weight.shape[1]).uniform_(
                -bound, bound, generator=self.reinit_generator)
            index = index.to(weight.device)
            weight.index_copy_(0, index, fresh.to(weight.device))
            reset_rows(self.optimizers[0], weight, index)
            self.reinitialised += len(rows)

    def _step(self, batch) -> Tensor:
        logits = self.model(batch.dense, batch.lookups)  # (B,)
        loss = F.binary_cross_entropy_with_logits(logits, batch.labels)
        for opt in self.optimizers:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.optimizers:
            opt.step()
        return loss.detach()


def default_build_threads(device: torch.device) -> int:
    """Threads that build shuffle windows ahead of training by default: on CUDA one per CPU
    torch may use, at most 4 (a window's build is numpy work that releases the GIL); on the CPU
    none (windows are built in line)."""
    return min(4, max(1, torch.get_num_threads())) if device.type == "cuda" else 0


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
        self.best_maps: object = None  # the online maps' state with the best weights

    def should_stop(self, epoch: int, val_logloss: float, model: DLRM) -> bool:
        if val_logloss < self.best_loss:
            self.best_loss, self.best_epoch, self.stale = val_logloss, epoch, 0
            if self.patience is not None:
                self.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                online = model.sparse_arch.online
                self.best_maps = None if online is None else online.state()
            return False
        self.stale += 1
        return self.patience is not None and self.stale >= self.patience

    def restore_best(self, model: DLRM, last_epoch: int) -> None:
        if self.best_state is not None and self.best_epoch != last_epoch:
            model.load_state_dict(self.best_state)
            if self.best_maps is not None:
                model.sparse_arch.online.restore(self.best_maps)
            logger.info("restored the weights of epoch %d (best val logloss)", self.best_epoch)


def _format(metrics_: dict[str, float]) -> str:
    return ", ".join(f"{k}={v:.5g}" for k, v in metrics_.items() if k != "epoch")


def train(
    model_config: DLRMConfig,
    train_config: TrainConfig,
    train: EncodedSplit | SplitBlocks,
    val: EncodedSplit | SplitBlocks | None,
    test: EncodedSplit | SplitBlocks | None = None,
    on_epoch: Callable[[int, dict[str, float]], None] | None = None,
    *,
    val_sample: EncodedSplit | SplitBlocks | None = None,
    on_eval: Callable[[int, dict[str, float]], None] | None = None,
    online: OnlineMaps | None = None,
    build_threads: int | None = None,
) -> TrainResult:
    """Train DLRM(model_config) on ``train``; validate on ``val`` after every epoch.

    Each split is an EncodedSplit or a SplitBlocks (read a block at a time: models.stream,
    which also documents the shuffle). History entries hold epoch, train_loss, epoch_seconds
    (training + validation), samples_per_second (training samples per second of training
    time) and, with ``val``, val_logloss, val_auc, val_ne (against the training click rate),
    val_accuracy. ``on_epoch(epoch, entry)`` is called after each epoch's validation; the
    epoch is logged at INFO only without it (at DEBUG with it: the caller shows it). Early
    stopping (on val logloss, restoring the best weights) works on ``val``; without ``val``
    every epoch runs and the last weights are kept.

    With ``eval_every_rows`` N, ``on_eval(epoch, entry)`` is also called every N training
    rows within an epoch (not at its end, which ``on_epoch`` covers), with rows_trained (since
    the first epoch) and the val_* metrics of ``val_sample`` (default: ``val``).

    ``online``: the maps of the config's managed tables (models/online.py), whose splits hold
    raw ids; they are updated every ``online.remap_every`` training batches.

    ``build_threads``: background threads that read and build the next shuffle windows while
    the model trains on this one (0: built in line; None: ``default_build_threads``, which is
    up to 4 on CUDA and 0 on the CPU). The training is the same whatever the number.
    """
    cfg = train_config
    if val is None:
        cfg = replace(cfg, early_stopping_patience=None)  # nothing to select on
    train = as_blocks(train)
    val = None if val is None else as_blocks(val)
    test = None if test is None else as_blocks(test)
    sample = val if val_sample is None else as_blocks(val_sample)
    for name, split in (("train", train), ("val", val), ("test", test)):
        if split is not None and split.num_samples == 0:
            raise ValueError(f"{name} split must not be empty, got 0 samples")
    if cfg.eval_every_rows is not None and sample is None:
        raise ValueError("eval_every_rows needs a validation split to score")
    base_rate = train.click_rate()
    if not 0.0 < base_rate < 1.0:
        raise ValueError(
            f"train labels must hold both classes (for NE), got click rate {base_rate}"
        )
    device = resolve_device(cfg.device)
    with _torch_threads(cfg.num_threads):
        with torch.random.fork_rng(devices=[]):  # seed the init without touching global state
            torch.manual_seed(cfg.seed)
            model = DLRM(model_config).to(device)
        model.sparse_arch.gather_unique = cfg.gather_unique
        managed = model.layout.managed
        if (online is None and managed) or (online is not None and tuple(online.tables)
                                            != managed):
            raise ValueError(f"the model's managed tables are {list(managed)}; online maps must "
                             f"be given for exactly those, got "
                             f"{None if online is None else list(online.tables)}")
        model.sparse_arch.online = online
        optimizers = make_optimizers(model, cfg)
        runner = _Epoch(model, optimizers, cfg, device, torch.Generator().manual_seed(cfg.seed),
                        build_threads)
        n = train.num_samples
        stopper = _EarlyStopping(cfg.early_stopping_patience)
        history: list[dict[str, float]] = []
        for epoch in range(1, cfg.epochs + 1):
            t0 = time.perf_counter()
            midway = _Midway(model, sample, cfg, base_rate, epoch, n, on_eval)
            entry = {"epoch": epoch, "train_loss": runner.run(train, epoch, midway.after)}
            train_seconds = time.perf_counter() - t0 - midway.seconds
            if val is not None:
                entry.update(evaluate(model, val, base_rate, cfg.eval_batch_size, "val"))
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
            test_labels, test_probs = _predict_blocks(model, test, cfg.eval_batch_size)
            test_metrics = score(test_labels, test_probs, base_rate, "test")
            logger.info("test: %s", _format(test_metrics))
    best_epoch = last_epoch if val is None else stopper.best_epoch
    return TrainResult(model, history, test_metrics, best_epoch, last_epoch < cfg.epochs, base_rate,
                       test_probs, runner.reinitialised)


class _Midway:
    """The evaluations within one epoch, every `eval_every_rows` training rows."""

    def __init__(self, model: DLRM, sample: SplitBlocks | None, cfg: TrainConfig,
                 base_rate: float, epoch: int, rows_per_epoch: int,
                 on_eval: Callable[[int, dict[str, float]], None] | None):
        self.model, self.sample, self.cfg, self.base_rate = model, sample, cfg, base_rate
        self.epoch, self.rows_per_epoch, self.on_eval = epoch, rows_per_epoch, on_eval
        self.every = cfg.eval_every_rows
        self.next = self.every
        self.seconds = 0.0  # spent evaluating, not training

    @property
    def after(self) -> Callable[[int], None] | None:
        return self._after if self.every is not None and self.on_eval is not None else None

    def _after(self, rows: int) -> None:
        if rows < self.next or rows >= self.rows_per_epoch:
            return
        while self.next <= rows:
            self.next += self.every
        started = time.perf_counter()
        entry = {"epoch": self.epoch,
                 "rows_trained": (self.epoch - 1) * self.rows_per_epoch + rows,
                 **evaluate(self.model, self.sample, self.base_rate, self.cfg.eval_batch_size,
                            "val")}
        self.model.train()  # evaluating left it in eval mode, mid-epoch
        self.seconds += time.perf_counter() - started
        self.on_eval(self.epoch, entry)


def evaluations_per_epoch(rows_per_epoch: int, eval_every_rows: int | None) -> int:
    """How many times `on_eval` is called in one epoch of `rows_per_epoch` rows (none at its
    end). Exact for batches that end on every multiple of eval_every_rows; else an upper
    bound (two thresholds within one batch give one evaluation)."""
    if eval_every_rows is None:
        return 0
    return (rows_per_epoch - 1) // eval_every_rows
