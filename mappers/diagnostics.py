"""Collision diagnostics of a fitted mapping over the training vocabulary.

`collision_stats(rows, ids, counts, clusters=None, table_sizes=None)` takes the rows a mapper
gives the training ids (one int array aligned with ids, or a tuple of per-table arrays, whose
combination is treated as one key: two ids collide only if they share every table's row).
With the mapper's `table_sizes` it also says how much of the tables training never touches.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _row_keys(rows: Any, n: int) -> np.ndarray:
    """Dense int64 key in [0, distinct rows) per id; tuples are combined into one key."""
    parts = list(rows) if isinstance(rows, tuple | list) else [rows]
    if not parts:
        raise ValueError("rows must be an int array or a non-empty tuple of int arrays")
    arrays = [np.asarray(p) for p in parts]
    for a in arrays:
        if a.dtype.kind not in "iu" or a.shape != (n,):
            raise ValueError(
                f"rows must be int arrays aligned with ids (shape ({n},)), "
                f"got dtype {a.dtype} shape {a.shape}"
            )
    key = np.zeros(n, dtype=np.int64)
    for a in arrays:  # fold table by table: key = dense(key, a)
        _, a_dense = np.unique(a, return_inverse=True)
        width = int(a_dense.max()) + 1 if n else 1
        _, key = np.unique(key * width + a_dense.reshape(-1), return_inverse=True)
        key = key.reshape(-1).astype(np.int64)
    return key


def collision_stats(
    rows: np.ndarray | tuple[np.ndarray, ...],
    ids: np.ndarray,
    counts: np.ndarray,
    clusters: np.ndarray | None = None,
    table_sizes: tuple[int, ...] | None = None,
) -> dict[str, float | int]:
    """Collision diagnostics (JSON-ready dict) of training ids mapped to `rows`.

    - num_ids, rows_used, max_ids_per_row, mean_ids_per_row (over used rows);
    - collision_rate: the chance that an access (ids weighted by counts) lands in a row
      that some OTHER training id also maps to (unweighted if counts sum to 0);
    - with ground-truth `clusters` (ints aligned with ids): purity (fraction of ids whose
      row's majority cluster is their own) and nmi (sklearn normalized_mutual_info_score
      of rows against clusters);
    - with `table_sizes` (rows per table, aligned with the tables of `rows`): table_rows (their
      sum), rows_hit (the rows of every table some training id maps to) and unused_row_share
      (1 - rows_hit / table_rows: bytes of the table that training never updates).
    """
    ids = np.asarray(ids)
    n = ids.shape[0] if ids.ndim == 1 else -1
    if n < 0:
        raise ValueError(f"ids must be 1-D, got shape {ids.shape}")
    counts = np.asarray(counts, dtype=np.float64)
    if counts.shape != (n,) or (n and counts.min() < 0):
        raise ValueError(f"counts must be >= 0 and aligned with ids ({n},), got {counts.shape}")
    key = _row_keys(rows, n)
    stats: dict[str, float | int] = {"num_ids": n}
    if n == 0:
        stats.update(rows_used=0, max_ids_per_row=0, mean_ids_per_row=0.0, collision_rate=0.0)
    else:
        ids_per_row = np.bincount(key)
        shared = ids_per_row[key] > 1
        weights = counts if counts.sum() > 0 else np.ones(n)
        stats.update(
            rows_used=int(ids_per_row.size),
            max_ids_per_row=int(ids_per_row.max()),
            mean_ids_per_row=float(n / ids_per_row.size),
            collision_rate=float(weights[shared].sum() / weights.sum()),
        )
    if table_sizes is not None:
        tables = list(rows) if isinstance(rows, tuple | list) else [rows]
        if len(tables) != len(table_sizes):
            raise ValueError(f"table_sizes must give one size per table ({len(tables)}), got "
                             f"{table_sizes}")
        hit = sum(int(np.unique(np.asarray(t)).size) for t in tables)
        total = int(sum(table_sizes))
        stats.update(table_rows=total, rows_hit=hit,
                     unused_row_share=float(1.0 - hit / total) if total else 0.0)
    if clusters is not None:
        clusters = np.asarray(clusters)
        if clusters.dtype.kind not in "iu" or clusters.shape != (n,):
            raise ValueError(f"clusters must be ints aligned with ids ({n},), got {clusters.shape}")
        stats.update(purity=_purity(key, clusters), nmi=_nmi(clusters, key))
    return stats


def _purity(key: np.ndarray, clusters: np.ndarray) -> float:
    """Sum over rows of the row's largest cluster count, over the number of ids."""
    if key.size == 0:
        return 1.0
    _, cluster_index = np.unique(clusters, return_inverse=True)
    pairs, pair_counts = np.unique(
        np.stack([key, cluster_index.reshape(-1)]), axis=1, return_counts=True
    )
    majority = np.zeros(int(key.max()) + 1, dtype=np.int64)
    np.maximum.at(majority, pairs[0], pair_counts)
    return float(majority.sum() / key.size)


def _nmi(clusters: np.ndarray, key: np.ndarray) -> float:
    if key.size == 0:
        return 1.0
    # imported here: scikit-learn takes ~1 s to import, and only data with planted clusters needs it
    from sklearn.metrics import normalized_mutual_info_score

    return float(normalized_mutual_info_score(clusters, key))
