"""A split of a prepared dataset, read a block of rows at a time and mapped as it is read.

`PreparedBlocks` is what a trial trains and evaluates on (a `models.stream.SplitBlocks`).
Block `i` holds the split's rows among the raw rows [start_i, start_i + BLOCK_ROWS) (the
block size of `models.stream`): their labels, dense values and sparse ids are sliced from the
memory-mapped columns (so every trial on a node shares the page cache), and each feature's
ids go through the trial's fitted mapper (an online map's, mch's, stay raw ids: the model maps
them as it trains, models/online.py). Nothing the size of a column is copied: a trial
holds one shuffle window of blocks (models.stream), and its memory does not grow with the
data's rows.

`RowSample(fraction, seed)` keeps a seeded share of the rows (the probe's `max_rows`, the
validation sample of `eval_every_rows`): row r is kept when the splitmix64 hash of r,
salted with the seed, falls below `fraction`. It needs no state and no list of rows, and the
same seed keeps the same rows on every machine.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from models import EncodedSplit
from models.stream import BLOCK_ROWS
from sweep.datasets import PreparedDataset
from sweep.datasets.prepared import SPLIT_CODES, take_bags
from sweep.hashing import mix64

__all__ = ["BLOCK_ROWS", "PreparedBlocks", "RowSample", "sample_for"]

# salts the row sample's hash, so that a sample never lines up with the split (also mix64 of
# the row number, seeded by the split's seed)
_SAMPLE_SALT = 0x5A3D_9C1B


@dataclass(frozen=True)
class RowSample:
    """Keep a seeded `fraction` of the rows (see the module docstring)."""

    fraction: float
    seed: int = 0

    def keep(self, start: int, stop: int) -> np.ndarray:
        """bool [stop - start]: which of the raw rows [start, stop) are kept."""
        rows = np.arange(start, stop, dtype=np.uint64)
        u = (mix64(rows, seed=_SAMPLE_SALT + self.seed) >> np.uint64(11)).astype(np.float64)
        return u / float(2**53) < self.fraction


def sample_for(rows: int, wanted: int | None, seed: int) -> RowSample | None:
    """The sample that keeps about `wanted` of `rows` rows; None (all rows) when `wanted` is None
    or not below `rows`."""
    if wanted is None or wanted >= rows:
        return None
    return RowSample(wanted / rows, seed)


class PreparedBlocks:
    """Split `split` of `dataset`, blocks of its rows mapped by `mappers` (one per feature);
    with `sample`, only the rows it keeps."""

    def __init__(self, dataset: PreparedDataset, split: str, mappers: Mapping,
                 sample: RowSample | None = None, block_rows: int = BLOCK_ROWS):
        if split not in SPLIT_CODES:
            raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
        self.dataset, self.split, self.mappers = dataset, split, mappers
        self.code, self.sample, self.block_rows = SPLIT_CODES[split], sample, block_rows
        # one pass over split.npy (and the sample): the blocks that hold rows of this split
        self.starts: list[int] = []
        self._rows = 0
        self._label_sum = 0.0
        labels = dataset.labels
        for start in range(0, dataset.num_rows, block_rows):
            mask = self._mask(start)
            count = int(mask.sum())
            if count:
                self.starts.append(start)
                self._rows += count
                stop = start + len(mask)
                self._label_sum += float(np.asarray(labels[start:stop])[mask].sum(
                    dtype=np.float64))

    def _mask(self, start: int) -> np.ndarray:
        stop = min(start + self.block_rows, self.dataset.num_rows)
        mask = np.asarray(self.dataset.split[start:stop]) == self.code
        if self.sample is not None:
            mask &= self.sample.keep(start, stop)
        return mask

    @property
    def num_samples(self) -> int:
        return self._rows

    @property
    def num_blocks(self) -> int:
        return len(self.starts)

    def click_rate(self) -> float:
        return self._label_sum / self._rows if self._rows else float("nan")

    def block(self, index: int) -> EncodedSplit:
        start = self.starts[index]
        mask = self._mask(start)
        stop = start + len(mask)
        data = self.dataset
        tables: list = []
        for name in data.feature_names:
            column = data.sparse[name]
            if column.offsets is None:
                ids = np.asarray(column.values[start:stop])[mask]
                if self.mappers[name].online:  # the model maps them (mch)
                    tables.append(ids.astype(np.int64, copy=False))
                    continue
                mapped = self.mappers[name].transform(ids)
                tables.extend(mapped if isinstance(mapped, tuple) else (mapped,))
                continue
            offsets = np.asarray(column.offsets[start:stop + 1], dtype=np.int64)
            values = np.asarray(column.values[offsets[0]:offsets[-1]])
            bags, bag_offsets = take_bags(values, offsets - offsets[0], np.flatnonzero(mask))
            mapped = self.mappers[name].transform(bags)
            tables.extend((rows, bag_offsets)
                          for rows in (mapped if isinstance(mapped, tuple) else (mapped,)))
        return EncodedSplit(dense=np.asarray(data.dense[start:stop])[mask],
                            labels=np.asarray(data.labels[start:stop])[mask], tables=tables)
