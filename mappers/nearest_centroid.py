"""Nearest-centroid search in cache-sized blocks: the inner loop of every k-means here.

Squared distances are ||x||^2 + s(x, c) with the score s = ||c||^2 - 2 x.c. Points are
augmented to [x, 1] (float32) and centroids packed as [-2 C^T ; ||c||^2], so one matmul
gives the scores of a block of points against all centroids. Scores are written block by
block into one reused buffer: allocating a fresh (n, k) matrix per call is page-fault
bound and several times slower. A block holds about BLOCK_SCORES scores (1 MB, so the
argmin reads it from L2): 1024 points against up to 256 centroids, 128 against 2,048
(benchmarks/mapper_scale.py times the clustering this loop serves).
"""

from __future__ import annotations

from concurrent.futures import Executor

import numpy as np

BLOCK_ROWS = 1024  # at most this many points per scored block
BLOCK_SCORES = 1 << 18  # scores per block: fewer points against more centroids
FEW_RUNS = 32  # nearest_few with a pool: runs of blocks handed out (even load on few threads)


def block_rows(num_centroids: int) -> int:
    """Points per scored block against `num_centroids` centroids."""
    return int(np.clip(BLOCK_SCORES // max(num_centroids, 1), 1, BLOCK_ROWS))


def augment(x: np.ndarray) -> np.ndarray:
    """[x, 1] as float32 (n, d + 1)."""
    x_aug = np.empty((x.shape[0], x.shape[1] + 1), dtype=np.float32)
    x_aug[:, :-1] = x
    x_aug[:, -1] = 1.0
    return x_aug


def score_matrix(centroids: np.ndarray) -> np.ndarray:
    """[-2 C^T ; ||c||^2] as float32 (d + 1, k): augment(x) @ it = ||x - c||^2 - ||x||^2."""
    c = np.asarray(centroids, dtype=np.float64)
    return np.vstack([-2.0 * c.T, (c**2).sum(axis=1)]).astype(np.float32)


def squared_norms(x: np.ndarray) -> np.ndarray:
    """||x_i||^2 in float64, (n,)."""
    return np.einsum("ij,ij->i", x, x, dtype=np.float64)


class BlockScorer:
    """argmin over centroids of the score, block by block, in one reused buffer."""

    def __init__(self, max_clusters: int) -> None:
        self._buffer = np.empty(max(BLOCK_SCORES, max_clusters), dtype=np.float32)

    def argmin(
        self,
        x_aug: np.ndarray,
        scores_of: np.ndarray,
        out_index: np.ndarray,
        out_score: np.ndarray | None = None,
    ) -> None:
        """out_index[i] = argmin_j (x_aug @ scores_of)[i, j]; out_score[i] = that minimum."""
        k = scores_of.shape[1]
        rows = block_rows(k)
        for start in range(0, x_aug.shape[0], rows):
            block = x_aug[start : start + rows]
            m = block.shape[0]
            scores = self._buffer[: m * k].reshape(m, k)
            np.matmul(block, scores_of, out=scores)
            best = scores.argmin(axis=1)
            out_index[start : start + m] = best
            if out_score is not None:
                out_score[start : start + m] = scores[np.arange(m), best]


def nearest(x: np.ndarray, centroids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the nearest centroid (int64), squared distance to it (float64)) per row."""
    index = np.empty(x.shape[0], dtype=np.int64)
    best = np.empty(x.shape[0], dtype=np.float32)
    BlockScorer(centroids.shape[0]).argmin(augment(x), score_matrix(centroids), index, best)
    return index, np.maximum(squared_norms(x) + best, 0.0)


def nearest_few(
    x_aug: np.ndarray, centroids: np.ndarray, count: int, pool: Executor
) -> tuple[np.ndarray, np.ndarray]:
    """(the `count` nearest centroids of each point (n, count), nearest first;
    squared distance to the nearest (n,)).

    Runs of blocks are scored in the `pool`'s threads (hold BLAS to one thread meanwhile);
    blocks start at fixed multiples of the block size, so the result does not depend on
    the number of threads."""
    count = min(count, centroids.shape[0])
    scores_of = score_matrix(centroids)
    n = x_aug.shape[0]
    index = np.empty((n, count), dtype=np.int64)
    best = np.empty(n, dtype=np.float32)
    k = centroids.shape[0]
    rows = block_rows(k)

    def score_blocks(span: range) -> None:
        buffer = np.empty(rows * k, dtype=np.float32)
        for start in span:
            block = slice(start, start + rows)
            m = min(rows, n - start)
            scores = buffer[: m * k].reshape(m, k)
            np.matmul(x_aug[block], scores_of, out=scores)
            at = np.arange(m)
            for rank in range(count):  # repeated argmin: faster than argpartition for so few
                index[block, rank] = top = scores.argmin(axis=1)
                if rank == 0:
                    best[block] = scores[at, top]
                scores[at, top] = np.inf

    starts = range(0, n, rows)
    step = max(1, -(-len(starts) // FEW_RUNS))
    list(pool.map(score_blocks, [starts[i : i + step] for i in range(0, len(starts), step)]))
    return index, np.maximum(squared_norms(x_aug[:, :-1]) + best, 0.0)
