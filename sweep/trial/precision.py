"""A trained trial scored with its embedding tables stored at lower precision (no training).

After training, each precision of `TrialConfig.precisions` other than fp32 replaces every table
with its read-back at that precision (`mappers.portable.quantize` then `dequantize`: fp16, int8
and int4 row-wise), scores validation and test, and puts the fp32 tables back. The MLPs stay
fp32, and so do mixed features' projections. Its bytes are the tables' at that precision (the
per-row scale and bias included) plus the same map, projection and MLP bytes. Metrics:
`precision.<p>.embedding_bytes`, `.total_bytes`, `.compression_ratio`, `.val_logloss`,
`.val_auc`, `.val_ne`, `.test_logloss`, `.test_auc`, `.test_ne` (and `.test_accuracy`,
`.val_accuracy`). Row-wise schemes quantize each row alone,
so each stored table (a mixed feature's block at its own dim) is quantized alone.
"""

from __future__ import annotations

import numpy as np
import torch

from mappers.portable import PRECISIONS, dequantize, quantize, table_bytes
from models import DLRM, DLRMConfig, SplitBlocks, evaluate

__all__ = ["PRECISIONS", "check_precisions", "precision_metrics", "read_back"]


def check_precisions(precisions: object, where: str) -> tuple[str, ...]:
    """A non-empty tuple of known precisions, fp32 first; else a ValueError naming `where`."""
    if isinstance(precisions, str) or not isinstance(precisions, list | tuple) or not precisions:
        raise ValueError(f"{where} must be a non-empty list of {list(PRECISIONS)}, got "
                         f"{precisions!r}")
    unknown = [p for p in precisions if p not in PRECISIONS]
    if unknown:
        raise ValueError(f"{where}: {unknown} unknown; valid: {list(PRECISIONS)}")
    if "fp32" not in precisions:
        raise ValueError(f"{where} must include fp32 (the model as trained), got "
                         f"{list(precisions)}")
    return tuple(p for p in PRECISIONS if p in precisions)


def read_back(table: np.ndarray, precision: str) -> np.ndarray:
    """A float32 table as it reads back after being stored at `precision`: what a trial scores
    at that precision, and what an export's tables give (`collide export` stores them with the
    same `quantize`)."""
    return dequantize(quantize(table, precision), precision, table.shape[1])


def embedding_bytes_at(config: DLRMConfig, precision: str) -> int:
    """Bytes of all of `config`'s tables stored at `precision`, with the projections of mixed
    features' blocks, which stay fp32 like the MLPs."""
    return (sum(table_bytes(rows, dim, precision) for rows, dim in config.stored_shapes)
            + sum(table_bytes(rows, dim, "fp32") for rows, dim in config.projection_shapes))


def precision_metrics(model: DLRM, config: DLRMConfig, precisions: tuple[str, ...],
                      splits: dict[str, SplitBlocks], base_rate: float, batch_size: int,
                      other_bytes: int, full_total_bytes: int | None) -> dict[str, float]:
    """`precision.<p>.*` for each precision but fp32 (see the module docstring); `splits` maps a
    metric prefix ("val", "test") to its split; `other_bytes` is the map's and the MLPs'."""
    out: dict[str, float] = {}
    weights = model.sparse_arch.stored_tables()  # views: a mixed feature's blocks at their dims
    trained = [w.detach().clone() for w in weights]
    try:
        for precision in precisions:
            if precision == "fp32":
                continue
            with torch.no_grad():
                for weight, kept in zip(weights, trained, strict=True):
                    back = read_back(kept.cpu().numpy(), precision)
                    weight.copy_(torch.from_numpy(back).to(weight.device))
            emb = embedding_bytes_at(config, precision)
            total = emb + other_bytes
            key = f"precision.{precision}."
            out.update({key + "embedding_bytes": emb, key + "total_bytes": total})
            if full_total_bytes is not None:
                out[key + "compression_ratio"] = full_total_bytes / total
            for prefix, split in splits.items():
                out.update({key + k: v for k, v in evaluate(model, split, base_rate, batch_size,
                                                            prefix).items()})
    finally:
        with torch.no_grad():
            for weight, kept in zip(weights, trained, strict=True):
                weight.copy_(kept)
    return out
