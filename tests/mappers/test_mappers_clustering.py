"""weighted_kmeans: edge cases, determinism, weighting, and quality of the two-level path."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.cluster import MiniBatchKMeans

import mappers.cell_kmeans
from mappers import weighted_inertia, weighted_kmeans
from mappers.cell_kmeans import _fill_empty
from mappers.clustering import FLAT_MAX_CLUSTERS, coarse_clusters
from mappers.nearest_centroid import BLOCK_SCORES, BlockScorer, augment, nearest_few, score_matrix


def blobs(n: int, dim: int, centres: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centre = rng.normal(0.0, 1.0, size=(centres, dim))
    points = centre[rng.integers(0, centres, n)] + rng.normal(0.0, 0.3, size=(n, dim))
    weights = np.maximum(1, 1000 / np.arange(1, n + 1) ** 1.05)
    return points, rng.permutation(weights)


def test_k_equal_one_puts_everything_in_cluster_zero() -> None:
    points, weights = blobs(100, 3, 4, seed=0)
    np.testing.assert_array_equal(weighted_kmeans(points, 1, weights), np.zeros(100))


def test_fewer_points_than_clusters_each_distinct_point_alone() -> None:
    points = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.0], [5.0, 5.0]])
    labels = weighted_kmeans(points, 10)
    assert labels[0] == labels[2] and np.unique(labels).size == 3
    assert labels.max() < 10


def test_duplicate_points_and_more_clusters_than_distinct_points() -> None:
    points = np.repeat(np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]]), 200, axis=0)
    labels = weighted_kmeans(points, 5, seed=1)  # 600 points > 5 clusters, 3 distinct
    assert labels.max() < 5
    for group in range(3):  # identical points share a label, groups are kept apart
        assert np.unique(labels[group * 200 : (group + 1) * 200]).size == 1
    assert np.unique(labels).size == 3


def test_zero_weights_do_not_move_centroids_but_get_labels() -> None:
    points = np.array([[0.0], [0.1], [10.0], [10.1], [100.0]])
    weights = np.array([1.0, 1.0, 1.0, 1.0, 0.0])
    labels = weighted_kmeans(points, 2, weights)
    assert labels[0] == labels[1] != labels[2] == labels[3]
    assert labels[4] == labels[2]  # nearest centroid, which it did not pull
    all_zero = weighted_kmeans(points, 2, np.zeros(5))  # treated as equal weights
    assert np.unique(all_zero).size == 2


def test_empty_input_and_validation() -> None:
    assert weighted_kmeans(np.empty((0, 3)), 4).shape == (0,)
    with pytest.raises(ValueError, match=r"n_clusters must be an int >= 1, got 0"):
        weighted_kmeans(np.ones((3, 2)), 0)
    with pytest.raises(ValueError, match=r"weights must be finite, >= 0 and of shape \(3,\)"):
        weighted_kmeans(np.ones((3, 2)), 2, np.array([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"points must be a 2-D numeric array, got shape \(3,\)"):
        weighted_kmeans(np.ones(3), 2)


@pytest.mark.parametrize("k", [8, FLAT_MAX_CLUSTERS + 88])
def test_same_seed_same_labels(k: int) -> None:
    points, weights = blobs(3000, 4, 20, seed=2)
    first = weighted_kmeans(points, k, weights, seed=5)
    np.testing.assert_array_equal(first, weighted_kmeans(points, k, weights, seed=5))
    assert first.min() >= 0 and first.max() < k
    assert not np.array_equal(first, weighted_kmeans(points, k, weights, seed=6))


def test_count_weighting_centres_clusters_on_heavy_points() -> None:
    rng = np.random.default_rng(3)
    points = rng.normal(size=(400, 2))
    weights = np.ones(400)
    weights[:3] = 1e6
    labels = weighted_kmeans(points, 8, weights, seed=0)
    assert np.unique(labels[:3]).size == 3  # each heavy point in a cluster of its own...
    for heavy in range(3):  # ...whose weighted mean sits on it
        members = labels == labels[heavy]
        centre = np.average(points[members], axis=0, weights=weights[members])
        assert np.linalg.norm(centre - points[heavy]) < 1e-3
    unweighted = weighted_kmeans(points, 8, None, seed=0)
    assert weighted_inertia(points, labels, weights) < weighted_inertia(points, unweighted, weights)


@pytest.mark.parametrize(("zipf", "bound"), [(True, 0.95), (False, 1.1)])
def test_two_level_path_against_the_flat_minibatch_baseline(zipf: bool, bound: float) -> None:
    """Count-weighted (Zipf) data: clearly better than the baseline, which seeds heavy points
    and takes few steps; unweighted data: about as good (benchmarks/README.md has 10^6 x 16)."""
    points, _ = blobs(20_000, 8, 300, seed=4)
    ranks = np.random.default_rng(5).permutation(points.shape[0]) + 1
    weights = np.maximum(1, 1e6 / ranks**1.05) if zipf else np.ones(points.shape[0])
    k = 1024  # > FLAT_MAX_CLUSTERS: two-level path
    ours = weighted_inertia(points, weighted_kmeans(points, k, weights, seed=0), weights)
    baseline = MiniBatchKMeans(
        n_clusters=k, batch_size=2048, n_init=1, max_iter=3, init="random", random_state=0
    ).fit(points, sample_weight=weights)
    assert ours < bound * weighted_inertia(points, baseline.labels_, weights)


def test_weighted_inertia_by_hand() -> None:
    points = np.array([[0.0], [2.0], [10.0]])
    labels = np.array([0, 0, 1])
    # cluster 0: weights 1 and 3 -> mean 1.5, inertia 1 * 1.5^2 + 3 * 0.5^2 = 3
    assert weighted_inertia(points, labels, np.array([1.0, 3.0, 5.0])) == pytest.approx(3.0)


def test_labels_do_not_depend_on_the_thread_count(monkeypatch: pytest.MonkeyPatch) -> None:
    points, weights = blobs(6000, 4, 40, seed=8)
    k = FLAT_MAX_CLUSTERS + 300  # two levels: cells scored in threads
    labels = {}
    for workers in (1, 3):
        monkeypatch.setattr(mappers.cell_kmeans, "_num_workers", lambda workers=workers: workers)
        labels[workers] = weighted_kmeans(points, k, weights, seed=2)
    np.testing.assert_array_equal(labels[1], labels[3])
    x_aug = augment(points.astype(np.float32))
    centroids = points[:700].astype(np.float32)
    with ThreadPoolExecutor(1) as one, ThreadPoolExecutor(3) as three:
        alone, threaded = (nearest_few(x_aug, centroids, 3, pool) for pool in (one, three))
        for a, b in zip(alone, threaded, strict=True):
            np.testing.assert_array_equal(a, b)


def test_probe_schedule_weighs_more_cells_in_later_iterations(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The home cell only in every iteration is hard cell borders: clearly worse."""
    points, weights = blobs(20_000, 8, 300, seed=4)
    k = 1024
    inertia = {}
    for schedule in ((1, 1, 1, 1), mappers.cell_kmeans.PROBE_SCHEDULE, (3, 3, 3, 3)):
        monkeypatch.setattr(mappers.cell_kmeans, "PROBE_SCHEDULE", schedule)
        labels = weighted_kmeans(points, k, weights, seed=0)
        assert labels.min() >= 0 and labels.max() < k
        inertia[schedule] = weighted_inertia(points, labels, weights)
    default = inertia[mappers.cell_kmeans.PROBE_SCHEDULE]
    assert default < 0.95 * inertia[(1, 1, 1, 1)] and default < 1.02 * inertia[(3, 3, 3, 3)]


