"""`frequency_embedding`: hot ids keep dedicated rows; the rest are clustered on
(probe embedding, log-frequency), count-weighted.

The best mapping of "Learning to Collide" (Ghaemmaghami et al., 2022). It is exactly
`frequency`'s hot-id layout (mappers/frequency.py: the top floor(hot_fraction * num_rows)
ids by count take rows 0..K-1) followed by `embedding`'s clustering
(mappers/embedding.py) of the remaining ids into the remaining rows [K, usable), on the
features

    [ (e - mean(e)) / rms_std(e) ,  lam * z(log1p(count)) ]

where rms_std(e) is the root of the mean per-dimension variance of the embeddings (one
scale for the whole block, so the embedding geometry is kept) and z(.) standardises to
zero mean and unit variance. Both parts therefore have unit variance per dimension
before weighting, and lam means the same whatever the embedding scale: lam = 1 weighs
log-frequency like one average embedding dimension; lam = 0 ignores it. Unscaled, log
counts (0..15) would swamp probe embeddings of scale 0.1. Count weighting amplifies the
log-frequency axis (the heavy ids all sit at its top end), so the default is a small lam,
0.25, which keeps the embedding geometry primary. How lam moves the agreement with planted
clusters and the inertia of the rows is measured in tests/mappers/test_mappers_embedding.py
and benchmarks/README.md ("Mappers"); the default was chosen again on validation loss only
(0, 0.25, 1 on synthetic data and MovieLens-100K: 0.25 on both, results/selection/summary.md).
lam is a hyperparameter for the sweep.

If the hot ids take every usable row, the rest are hashed over all usable rows (as in
`frequency`). nbytes = 12 * min(V_min_count, max_explicit_ids) + 32, V_min_count = ids seen >=
min_count times.
"""

from __future__ import annotations

import numpy as np

from .base import check_float
from .embedding import cluster_rows, require_embeddings
from .frequency import hot_layout, num_hot_ids
from .learned import LearnedMapper, LearnedRows

FEATURE_CHUNK = 1 << 16  # rows of features standardised at a time


def frequency_features(embeddings: np.ndarray, counts: np.ndarray, lam: float) -> np.ndarray:
    """[standardised embeddings, lam * standardised log1p(counts)]: float32 [n, d + 1].

    Computed FEATURE_CHUNK rows at a time in float64, so no [n, d] float64 array is made."""
    n, d = embeddings.shape
    features = np.empty((n, d + 1), dtype=np.float32)
    if n == 0:
        return features
    mean = embeddings.mean(axis=0, dtype=np.float64)
    chunks = [slice(start, start + FEATURE_CHUNK) for start in range(0, n, FEATURE_CHUNK)]
    square = sum(float(((embeddings[c] - mean) ** 2).sum()) for c in chunks)
    scale = np.sqrt(square / embeddings.size)
    f = np.log1p(counts.astype(np.float64))
    f -= f.mean()
    spread = f.std()
    f = f / spread if spread > 0 else f
    for c in chunks:
        e = embeddings[c] - mean
        features[c, :d] = e / scale if scale > 0 else e
        features[c, d] = lam * f[c]
    return features


class FrequencyEmbeddingMapper(LearnedMapper):
    """Dedicated rows for hot ids; (embedding, log-frequency) clusters for the rest."""

    name = "frequency_embedding"
    needs_embeddings = True
    # what the probe adds to access counts alone; what the counts add to the probe's clusters
    compared_with = ("frequency", "embedding")
    report_rank = 6

    def __init__(
        self,
        *,
        num_rows: int,
        hot_fraction: float = 0.1,
        lam: float = 0.25,
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
        self.hot_fraction = check_float("hot_fraction", hot_fraction, 0.0, 1.0, low_open=True)
        self.lam = check_float("lam", lam, 0.0, 1e6, low_open=False)
        self._params = {**self._params, "hot_fraction": self.hot_fraction, "lam": self.lam}

    def _learn_rows(
        self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None
    ) -> LearnedRows:
        assert self.num_rows is not None
        embeddings = require_embeddings(self.name, embeddings)
        num_hot = num_hot_ids(self.hot_fraction, self.num_rows)
        hot, rest = hot_layout(ids, counts, num_hot, self.usable_rows())
        rows = self.fallback_rows(ids, rest)  # kept only if no rows are left for clusters
        rows[hot] = np.arange(hot.size)
        lo, hi = rest
        if hot.size < self.usable_rows():  # rows [lo, hi) = [K, usable) are free for clusters
            cold = np.ones(ids.size, dtype=bool)
            cold[hot] = False
            features = frequency_features(embeddings[cold], counts[cold], self.lam)
            rows[cold] = lo + cluster_rows(
                features, counts[cold], hi - lo, count_weighted=True, seed=self.seed
            )
        return LearnedRows(rows=rows, fallback=rest, num_rows=self.num_rows, oov_row=self.oov_row())
