"""The probe: a small-dim DLRM with full tables, trained to embed every known id.

Learning to Collide (Ghaemmaghami et al., 2022, arXiv 2203.15837) maps ids to rows by
their similarity in a learned low-dimensional embedding. The probe learns that embedding:
a DLRM with one row per training-vocabulary id (plus an out-of-vocabulary row) and a small
embedding dim, fitted on the training split only. Its table rows, in vocabulary order,
are what the ``embedding`` / ``frequency_embedding`` mappers cluster. Caching the result
on disk is the caller's job; ``probe_fingerprint`` gives stable key material for it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from models.batch import EncodedSplit
from models.config import DLRMConfig, FeatureSpec
from models.stream import SplitBlocks
from models.train import TrainConfig
from models.train import train as train_dlrm

PROBE_FORMAT = 2  # bump when a change to the probe changes its output for the same inputs


@dataclass(frozen=True)
class ProbeConfig:
    """The probe: a small DLRM whose tables give every known id a low-dim embedding. Each
    field's `help` is what `collide train --help` shows (as --probe-*)."""

    dim: int = field(default=8, metadata={
        "help": "embedding dim of the probe, the dimension the learned maps cluster in"})
    epochs: int = field(default=2, metadata={"help": "passes over the training split"})
    lr: float = field(default=1e-3, metadata={"help": "learning rate (tables and MLPs)"})
    batch_size: int = field(default=2048, metadata={"help": "samples per optimizer step"})
    seed: int = field(default=0, metadata={"help": "init and shuffling"})
    bottom_mlp: tuple[int, ...] = field(default=(32,), metadata={"help": "hidden widths of the "
                                                                         "probe's bottom MLP"})
    top_mlp: tuple[int, ...] = field(default=(32,), metadata={"help": "hidden widths of the "
                                                                      "probe's top MLP"})
    interaction: str = field(default="dot", metadata={"help": "'dot' or 'cat', as the DLRM's"})
    optimizer: str = field(default="adam", metadata={"help": "as the trainer's"})
    device: str = field(default="cpu", metadata={"help": "'cpu', 'cuda' or 'auto'"})
    num_threads: int | None = field(default=None, metadata={
        "help": "torch threads; None: leave torch's setting"})
    max_rows: int | None = field(default=None, metadata={
        "help": "train the probe on a seeded sample of about this many training rows (the "
                "validation rows it reports on are sampled alike); None: every row. A sample "
                "saves probe time and costs the learned maps quality (benchmarks/README.md)"})

    def __post_init__(self) -> None:
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim <= 0:
            raise ValueError(f"dim must be a positive int, got {self.dim!r}")
        if self.max_rows is not None and (isinstance(self.max_rows, bool)
                                          or not isinstance(self.max_rows, int)
                                          or self.max_rows <= 0):
            raise ValueError(f"max_rows must be None or a positive int, got {self.max_rows!r}")
        self.train_config()  # validates the training fields with TrainConfig's messages

    def train_config(self) -> TrainConfig:
        return TrainConfig(
            batch_size=self.batch_size,
            epochs=self.epochs,
            lr=self.lr,
            optimizer=self.optimizer,
            device=self.device,
            seed=self.seed,
            num_threads=self.num_threads,
            early_stopping_patience=None,  # val only monitors the probe; it never selects weights
        )


def probe_fingerprint(config: ProbeConfig) -> dict:
    """Stable, JSON-able description of the probe: combine with a data fingerprint to cache."""
    return {"probe_format": PROBE_FORMAT, **asdict(config)}


def train_probe(
    config: ProbeConfig,
    num_dense: int,
    feature_specs_full: tuple[FeatureSpec, ...] | list[FeatureSpec],
    train: EncodedSplit | SplitBlocks,
    val: EncodedSplit | SplitBlocks | None = None,
) -> list[np.ndarray]:
    """Per feature, float32 [vocab_size, dim]: row i embeds the i-th id of the sorted vocabulary.

    Each spec must be one plain table of vocab_size + 1 rows (row i = i-th vocabulary id,
    the last row = unseen ids); the OOV row is dropped from the result. Only
    ``train`` is fitted; ``val`` is only evaluated and logged per epoch. ``max_rows`` is the
    caller's to apply (it samples the rows it hands in).
    """
    specs = tuple(feature_specs_full)
    for spec in specs:
        if spec.combine != "none" or spec.table_sizes[0] < 2:
            raise ValueError(
                f"probe features need one full table of vocab_size + 1 >= 2 rows, got "
                f"{spec.name!r} with combine={spec.combine!r}, table_sizes={spec.table_sizes}"
            )
    model_config = DLRMConfig(
        num_dense=num_dense,
        features=specs,
        embedding_dim=config.dim,
        bottom_mlp=config.bottom_mlp,
        top_mlp=config.top_mlp,
        interaction=config.interaction,
    )
    result = train_dlrm(model_config, config.train_config(), train, val)
    tables = result.model.sparse_arch.table_weights()
    return [w[:-1].detach().cpu().numpy().copy() for w in tables]
