"""Fine k-means inside the cells of a coarse k-means: the scalable level of clustering.py.

Given coarse centroids (k1 ~ sqrt(k) of them), `cell_kmeans` splits k fine clusters over
the coarse cells in proportion to each cell's weighted SSE (largest remainder,
1 <= k_g <= points in the cell), seeds them by weighted sampling without replacement
inside each cell (exponential clocks E / w: the heaviest points get clusters of their
own), and runs Lloyd iterations in which a point considers only the fine centroids of its
PROBES nearest cells. About 30% of points end up with a centroid of a neighbouring cell,
so hard cell boundaries would cost ~15% inertia. Assignment costs
n * PROBES * (k / k1) * d instead of n * k * d; cells are scored in parallel threads
(numpy releases the GIL; BLAS is held to one thread meanwhile), and the centroid update is
one global weighted bincount per dimension. Results do not depend on the thread count.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

from .nearest_centroid import BlockScorer, augment, nearest_few, score_matrix

PROBES = 3  # a point weighs the fine centroids of its 3 nearest coarse cells
FINE_ITERATIONS = 4  # Lloyd iterations; more gain < 1% inertia (benchmarks/README.md)
MAX_WORKERS = 8  # threads scoring cells in parallel
PAIR_CACHE_BYTES = 1 << 30  # gather the (point, cell) pairs once when they fit in this


def cell_kmeans(
    x: np.ndarray, w: np.ndarray, k: int, coarse: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (n,) in [0, k), centroids (k, d) float32) of points x (n, d), weights w > 0,
    n > k, given coarse centroids (k1, d)."""
    assert x.shape[0] > k >= coarse.shape[0] and FINE_ITERATIONS >= 1
    x_aug = augment(x)
    cells, nearest_dist = nearest_few(x_aug, coarse, PROBES)
    home = cells[:, 0]
    k1 = coarse.shape[0]
    cell_sse = np.bincount(home, weights=w * nearest_dist, minlength=k1)
    per_cell = allocate(k, cell_sse, np.bincount(home, minlength=k1))
    centroids = _seed_in_cells(x, w, home, per_cell, rng)
    with threadpool_limits(limits=1, user_api="blas"):  # parallel over cells instead
        return _lloyd_in_cells(x, x_aug, w, cells, per_cell, centroids)


def allocate(total: int, scores: np.ndarray, caps: np.ndarray) -> np.ndarray:
    """Integers 1 <= a_g <= caps_g (0 where caps_g == 0) summing to min(total, sum caps),
    proportional to `scores` by largest remainder, redistributing what the caps cut off."""
    alloc = np.minimum(caps, 1)
    remaining = min(total, int(caps.sum())) - int(alloc.sum())
    while remaining > 0:
        room = caps - alloc
        share = np.where(room > 0, scores, 0.0)
        if share.sum() <= 0:
            share = (room > 0).astype(np.float64)
        ideal = remaining * share / share.sum()
        add = np.minimum(np.floor(ideal).astype(np.int64), room)
        if add.sum() == 0:  # hand out single clusters by largest remainder
            order = np.argsort(-(ideal - np.floor(ideal)), kind="stable")
            order = order[room[order] > 0][:remaining]
            add[order] = 1
        alloc += add
        remaining -= int(add.sum())
    return alloc