def test_coarse_cells_grow_past_sqrt_k_for_many_clusters() -> None:
    assert coarse_clusters(65_536) == 256  # sqrt(k)
    assert coarse_clusters(2**20) == 2048  # k / 512 fine clusters per cell


def test_block_scorer_takes_more_centroids_than_a_block_holds() -> None:
    rng = np.random.default_rng(0)
    points, centroids = rng.normal(size=(5, 3)), rng.normal(size=(BLOCK_SCORES + 7, 3))
    index = np.empty(5, dtype=np.int64)
    BlockScorer(centroids.shape[0]).argmin(augment(points), score_matrix(centroids), index)
    exact = ((points[:, None, :] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    np.testing.assert_array_equal(index, exact)


def test_two_level_path_leaves_no_cluster_empty() -> None:
    points, weights = blobs(20_000, 8, 300, seed=4)
    for seed in (0, 1):
        assert np.unique(weighted_kmeans(points, 1024, weights, seed=seed)).size == 1024


def test_fill_empty_moves_the_costliest_point_of_a_shared_cluster() -> None:
    labels = np.array([0, 0, 0, 1, 3, 3])  # clusters 2 and 4 empty; 1 has a single point
    cost = np.array([1.0, 5.0, 4.0, 9.0, 3.0, 0.0])
    _fill_empty(labels, cost, 5)
    # point 3 (cost 9) is alone in cluster 1; point 2 (4) is cluster 0's second: not taken
    np.testing.assert_array_equal(labels, [0, 2, 0, 1, 4, 3])


def test_coarse_centroids_past_the_sample_cap_still_get_points_each(monkeypatch):
    # k1 > MAX_SAMPLE coarse cells (more than 2^23 rows at the real cap) once asked scikit-learn
    # for more clusters than sampled points; a small cap shows the same case
    from mappers import clustering

    monkeypatch.setattr(clustering, "MAX_SAMPLE", 64)
    monkeypatch.setattr(clustering, "MIN_SAMPLE", 32)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 4)).astype(np.float32)
    centroids = clustering._flat_centroids(x, np.ones(2000), 100, rng)
    assert centroids.shape == (100, 4) and np.isfinite(centroids).all()
