"""`embedding`: ids whose probe embeddings fall in the same k-means cluster share a row.

The learned-embedding mapping of "Learning to Collide" (Ghaemmaghami et al., 2022): a
low-dimensional probe embedding per training id (learned by models/ once per dataset) is
clustered into as many clusters as there are usable rows, and row = cluster. Clustering
is count-weighted by default (count_weighted=True: frequent ids pull the centroids, so
their neighbourhoods are split finer) and uses the scalable two-level k-means of
mappers/clustering.py. Unseen ids (and ids beyond max_explicit_ids) are hashed into all
usable rows under unseen="hash".

nbytes = 12 * min(V_min_count, max_explicit_ids) + 32, V_min_count = ids seen >= min_count times.
"""

from __future__ import annotations

import numpy as np

from .clustering import weighted_kmeans
from .learned import LearnedMapper, LearnedRows


def require_embeddings(name: str, embeddings: np.ndarray | None) -> np.ndarray:
    """The probe embeddings, or a ValueError saying how to pass them."""
    if embeddings is None:
        raise ValueError(
            f"{name} needs probe embeddings: call fit(ids, counts, embeddings) with a float "
            f"array [V, d] aligned with ids"
        )
    return embeddings


def cluster_rows(
    features: np.ndarray, counts: np.ndarray, num_clusters: int, *, count_weighted: bool, seed: int
) -> np.ndarray:
    """Cluster label (int64 [n]) in [0, num_clusters) of each feature row."""
    weights = counts.astype(np.float64) if count_weighted else None
    return weighted_kmeans(features, num_clusters, weights, seed=seed)


class EmbeddingMapper(LearnedMapper):
    """Row = k-means cluster of the id's probe embedding; rows = clusters."""

    name = "embedding"
    needs_embeddings = True
    compared_with = ("frequency",)  # what clustering the probe adds to access counts alone
    report_rank = 5

    def __init__(
        self,
        *,
        num_rows: int,
        count_weighted: bool = True,
        unseen: str = "hash",
        max_explicit_ids: int | None = None,
        min_count: int = 1,
        seed: int = 0,
    ) -> None:
        super().__init__(
            num_rows=num_rows,
            unseen=unseen,
            max_explicit_ids=max_explicit_ids,
            min_count=min_count,
            seed=seed,
        )
        if not isinstance(count_weighted, bool | np.bool_):
            raise ValueError(f"count_weighted must be a bool, got {count_weighted!r}")
        self.count_weighted = bool(count_weighted)
        self._params = {**self._params, "count_weighted": self.count_weighted}

    def _learn_rows(
        self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None
    ) -> LearnedRows:
        assert self.num_rows is not None
        embeddings = require_embeddings(self.name, embeddings)
        usable = self.usable_rows()
        rows = cluster_rows(
            embeddings, counts, usable, count_weighted=self.count_weighted, seed=self.seed
        )
        return LearnedRows(
            rows=rows, fallback=(0, usable), num_rows=self.num_rows, oov_row=self.oov_row()
        )
