"""Id -> row mapping strategies for compressed embedding tables (numpy / scikit-learn only).

    from mappers import get_mapper
    mapper = get_mapper("frequency_embedding", num_rows=65536, hot_fraction=0.1, seed=0)
    mapper.fit(ids, counts, embeddings)          # training vocabulary
    rows = mapper.transform(raw_ids)             # any shape of int64 -> int64 rows
    save_bundle(mapper, "bundle_dir"); same = load_bundle("bundle_dir")

See mappers/base.py for the contract every strategy in MAPPERS follows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .base import Mapper, NotFittedError, UnseenIdError
from .bundle import FORMAT_VERSION, MANIFEST_FILE, read_bundle, save_bundle, save_tables
from .clustering import weighted_inertia, weighted_kmeans
from .diagnostics import collision_stats
from .double_hash import DoubleHashMapper
from .embedding import EmbeddingMapper
from .frequency import FrequencyMapper
from .frequency_embedding import FrequencyEmbeddingMapper
from .full import FullMapper
from .hash import HashMapper
from .mch import MCHMapper
from .mixed_dim import MixedDimMapper
from .qr import QRMapper

MAPPERS: dict[str, type[Mapper]] = {
    "full": FullMapper,
    "hash": HashMapper,
    "double_hash": DoubleHashMapper,
    "frequency": FrequencyMapper,
    "qr": QRMapper,
    "embedding": EmbeddingMapper,
    "frequency_embedding": FrequencyEmbeddingMapper,
    "mixed_dim": MixedDimMapper,
    "mch": MCHMapper,
}


def _mapper_class(name: Any) -> type[Mapper]:
    if not isinstance(name, str) or name not in MAPPERS:
        raise ValueError(f"unknown mapper {name!r}; valid names: {', '.join(MAPPERS)}")
    return MAPPERS[name]


def get_strategy(name: str) -> type[Mapper]:
    """The class registered as `name`, whose traits (`takes_compression`, `needs_embeddings`,
    `takes_dim`, `is_baseline`, `compared_with`, `report_rank`) describe the strategy; an unknown
    name is a ValueError listing the valid ones."""
    return _mapper_class(name)


def strategy_traits(name: Any) -> type[Mapper]:
    """The class whose traits describe strategy `name`; a name not registered here (a sweep
    recorded by another version) gets the defaults of `Mapper`."""
    return MAPPERS.get(name, Mapper) if isinstance(name, str) else Mapper


def baseline_strategy() -> str | None:
    """The registered strategy every other is compared with in reports, if any."""
    return next((name for name, cls in MAPPERS.items() if cls.is_baseline), None)


def get_mapper(name: str, **params: Any) -> Mapper:
    """A new, unfitted mapper `name` (a MAPPERS key) built with `params`."""
    cls = _mapper_class(name)
    try:
        return cls(**params)
    except TypeError as err:  # unknown or missing keyword
        raise ValueError(f"bad params for mapper {name!r}: {err}") from err


def load_bundle_with_manifest(path: str | Path) -> tuple[Mapper, dict[str, Any]]:
    """`load_bundle(path)` and the bundle's verified manifest (its "digest" identifies it)."""
    manifest, arrays = read_bundle(path)
    try:
        cls = _mapper_class(manifest.get("strategy"))
    except ValueError as err:
        raise ValueError(f"{Path(path) / MANIFEST_FILE}: {err}") from err
    return cls.from_bundle(manifest, arrays), manifest


def load_bundle(path: str | Path) -> Mapper:
    """Read, verify (manifest digest, sizes before decompressing, checksums, no pickle) and
    rebuild the mapper saved in directory `path`."""
    return load_bundle_with_manifest(path)[0]


__all__ = [
    "FORMAT_VERSION",
    "MAPPERS",
    "DoubleHashMapper",
    "EmbeddingMapper",
    "FrequencyEmbeddingMapper",
    "FrequencyMapper",
    "FullMapper",
    "HashMapper",
    "MCHMapper",
    "Mapper",
    "MixedDimMapper",
    "NotFittedError",
    "QRMapper",
    "UnseenIdError",
    "collision_stats",
    "baseline_strategy",
    "get_mapper",
    "get_strategy",
    "load_bundle",
    "load_bundle_with_manifest",
    "save_bundle",
    "save_tables",
    "strategy_traits",
    "weighted_inertia",
    "weighted_kmeans",
]
