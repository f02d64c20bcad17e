"""Nearest-centroid search in cache-sized blocks: the inner loop of every k-means here.

Squared distances are ||x||^2 + s(x, c) with the score s = ||c||^2 - 2 x.c. Points are
augmented to [x, 1] (float32) and centroids packed as [-2 C^T ; ||c||^2], so one matmul
gives the scores of a block of points against all centroids. Scores are written block by
block into one reused buffer: allocating a fresh (n, k) matrix per call is page-fault
bound and ~8x slower.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 1024  # points per scored block


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
        self._buffer = np.empty(BLOCK_ROWS * max(max_clusters, 1), dtype=np.float32)

    def argmin(
        self,
        x_aug: np.ndarray,
        scores_of: np.ndarray,
        out_index: np.ndarray,
        out_score: np.ndarray | None = None,
    ) -> None:
        """out_index[i] = argmin_j (x_aug @ scores_of)[i, j]; out_score[i] = that minimum."""
        k = scores_of.shape[1]
        for start in range(0, x_aug.shape[0], BLOCK_ROWS):
            block = x_aug[start : start + BLOCK_ROWS]
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
    x_aug: np.ndarray, centroids: np.ndarray, count: int
) -> tuple[np.ndarray, np.ndarray]:
    """(the `count` nearest centroids of each point (n, count), nearest first;
    squared distance to the nearest (n,))."""
    count = min(count, centroids.shape[0])
    scores_of = score_matrix(centroids)
    index = np.empty((x_aug.shape[0], count), dtype=np.int64)
    best = np.empty(x_aug.shape[0], dtype=np.float32)
    for start in range(0, x_aug.shape[0], BLOCK_ROWS):
        block = slice(start, start + BLOCK_ROWS)
        scores = x_aug[block] @ scores_of  # (B, k)
        rows = np.arange(scores.shape[0])
        for rank in range(count):  # repeated argmin: ~5x faster than argpartition here
            index[block, rank] = top = scores.argmin(axis=1)
            if rank == 0:
                best[block] = scores[rows, top]
            scores[rows, top] = np.inf
    return index, np.maximum(squared_norms(x_aug[:, :-1]) + best, 0.0)