class ClusterMeans:
    """Weighted cluster means for changing labels over fixed points: the weighted columns
    w * x[:, j] are formed once, contiguous, and reused by every Lloyd update."""

    def __init__(self, x: np.ndarray, w: np.ndarray) -> None:
        self._w = w
        self._weighted_columns = np.asfortranarray(x, dtype=np.float64) * w[:, None]

    def __call__(self, labels: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """((k, d) weighted means, (k,) mass); empty clusters get mean 0 and mass 0."""
        mass = np.bincount(labels, weights=self._w, minlength=k)
        sums = np.empty((k, self._weighted_columns.shape[1]))
        for j in range(sums.shape[1]):
            sums[:, j] = np.bincount(labels, weights=self._weighted_columns[:, j], minlength=k)
        return sums / np.maximum(mass, np.finfo(np.float64).tiny)[:, None], mass


def _seed_in_cells(
    x: np.ndarray, w: np.ndarray, home: np.ndarray, per_cell: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(k, d) float64 seeds, cell by cell: per_cell[g] points of cell g drawn by weighted
    sampling without replacement (exponential clocks E / w: the heaviest come first)."""
    clocks = rng.exponential(size=x.shape[0]) / w
    by_cell = np.lexsort((clocks, home))  # grouped by cell, then by clock
    cell_start = np.concatenate([[0], np.cumsum(np.bincount(home, minlength=per_cell.size))])
    sorted_home = home[by_cell]
    rank_in_cell = np.arange(x.shape[0]) - cell_start[sorted_home]
    chosen = by_cell[rank_in_cell < per_cell[sorted_home]]  # in cell order
    return x[chosen].astype(np.float64)


def _lloyd_in_cells(
    x: np.ndarray,
    x_aug: np.ndarray,
    w: np.ndarray,
    cells: np.ndarray,
    per_cell: np.ndarray,
    centroids: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations where point i only weighs the fine centroids of cells[i] (centroids
    first_label[g]:first_label[g + 1] belong to cell g). Returns (labels, float32
    centroids = weighted means of the final labels; empty clusters keep their seed)."""
    n, probes = cells.shape
    first_label = np.concatenate([[0], np.cumsum(per_cell)])
    pair_cell = cells.reshape(-1)  # (n * probes,) pair = (point, candidate cell)
    pair_order = np.argsort(pair_cell, kind="stable")  # pairs grouped by cell
    pair_point = pair_order // probes
    pair_start = np.concatenate([[0], np.cumsum(np.bincount(pair_cell, minlength=per_cell.size))])
    pair_label = np.empty(n * probes, dtype=np.int64)
    pair_score = np.empty(n * probes, dtype=np.float32)
    label_by_pair = np.empty(n * probes, dtype=np.int64)
    score_by_pair = np.empty(n * probes, dtype=np.float32)
    cached = None  # the points of the pairs, gathered once if they fit
    if pair_point.size * x_aug.shape[1] * x_aug.itemsize <= PAIR_CACHE_BYTES:
        cached = x_aug[pair_point]

    def score_cells(cell_range: range, scores_of: np.ndarray) -> None:
        scorer = BlockScorer(int(per_cell.max()))
        for g in cell_range:
            lo, hi = pair_start[g], pair_start[g + 1]
            if per_cell[g] == 0:
                pair_score[lo:hi] = np.inf
                continue
            cl, ch = first_label[g], first_label[g + 1]
            points = cached[lo:hi] if cached is not None else x_aug[pair_point[lo:hi]]
            cell_scores_of = np.ascontiguousarray(scores_of[:, cl:ch])
            scorer.argmin(points, cell_scores_of, pair_label[lo:hi], pair_score[lo:hi])
            pair_label[lo:hi] += cl

    workers = _num_workers()
    tasks = _split_evenly(np.diff(pair_start) * np.maximum(per_cell, 1), 4 * workers)
    means = ClusterMeans(x, w)
    rows = np.arange(n)
    labels = np.empty(n, dtype=np.int64)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(FINE_ITERATIONS):
            scores_of = score_matrix(centroids)
            list(pool.map(score_cells, tasks, [scores_of] * len(tasks)))
            label_by_pair[pair_order] = pair_label  # back to (point, probe) order
            score_by_pair[pair_order] = pair_score
            best_probe = score_by_pair.reshape(n, probes).argmin(axis=1)
            labels = label_by_pair.reshape(n, probes)[rows, best_probe]
            updated, mass = means(labels, centroids.shape[0])
            centroids = np.where(mass[:, None] > 0, updated, centroids)
    return labels, centroids.astype(np.float32)


def _split_evenly(work: np.ndarray, parts: int) -> list[range]:
    """Contiguous index ranges of `work` with roughly equal total work each."""
    bounds = np.searchsorted(np.cumsum(work), np.linspace(0, work.sum(), parts + 1)[1:-1])
    edges = np.unique(np.concatenate([[0], bounds, [work.size]]))
    return [range(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def _num_workers() -> int:
    """Threads for the cell loop: the CPUs this process may run on, at most MAX_WORKERS."""
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        available = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, available))
