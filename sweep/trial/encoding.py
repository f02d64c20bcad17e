"""What a trial builds from a prepared dataset and its fitted mappers, besides the blocks it
trains on (`sweep.trial.stream`): the full mappers and the full model's layout, the feature
specs, and how many values each mapper's hash fallback serves.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from mappers import FullMapper
from mappers.base import ID_BYTES, LEARNED_HEADER_BYTES
from models import FeatureSpec
from sweep.datasets import PreparedDataset

__all__ = ["fallback_counts", "feature_specs", "fit_full_mappers", "full_model_layout"]


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


def fallback_counts(dataset: PreparedDataset, mappers: Mapping,
                    chunk_values: int = 1 << 22) -> dict[str, int]:
    """Per feature, how many of its stored values (every split) its mapper's hash fallback
    serves (`num_unseen_`), counted by transforming the column a chunk at a time."""
    counts = {}
    for name in dataset.feature_names:
        mapper, values = mappers[name], dataset.sparse[name].values
        mapper.num_unseen_ = 0
        for start in range(0, len(values), chunk_values):
            mapper.transform(np.asarray(values[start:start + chunk_values]))
        counts[name] = int(mapper.num_unseen_)
    return counts


def feature_specs(dataset: PreparedDataset, mappers: Mapping,
                  pooling: str = "sum") -> tuple[FeatureSpec, ...]:
    return tuple(
        FeatureSpec(name=name, table_sizes=tuple(int(s) for s in mappers[name].table_sizes),
                    combine=mappers[name].combine, multi_valued=dataset.sparse[name].multi_valued,
                    pooling=pooling, blocks=getattr(mappers[name], "blocks", ()),
                    managed=mappers[name].online)
        for name in dataset.feature_names
    )
