"""`synthetic`: click logs with planted clusters of similar ids (the embedded default data).

For feature f with vocabulary V_f and K_f planted clusters:

- popularity: id rank r in [0, V_f) is drawn with P(r) proportional to (r + 1) ** -zipf_exponent;
  the raw id is a seeded 64-bit bijection of the rank, so popularity is not id order.
- each rank belongs to a uniformly drawn planted cluster k(r), with latent vector
  c_{f,k} ~ N(0, I_L) and first-order effect a_{f,k} ~ N(0, effect_scale^2).
- the id's own effect is a_{f,k(r)} + e_{f,r}, with small per-id noise
  e_{f,r} ~ N(0, (id_noise * effect_scale)^2) derived from a hash of the id (no storage).

    logit = bias + sum_f (a_{f,k} + e_{f,r})
            + interaction_scale / sqrt(L * P) * sum_{f<g} <c_f, c_g>     (P = F(F-1)/2 pairs)
            + dense @ w,           dense ~ N(0, 1),  w ~ N(0, dense_scale^2 / num_dense)
    click ~ Bernoulli(sigmoid(logit))

The interaction term is normalised so its total std is about interaction_scale for any F.

Time (`split: sequential`, `drift`): rows are in time order, row p at time t = p / N. With
drift > 0 the popularity ranking rotates over the ids as time passes: rank r at time t is id
(r + floor(drift * t * V_f)) mod V_f. An id keeps its cluster and effects (what a click means
does not change), but the ids that are popular late were rare or absent early, so a map fitted
on the early rows meets more and more ids it never saw: the staleness study (results/staleness).
drift 0 gives the same rows as before the option existed.

So an id matters only through its cluster plus small noise: "similar ids" exist by
construction, and the planted clusters (meta `planted_ids`, `planted_cluster`) and the
true click probability of every row (extra `true_prob`) are kept, which makes the Bayes
logloss known. Rows are generated in chunks; memory beyond the output columns is the
per-feature popularity tables (12 bytes per id) plus one chunk.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import numpy as np

from sweep.datasets.base import Source, option
from sweep.datasets.store import Chunk, FeatureSchema, Schema, SplitSpec
from sweep.errors import DataError
from sweep.hashing import mix64

__all__ = ["CRITEO_KAGGLE_CARDINALITIES", "PRESETS", "SyntheticConfig", "SyntheticSource"]

log = logging.getLogger(__name__)

# Distinct values of C1..C26 in the Criteo Kaggle display-advertising data (as in the reference
# DLRM).
CRITEO_KAGGLE_CARDINALITIES = (
    1460, 583, 10131227, 2202608, 305, 24, 12517, 633, 3, 93145, 5683, 8351593, 3194,
    27, 14992, 5461306, 10, 5652, 2173, 4, 7046547, 18, 15, 286181, 105, 142572,
)

PRESETS: dict[str, dict] = {
    # A handful of features, vocabularies 1e2..1e5; a full-table model learns most of the signal in
    # ~1 min.
    "default": {"num_rows": 1_000_000, "vocab_sizes": (100, 1_000, 10_000, 50_000, 100_000),
                "num_dense": 4},
    # 13 dense + 26 categorical with Criteo Kaggle's cardinality profile times `scale`.
    "criteo-like": {"num_rows": 1_000_000, "vocab_sizes": None, "num_dense": 13},
}


@dataclass(frozen=True)
class SyntheticConfig:
    preset: str = field(default="default", metadata=option(f"base settings: {', '.join(PRESETS)}"))
    num_rows: int | None = field(default=None, metadata=option(
        "rows to generate (default: the preset's)"))
    vocab_sizes: tuple[int, ...] | None = field(default=None, metadata=option(
        "ids per feature, comma-separated (default: the preset's)"))
    scale: float = field(default=0.01, metadata=option(
        "criteo-like: multiply the Criteo Kaggle cardinalities by this"))
    num_clusters: tuple[int, ...] | None = field(default=None, metadata=option(
        "planted clusters per feature (default: clip(sqrt(V), 2, 128))"))
    num_dense: int | None = field(default=None, metadata=option(
        "dense features (default: the preset's)"))
    zipf_exponent: float = field(default=1.05, metadata=option(
        "popularity skew: P(rank r) ~ (r+1)^-s"))
    latent_dim: int = field(default=8,
                            metadata=option("dimension L of the planted cluster vectors"))
    effect_scale: float = field(default=0.6, metadata=option(
        "std of a cluster's first-order logit effect"))
    id_noise: float = field(default=0.1, metadata=option(
        "per-id effect noise, relative to effect_scale"))
    interaction_scale: float = field(default=0.5, metadata=option(
        "std of the pairwise cluster-vector interaction effect"))
    dense_scale: float = field(default=0.5, metadata=option(
        "std of the dense features' total logit effect"))
    base_rate: float = field(default=0.25,
                             metadata=option("approximate click rate (sets the bias)"))
    drift: float = field(default=0.0, metadata=option(
        "popularity drift: over the rows, the ranking rotates by this share of each vocabulary (0: "
        "stationary)"))
    split: str = field(default="random", metadata=option(
        "'random' (seeded per row) or 'sequential' (the earliest rows train, then val, then test)"))
    val_fraction: float = field(default=0.1, metadata=option(
        "share of rows in the validation split"))
    test_fraction: float = field(default=0.1, metadata=option("share of rows in the test split"))
    seed: int = field(default=0, metadata=option("generator seed: same seed, same data"))
    chunk_rows: int = field(default=262_144, metadata=option(
        "rows generated per chunk (bounds memory)"))

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise DataError(f"preset must be one of {sorted(PRESETS)}, got {self.preset!r}")
        checks = {
            "num_rows": (self.num_rows is None or self.num_rows >= 10, "an int >= 10"),
            "scale": (self.scale > 0, "> 0"),
            "num_dense": (self.num_dense is None or self.num_dense >= 0, "an int >= 0"),
            "zipf_exponent": (self.zipf_exponent >= 0, ">= 0"),
            "latent_dim": (self.latent_dim >= 1, "an int >= 1"),
            "effect_scale": (self.effect_scale >= 0, ">= 0"),
            "id_noise": (self.id_noise >= 0, ">= 0"),
            "interaction_scale": (self.interaction_scale >= 0, ">= 0"),
            "dense_scale": (self.dense_scale >= 0, ">= 0"),
            "base_rate": (0 < self.base_rate < 1, "in (0, 1)"),
            "drift": (math.isfinite(self.drift) and self.drift >= 0, ">= 0"),
            "split": (self.split in ("random", "sequential"), "'random' or 'sequential'"),
            "chunk_rows": (self.chunk_rows >= 1, "an int >= 1"),
        }
        for name, (ok, allowed) in checks.items():
            if not ok:
                raise DataError(f"{name} must be {allowed}, got {getattr(self, name)!r}")
        sizes = self.resolved_vocab_sizes()
        if any(v < 1 for v in sizes):
            raise DataError(f"vocab_sizes must all be >= 1, got {list(sizes)}")
        if self.num_clusters is not None:
            if len(self.num_clusters) not in (1, len(sizes)):
                raise DataError(
                    f"num_clusters must give 1 value or one per feature ({len(sizes)}), got "
                    f"{len(self.num_clusters)}"
                )
            if any(k < 1 for k in self.num_clusters):
                raise DataError(f"num_clusters must all be >= 1, got {list(self.num_clusters)}")
        # validates the fractions
        SplitSpec(self.split, self.val_fraction, self.test_fraction, self.seed)

    def resolved_vocab_sizes(self) -> tuple[int, ...]:
        if self.vocab_sizes is not None:
            return tuple(int(v) for v in self.vocab_sizes)
        preset = PRESETS[self.preset]
        if preset["vocab_sizes"] is not None:
            return tuple(preset["vocab_sizes"])
        return tuple(max(2, int(round(c * self.scale))) for c in CRITEO_KAGGLE_CARDINALITIES)

    def resolved_num_clusters(self) -> tuple[int, ...]:
        sizes = self.resolved_vocab_sizes()
        if self.num_clusters is None:
            return tuple(int(np.clip(round(math.sqrt(v)), 2, 128)) for v in sizes)
        ks = self.num_clusters * len(sizes) if len(self.num_clusters) == 1 else self.num_clusters
        return tuple(int(k) for k in ks)

    def resolved_num_rows(self) -> int:
        return int(self.num_rows if self.num_rows is not None else PRESETS[self.preset]["num_rows"])

    def resolved_num_dense(self) -> int:
        return int(self.num_dense if self.num_dense is not None
                   else PRESETS[self.preset]["num_dense"])


def _gaussian_from_hash(keys: np.ndarray, seed: int) -> np.ndarray:
    """N(0, 1) per key, a deterministic function of (key, seed): Box-Muller on two hashes."""
    u1 = ((mix64(keys, seed) >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)
    u2 = ((mix64(keys, seed + 1) >> np.uint64(11)).astype(np.float64) + 0.5) / float(2**53)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


class SyntheticSource(Source):
    name = "synthetic"
    Config = SyntheticConfig
    seed_generates_data = True

    def __init__(self, config: SyntheticConfig):
        super().__init__(config)
        c = config
        if c.drift and c.split == "random":
            log.warning("synthetic: drift %g with a random split: train, val and test rows share "
                        "every time, so the maps never meet later data; use split 'sequential' to "
                        "study staleness", c.drift)
        self.vocab_sizes = c.resolved_vocab_sizes()
        self.num_clusters = c.resolved_num_clusters()
        self.num_dense = c.resolved_num_dense()
        self.num_rows = c.resolved_num_rows()
        rng = np.random.default_rng([c.seed, 0])
        self._cdfs, self._cluster_of_rank, self._latents, self._effects = [], [], [], []
        for v, k in zip(self.vocab_sizes, self.num_clusters, strict=True):
            weights = np.arange(1, v + 1, dtype=np.float64) ** -c.zipf_exponent
            cdf = np.cumsum(weights)
            self._cdfs.append(cdf / cdf[-1])
            self._cluster_of_rank.append(rng.integers(0, k, size=v).astype(np.int32))
            self._latents.append(rng.standard_normal((k, c.latent_dim)))
            self._effects.append(rng.standard_normal(k) * c.effect_scale)
        self._dense_weights = rng.standard_normal(self.num_dense) * c.dense_scale / math.sqrt(
            max(self.num_dense, 1))
        self._bias = math.log(c.base_rate / (1 - c.base_rate))

    def schema(self) -> Schema:
        return Schema(
            dense=tuple(f"I{j + 1}" for j in range(self.num_dense)),
            features=tuple(FeatureSchema(f"C{i + 1}") for i in range(len(self.vocab_sizes))),
        )

    def split_spec(self) -> SplitSpec:
        return SplitSpec(self.config.split, self.config.val_fraction, self.config.test_fraction,
                         self.config.seed)

    def raw_ids(self, feature: int, ranks: np.ndarray) -> np.ndarray:
        """The int64 raw id of each popularity rank of a feature (a seeded bijection)."""
        return mix64(ranks, seed=self.config.seed * 1000 + feature).view(np.int64)

    def chunks(self) -> Iterator[Chunk]:
        c = self.config
        for index, start in enumerate(range(0, self.num_rows, c.chunk_rows)):
            n = min(c.chunk_rows, self.num_rows - start)
            rng = np.random.default_rng([c.seed, 1, index])
            # row p: p / N
            time = (start + np.arange(n, dtype=np.float64)) / self.num_rows if c.drift else None
            logit = np.full(n, self._bias)
            latent_sum = np.zeros((n, c.latent_dim))
            latent_sq = np.zeros(n)
            sparse = {}
            for f, cdf in enumerate(self._cdfs):
                ranks = np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)
                if c.drift:  # `ranks` is the id's index from here on (see the module docstring)
                    ranks = (ranks + np.floor(c.drift * len(cdf) * time).astype(np.int64)) % len(
                        cdf)
                clusters = self._cluster_of_rank[f][ranks]
                id_noise = _gaussian_from_hash(ranks.astype(np.uint64), seed=c.seed * 1000 + 500
                                               + f)
                logit += self._effects[f][clusters] + c.id_noise * c.effect_scale * id_noise
                z = self._latents[f][clusters]  # (n, L)
                latent_sum += z
                latent_sq += np.einsum("nl,nl->n", z, z)
                sparse[f"C{f + 1}"] = self.raw_ids(f, ranks.astype(np.uint64))
            pairwise = 0.5 * (np.einsum("nl,nl->n", latent_sum, latent_sum) - latent_sq)
            num_pairs = max(len(self._cdfs) * (len(self._cdfs) - 1) // 2, 1)
            logit += c.interaction_scale / math.sqrt(c.latent_dim * num_pairs) * pairwise
            dense = rng.standard_normal((n, self.num_dense)).astype(np.float32)
            logit += dense.astype(np.float64) @ self._dense_weights
            prob = 1.0 / (1.0 + np.exp(-logit))
            labels = (rng.random(n) < prob).astype(np.float32)
            yield Chunk(labels=labels, dense=dense, sparse=sparse,
                        extras={"true_prob": prob.astype(np.float32)})

    def feature_meta(self) -> Mapping[str, Mapping[str, np.ndarray]]:
        meta = {}
        for f, v in enumerate(self.vocab_sizes):
            meta[f"C{f + 1}"] = {
                "planted_ids": self.raw_ids(f, np.arange(v, dtype=np.uint64)),
                "planted_cluster": self._cluster_of_rank[f],
                "cluster_vectors": self._latents[f].astype(np.float32),
            }
        return meta
