"""Fine k-means inside the cells of a coarse k-means: the scalable level of clustering.py.

Given k1 coarse centroids (mappers/clustering.py picks k1), `cell_kmeans` splits k fine
clusters over the coarse cells in proportion to each cell's weighted SSE (largest
remainder, 1 <= k_g <= points in the cell), seeds them by weighted sampling without
replacement inside each cell (exponential clocks E / w: the heaviest points get clusters
of their own), and runs Lloyd iterations in which a point considers only the fine
centroids of its PROBES nearest cells. Many points end up with a centroid of a
neighbouring cell, so hard cell boundaries would cost inertia.

The iterations follow PROBE_SCHEDULE: the early ones, which mostly move seeds to the
means of their cells, weigh the home cell only, and the later ones 2 and then all 3
cells: 7 cells' worth of scoring instead of 12 for 3 probes in all 4 iterations, at about
the same inertia (benchmarks/README.md, "Mappers"). A cluster left without points in an iteration
takes
the costliest point of a shared cluster (`_fill_empty`), so (nearly) every row is used.

Assignment costs n * (probes) * (k / k1) * d per iteration instead of n * k * d. The
points are sorted by home cell, so a cell's home points are one block; the (point, other
cell) pairs are grouped by cell. Cells are scored in parallel threads (numpy releases the
GIL; BLAS is held to one thread meanwhile), and the centroid update is one weighted
bincount per dimension. Results do not depend on the thread count.
"""

from __future__ import annotations

import os
from concurrent.futures import Executor, ThreadPoolExecutor
from itertools import repeat

import numpy as np
from threadpoolctl import threadpool_limits

from .nearest_centroid import BlockScorer, augment, nearest_few, score_matrix, squared_norms

PROBES = 3  # a point weighs the fine centroids of its 3 nearest coarse cells...
PROBE_SCHEDULE = (1, 1, 2, 3)  # ...of its r nearest in a Lloyd iteration of value r
MAX_WORKERS = 8  # threads scoring cells in parallel
PAIR_CACHE_BYTES = 1 << 30  # gather the (point, other cell) pairs once when they fit in this


