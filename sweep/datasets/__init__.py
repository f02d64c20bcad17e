"""Data sources and the prepared form they all produce (see docs/DESIGN.md, Formats)."""

from __future__ import annotations

from sweep.datasets.base import Source
from sweep.datasets.cache import default_out_dir, fingerprint, prepare
from sweep.datasets.criteo import CriteoSource
from sweep.datasets.prepared import (
    PreparedDataError,
    PreparedDataset,
    SparseColumn,
    Vocabulary,
    load_prepared,
)
from sweep.datasets.recbole import RecBoleSource
from sweep.datasets.store import Chunk, FeatureSchema, Schema, SplitSpec
from sweep.datasets.synthetic import SyntheticSource
from sweep.datasets.table import TableSource
from sweep.errors import DataError

__all__ = [
    "SOURCES",
    "Chunk",
    "FeatureSchema",
    "PreparedDataError",
    "PreparedDataset",
    "Schema",
    "Source",
    "SparseColumn",
    "SplitSpec",
    "Vocabulary",
    "default_out_dir",
    "fingerprint",
    "get_source",
    "load_prepared",
    "prepare",
]

SOURCES: dict[str, type[Source]] = {
    "synthetic": SyntheticSource,
    "criteo": CriteoSource,
    "recbole": RecBoleSource,
    "table": TableSource,
}


def get_source(name: str, **params: object) -> Source:
    """Build a source by registry name; an unknown name lists the valid ones."""
    if name not in SOURCES:
        raise DataError(f"unknown data source {name!r}; valid: {sorted(SOURCES)}")
    return SOURCES[name].from_params(**params)
