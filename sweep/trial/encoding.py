"""From a prepared dataset and fitted mappers to the arrays the trainer takes.

Every raw id of a feature is transformed once, vectorised, over the whole column; the
train / val / test `EncodedSplit`s are then row selections of those rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from mappers import FullMapper
from mappers.base import ID_BYTES, LEARNED_HEADER_BYTES
from models import EncodedSplit, FeatureSpec
from sweep.datasets import PreparedDataset
from sweep.datasets.prepared import take_bags

__all__ = ["encode_splits", "feature_specs", "fit_full_mappers", "full_model_layout",
           "transform_columns"]


def fit_full_mappers(dataset: PreparedDataset) -> dict:
    """A fitted `full` mapper per feature (row i = i-th id of the sorted train vocabulary)."""
    return {name: FullMapper().fit(np.asarray(v.ids), np.asarray(v.counts))
            for name, v in dataset.vocab.items()}


def full_model_layout(dataset: PreparedDataset,
                      pooling: str = "sum") -> tuple[tuple[FeatureSpec, ...], int]:
    """(feature specs, mapping bytes) of the full model, from the vocabulary sizes alone.

    It is what fitting a `full` mapper per feature gives (V + 1 rows: one per train id and
    the OOV row; 12 bytes per id plus the header, mappers/full.py), without building the
    mappers' indexes: every trial sizes the full model to report its compression.
    """
    sizes = {name: int(len(dataset.vocab[name].ids)) for name in dataset.feature_names}
    specs = tuple(FeatureSpec(name=name, table_sizes=(sizes[name] + 1,), combine="none",
                              multi_valued=dataset.sparse[name].multi_valued, pooling=pooling)
                  for name in dataset.feature_names)
    return specs, sum(ID_BYTES * size + LEARNED_HEADER_BYTES for size in sizes.values())


def transform_columns(dataset: PreparedDataset,
                      mappers: Mapping) -> dict[str, tuple[np.ndarray, ...]]:
    """Rows of every stored value, per feature and table: one vectorised transform per column."""
    columns = {}
    for name in dataset.feature_names:
        rows = mappers[name].transform(np.asarray(dataset.sparse[name].values))
        columns[name] = tuple(rows) if isinstance(rows, tuple) else (rows,)
    return columns


def feature_specs(dataset: PreparedDataset, mappers: Mapping,
                  pooling: str = "sum") -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(name=name, table_sizes=tuple(int(s) for s in mappers[name].table_sizes),
                    combine=mappers[name].combine, multi_valued=dataset.sparse[name].multi_valued,
                    pooling=pooling)
        for name in dataset.feature_names
    )


def encode_splits(dataset: PreparedDataset, columns: Mapping[str, tuple[np.ndarray, ...]],
                  splits: Sequence[str] = ("train", "val", "test")) -> list[EncodedSplit]:
    """One EncodedSplit per split name, tables in feature order (each feature's tables in order)."""
    encoded = []
    for split in splits:
        rows = dataset.split_indices(split)
        tables: list = []
        for name in dataset.feature_names:
            offsets = dataset.sparse[name].offsets
            for table_rows in columns[name]:
                if offsets is None:
                    tables.append(np.ascontiguousarray(table_rows[rows]))
                else:
                    tables.append(take_bags(table_rows, offsets, rows))
        encoded.append(EncodedSplit(dense=np.asarray(dataset.dense[rows]),
                                    labels=np.asarray(dataset.labels[rows]),
                                    tables=tables))
    return encoded