def cell_kmeans(
    x: np.ndarray, w: np.ndarray, k: int, coarse: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(labels (n,) in [0, k), centroids (k, d) float32) of points x (n, d), weights w > 0,
    n > k, given coarse centroids (k1, d), 2 <= k1 <= k."""
    assert x.shape[0] > k >= coarse.shape[0] >= 2 and PROBES >= 2 and PROBE_SCHEDULE
    k1 = coarse.shape[0]
    x_aug = augment(x)
    # parallel over blocks and cells instead of inside BLAS
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(_num_workers()) as pool:
        cells, nearest_dist = nearest_few(x_aug, coarse, PROBES, pool)
        home = cells[:, 0]
        home_count = np.bincount(home, minlength=k1)
        cell_sse = np.bincount(home, weights=w * nearest_dist, minlength=k1)
        per_cell = allocate(k, cell_sse, home_count)
        del nearest_dist
        centroids = _seed_in_cells(x, w, home, per_cell, rng)
        by_home = _group_order(home, k1)  # the points, grouped by home cell
        del home
        x_aug = x_aug[by_home]
        others = cells[by_home, 1:]
        del cells
        sorted_labels, centroids = _lloyd_in_cells(
            x_aug, w[by_home], others, home_count, per_cell, centroids, pool
        )
    labels = np.empty(x.shape[0], dtype=np.int64)
    labels[by_home] = sorted_labels
    return labels, centroids


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


def weighted_means(
    x: np.ndarray, w: np.ndarray, labels: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """((k, d) weighted means of x by label, (k,) mass), float64; empty clusters get mean 0
    and mass 0. One bincount per dimension of the float64 column w * x[:, j], formed one at
    a time: no [n, d] float64 copy (at 10^7 x 16 points it would be 1.3 GB), for ~1 s more
    per call than keeping the weighted columns."""
    mass = np.bincount(labels, weights=w, minlength=k)
    sums = np.empty((k, x.shape[1]))
    for j in range(x.shape[1]):
        sums[:, j] = np.bincount(labels, weights=x[:, j] * w, minlength=k)
    return sums / np.maximum(mass, np.finfo(np.float64).tiny)[:, None], mass


def _seed_in_cells(
    x: np.ndarray, w: np.ndarray, home: np.ndarray, per_cell: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """(k, d) float64 seeds, cell by cell: per_cell[g] points of cell g drawn by weighted
    sampling without replacement (exponential clocks E / w: the heaviest come first)."""
    clocks = rng.exponential(size=x.shape[0]) / w
    by_clock = np.argsort(clocks)
    by_cell = by_clock[_group_order(home[by_clock], per_cell.size)]  # by cell, then clock
    del by_clock
    cell_start = np.concatenate([[0], np.cumsum(np.bincount(home, minlength=per_cell.size))])
    sorted_home = home[by_cell]
    rank_in_cell = np.arange(x.shape[0]) - cell_start[sorted_home]
    chosen = by_cell[rank_in_cell < per_cell[sorted_home]]  # in cell order
    return x[chosen].astype(np.float64)


def _lloyd_in_cells(
    x_aug: np.ndarray,
    w: np.ndarray,
    others: np.ndarray,
    home_count: np.ndarray,
    per_cell: np.ndarray,
    centroids: np.ndarray,
    pool: Executor,
) -> tuple[np.ndarray, np.ndarray]:
    """Lloyd iterations over points sorted by home cell (the first home_count[0] points are
    cell 0's, and so on): point i weighs the fine centroids of its home cell and, in an
    iteration of PROBE_SCHEDULE value r, those of its cells others[i, :r - 1] (centroids
    first_label[g]:first_label[g + 1] belong to cell g). Returns (labels, float32
    centroids = weighted means of the final labels; a cluster left empty keeps its last centroid).

    A pair (point i, its cell others[i, j]) is numbered i * others.shape[1] + j; the pairs
    are grouped by cell and, within a cell, by j, so an iteration's pairs of a cell are one
    slice. Threads score cells; each writes the best centroid and score of its points and
    pairs straight into the shared arrays (no two threads write one place)."""
    n, extra = others.shape
    k1 = per_cell.size
    first_label = np.concatenate([[0], np.cumsum(per_cell)])
    home_start = np.concatenate([[0], np.cumsum(home_count)])
    group = (others * extra + np.arange(extra)).reshape(-1)  # (cell, j) of each pair
    pair_order = _group_order(group, k1 * extra)
    group_start = np.concatenate([[0], np.cumsum(np.bincount(group, minlength=k1 * extra))])
    del group
    cached = None  # the points of the pairs, gathered once if they fit
    if pair_order.size * x_aug.shape[1] * x_aug.itemsize <= PAIR_CACHE_BYTES:
        cached = x_aug[pair_order // extra]
    home_label = np.empty(n, dtype=np.int64)
    home_score = np.empty(n, dtype=np.float32)
    pair_label = np.zeros(n * extra, dtype=np.int64)
    pair_score = np.empty(n * extra, dtype=np.float32)

    def score_cells(cell_range: range, scores_of: np.ndarray, pair_end: np.ndarray) -> None:
        scorer = BlockScorer(int(per_cell.max()))
        pair_start = group_start[:-1:extra]
        most = int((pair_end - pair_start)[cell_range.start : cell_range.stop].max(initial=0))
        best_label = np.empty(most, dtype=np.int64)
        best_score = np.empty(most, dtype=np.float32)
        for g in cell_range:
            if per_cell[g] == 0:  # no home points either; its pairs keep score inf
                continue
            cl, ch = first_label[g], first_label[g + 1]
            cell_scores_of = np.ascontiguousarray(scores_of[:, cl:ch])
            lo, hi = home_start[g], home_start[g + 1]
            scorer.argmin(x_aug[lo:hi], cell_scores_of, home_label[lo:hi], home_score[lo:hi])
            home_label[lo:hi] += cl
            lo, hi = pair_start[g], pair_end[g]
            if lo < hi:
                pairs, m = pair_order[lo:hi], hi - lo
                points = cached[lo:hi] if cached is not None else x_aug[pairs // extra]
                scorer.argmin(points, cell_scores_of, best_label[:m], best_score[:m])
                pair_label[pairs] = best_label[:m] + cl
                pair_score[pairs] = best_score[:m]

    parts = 4 * _num_workers()
    first_pair = np.arange(0, n * extra, extra)
    norms = squared_norms(x_aug[:, :-1])
    labels = home_label
    for probes in PROBE_SCHEDULE:
        pair_end = group_start[min(probes, extra + 1) - 1 :: extra][:k1]  # cell g: pairs j < r - 1
        work = (home_count + pair_end - group_start[:-1:extra]) * per_cell
        scores_of = score_matrix(centroids)
        pair_score.fill(np.inf)
        list(pool.map(score_cells, _split_evenly(work, parts), repeat(scores_of), repeat(pair_end)))
        best_pair = first_pair + pair_score.reshape(n, extra).argmin(axis=1)
        labels = np.where(pair_score[best_pair] < home_score, pair_label[best_pair], home_label)
        best = np.minimum(pair_score[best_pair], home_score)
        _fill_empty(labels, w * np.maximum(norms + best, 0.0), centroids.shape[0])
        updated, mass = weighted_means(x_aug[:, :-1], w, labels, centroids.shape[0])
        centroids = np.where(mass[:, None] > 0, updated, centroids)
    return labels, centroids.astype(np.float32)


def _fill_empty(labels: np.ndarray, cost: np.ndarray, k: int) -> None:
    """Give each empty cluster (label in [0, k) no point has) one point, in place: the
    points of highest cost w * d^2, at most one from each cluster of two or more. Each
    move lowers the inertia by at least the point's cost; without it ~0.3% of the rows of
    10^6 ids -> 65,536 rows stayed empty (scikit-learn relocates empty clusters likewise)."""
    count = np.bincount(labels, minlength=k)
    empty = np.flatnonzero(count == 0)
    if empty.size == 0:
        return
    m = min(cost.size, 4 * empty.size)  # candidates enough to skip some
    top = np.argpartition(-cost, m - 1)[:m]
    top = top[np.argsort(-cost[top], kind="stable")]
    top = top[(cost[top] > 0) & (count[labels[top]] >= 2)]
    _, first = np.unique(labels[top], return_index=True)  # each cluster's costliest
    movers = top[np.sort(first)][: empty.size]
    labels[movers] = empty[: movers.size]


def _group_order(keys: np.ndarray, bound: int) -> np.ndarray:
    """The stable argsort of int keys in [0, bound), as the smallest unsigned type that
    holds them: numpy sorts 16-bit keys stably with a radix sort, far faster than int64."""
    return np.argsort(keys.astype(np.min_scalar_type(max(bound - 1, 0))), kind="stable")


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
