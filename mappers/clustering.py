"""Count-weighted k-means that scales to 10^6 points x 65,536 clusters in seconds.

`weighted_kmeans(points, n_clusters, weights, seed) -> labels` minimises the weighted
inertia sum_i w_i ||x_i - c_{label_i}||^2 and is deterministic for a seed.

- Few clusters (<= FLAT_MAX_CLUSTERS): one level of weighted k-means++ and Lloyd
  (scikit-learn KMeans), fitted on a stratified subsample when n is large, then every
  point is assigned to its nearest centroid.
- Many clusters: two levels. The same flat k-means with k1 = coarse_clusters(k) centroids
  (~sqrt(k), and at least k / MAX_FINE_PER_CELL) partitions the points into coarse cells;
  mappers/cell_kmeans.py then fits the k fine clusters inside (and across the borders
  of) the cells.

Its speed and weighted inertia against flat MiniBatchKMeans are measured in
benchmarks/README.md ("Mappers", and "Learned maps at scale" for 10^7 points): with
Zipf weights it is both faster and better; without weights (or with mild ones) it is about
as good as that baseline, not better: its edge comes from seeding heavy points.

Edge cases: k == 1 -> all zeros; no more positive-weight points than k -> each distinct
point its own cluster; zero-weight points do not move centroids and are assigned to the
nearest one; all weights zero -> treated as equal weights; duplicate points may leave
clusters empty (labels are then a subset of [0, k)).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from .base import check_int
from .cell_kmeans import cell_kmeans, weighted_means
from .nearest_centroid import nearest

FLAT_MAX_CLUSTERS = 512  # above this, two levels
MAX_FINE_PER_CELL = 512  # beyond ~2.6 * 10^5 clusters, more coarse cells (coarse_clusters)
SAMPLE_PER_CLUSTER = 32  # flat / coarse centroids are fitted on a sample of
MIN_SAMPLE = 8192  # clip(SAMPLE_PER_CLUSTER * k, MIN_SAMPLE, MAX_SAMPLE) points
MAX_SAMPLE = 1 << 14
MIN_PER_CENTROID = 4  # ...but never fewer than this many points per centroid


def weighted_kmeans(
    points: np.ndarray, n_clusters: int, weights: np.ndarray | None = None, *, seed: int = 0
) -> np.ndarray:
    """Cluster `points` [n, d] into labels (int64 [n]) in [0, n_clusters), count-weighted."""
    points = np.asarray(points)
    if points.ndim != 2 or points.dtype.kind not in "fiu":
        raise ValueError(f"points must be a 2-D numeric array, got shape {points.shape}")
    k = check_int("n_clusters", n_clusters, minimum=1)
    n = points.shape[0]
    w = np.ones(n) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (n,) or not np.isfinite(w).all() or (w.size and w.min() < 0):
        raise ValueError(f"weights must be finite, >= 0 and of shape ({n},), got {w.shape}")
    x = np.ascontiguousarray(points, dtype=np.float32)
    labels = np.zeros(n, dtype=np.int64)
    if n == 0 or k == 1:
        return labels
    if w.sum() == 0:
        w = np.ones(n)
    positive = w > 0
    rng = np.random.default_rng(seed)
    if positive.all():  # no [n, d] copy
        return _cluster_positive(x, w, k, rng)[0]
    positive_labels, centroids = _cluster_positive(x[positive], w[positive], k, rng)
    labels[positive] = positive_labels
    labels[~positive] = nearest(x[~positive], centroids)[0]
    return labels


def weighted_inertia(points: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> float:
    """sum_i w_i ||x_i - c_{l_i}||^2 with c the weighted mean of each cluster (float64)."""
    x = np.asarray(points, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    labels = np.asarray(labels)
    centroids, _ = weighted_means(x, w, labels, int(labels.max()) + 1 if labels.size else 0)
    return float(np.dot(w, ((x - centroids[labels]) ** 2).sum(axis=1)))


def _cluster_positive(
    x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(labels, centroids) for points that all have positive weight."""
    if x.shape[0] <= k:  # each distinct point its own cluster
        centroids, inverse = np.unique(x, axis=0, return_inverse=True)
        return inverse.reshape(-1).astype(np.int64), centroids
    if k <= FLAT_MAX_CLUSTERS:
        centroids = _flat_centroids(x, w, k, rng)
        return nearest(x, centroids)[0], centroids
    return cell_kmeans(x, w, k, _flat_centroids(x, w, coarse_clusters(k), rng), rng)


def coarse_clusters(k: int) -> int:
    """Coarse cells for k fine clusters: ~sqrt(k), and more when k is so large that a cell
    would hold over MAX_FINE_PER_CELL fine clusters. Finding a point's cells scores all k1
    coarse centroids, and the Lloyd iterations then score ~7 cells' fine ones (see
    PROBE_SCHEDULE): ~k1 + 7 k / k1 scores per point, which at 2^20 clusters is 14,848
    for 512 cells (the cap before), 8,192 for 1,024, 5,632 for 2,048 and 5,888 for 4,096."""
    return max(round(np.sqrt(k)), -(-k // MAX_FINE_PER_CELL))


def _flat_centroids(x: np.ndarray, w: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Weighted k-means++ + Lloyd (scikit-learn) on a stratified subsample: (k, d).

    The subsample has SAMPLE_PER_CLUSTER * k points, at least MIN_SAMPLE and at most
    MAX_SAMPLE, because k-means++ costs k * sample, and fewer points per centroid barely
    move the final inertia (benchmarks/mapper_scale.py measures both)."""
    # at least MIN_PER_CENTROID points per centroid even past MAX_SAMPLE (k1 > 4,096 coarse
    # cells, i.e. more than 2^21 clusters): scikit-learn needs n_samples >= n_clusters
    size = max(int(np.clip(SAMPLE_PER_CLUSTER * k, MIN_SAMPLE, MAX_SAMPLE)), MIN_PER_CENTROID * k)
    sample, sample_w = _stratified_sample(w, size, rng)
    model = KMeans(
        n_clusters=k, init="k-means++", n_init=1, max_iter=30, random_state=int(rng.integers(2**31))
    )
    with warnings.catch_warnings():  # duplicate points: fewer distinct clusters is fine
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[sample], sample_weight=sample_w)
    return model.cluster_centers_.astype(np.float32)


def _stratified_sample(
    w: np.ndarray, size: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Indices and weights of a mass-preserving subsample: the size/4 heaviest points exactly,
    plus a uniform sample of the rest with weights scaled up to keep their total mass."""
    n = w.size
    if n <= size:
        return np.arange(n), w
    heavy = np.argpartition(-w, size // 4)[: size // 4]
    is_rest = np.ones(n, dtype=bool)
    is_rest[heavy] = False
    rest = np.flatnonzero(is_rest)  # ascending, as setdiff1d gives it
    light = rng.choice(rest, size=size - heavy.size, replace=False)
    scale = w[rest].sum() / max(w[light].sum(), np.finfo(np.float64).tiny)
    return np.concatenate([heavy, light]), np.concatenate([w[heavy], w[light] * scale])
