"""A split as blocks of rows, and the seeded order in which training visits them.

The trainer never needs a whole split in memory: it takes a `SplitBlocks`, anything that
hands out block `i` of a split as an `EncodedSplit` (the rows of the block, in order).
`InMemoryBlocks` cuts an `EncodedSplit` that is already in memory into blocks;
`sweep.trial.stream.PreparedBlocks` reads them from a prepared dataset's memory-mapped
columns and maps the raw ids as it goes, so a trial holds a few blocks at a time however
many rows the data has.

The shuffle (`epoch_windows`), seeded and documented because results depend on it:

1. every epoch, the blocks are put in a random order (`torch.randperm` of the block count,
   from the trainer's generator);
2. that order is cut into windows of `window_blocks` consecutive blocks;
3. a window's rows are concatenated and visited in a random order (`torch.randperm` of the
   window's rows), in batches of the batch size; a window's last batch may be smaller.

So every row is visited exactly once per epoch, the same seed gives the same order, and the
memory held is one window, whatever the size of the split. A split of at most one window
(`window_blocks` x block rows) is shuffled as a whole, like a plain `randperm` of its rows.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import islice, pairwise
from typing import Protocol, TypeVar, runtime_checkable

import numpy as np
import torch
from torch import Tensor

from models.batch import EncodedSplit

__all__ = ["BLOCK_ROWS", "WINDOW_BLOCKS", "InMemoryBlocks", "SplitBlocks", "as_blocks",
           "built_ahead", "concat_splits", "epoch_windows", "shuffled_windows", "slice_split"]

T = TypeVar("T")
P = TypeVar("P")
W = TypeVar("W")
PREFETCH_THREAD = "collide-prefetch"  # the name (prefix) of the threads that build windows ahead

# Rows per block of a split held in memory, and blocks per shuffle window: a window of 2^18
# rows is ~70 MB of Criteo-like rows (26 int64 ids, 13 float32 dense) before fusing.
BLOCK_ROWS = 1 << 15
WINDOW_BLOCKS = 8


@runtime_checkable
class SplitBlocks(Protocol):
    """One split, readable a block of rows at a time."""

    @property
    def num_samples(self) -> int:
        """Rows of the split (the sum of its blocks' rows)."""

    @property
    def num_blocks(self) -> int:
        """Blocks of the split; each holds at least one row."""

    def block(self, index: int) -> EncodedSplit:
        """The rows of block `index`, in order."""

    def click_rate(self) -> float:
        """Mean label of the split."""


def slice_split(split: EncodedSplit, start: int, stop: int) -> EncodedSplit:
    """Rows [start, stop) of `split` (bags re-based to start at 0); views where it can."""
    tables: list = []
    for entry in split.tables:
        if isinstance(entry, tuple):
            rows, offsets = entry
            first, last = int(offsets[start]), int(offsets[stop])
            tables.append((rows[first:last], np.asarray(offsets[start:stop + 1]) - first))
        else:
            tables.append(entry[start:stop])
    return EncodedSplit(dense=split.dense[start:stop], labels=split.labels[start:stop],
                        tables=tables)


def concat_splits(parts: Sequence[EncodedSplit]) -> EncodedSplit:
    """The rows of `parts`, one after the other, as one EncodedSplit."""
    if len(parts) == 1:
        return parts[0]
    tables: list = []
    for t, entry in enumerate(parts[0].tables):
        if isinstance(entry, tuple):
            rows = np.concatenate([np.asarray(p.tables[t][0]) for p in parts])
            bases = np.cumsum([0] + [len(p.tables[t][0]) for p in parts[:-1]])
            offsets = np.concatenate(
                [np.zeros(1, np.int64)]
                + [np.asarray(p.tables[t][1][1:], np.int64) + b for p, b in zip(parts, bases,
                                                                                 strict=True)])
            tables.append((rows, offsets))
        else:
            tables.append(np.concatenate([np.asarray(p.tables[t]) for p in parts]))
    return EncodedSplit(dense=np.concatenate([p.dense for p in parts]),
                        labels=np.concatenate([p.labels for p in parts]), tables=tables)


class InMemoryBlocks:
    """An EncodedSplit cut into blocks: of `block_rows` rows, or at the row offsets `bounds`
    (0 = bounds[0] < ... < bounds[-1] = the split's rows)."""

    def __init__(self, split: EncodedSplit, block_rows: int = BLOCK_ROWS,
                 bounds: Sequence[int] | None = None):
        n = split.num_samples
        if bounds is None:
            bounds = [*range(0, n, block_rows), n] if n else [0]
        bounds = [int(b) for b in bounds]
        if bounds[0] != 0 or bounds[-1] != n or any(b <= a for a, b in pairwise(bounds)):
            raise ValueError(f"block bounds must rise from 0 to the split's {n} rows, got "
                             f"{bounds[:5]}...")
        self.split, self.bounds = split, bounds

    @property
    def num_samples(self) -> int:
        return self.split.num_samples

    @property
    def num_blocks(self) -> int:
        return len(self.bounds) - 1

    def block(self, index: int) -> EncodedSplit:
        return slice_split(self.split, self.bounds[index], self.bounds[index + 1])

    def click_rate(self) -> float:
        return float(np.mean(self.split.labels, dtype=np.float64))


def as_blocks(split: EncodedSplit | SplitBlocks) -> SplitBlocks:
    """A split as blocks: an EncodedSplit is cut into InMemoryBlocks; blocks stay as they are."""
    return InMemoryBlocks(split) if isinstance(split, EncodedSplit) else split


def epoch_windows(num_blocks: int, window_blocks: int,
                  generator: torch.Generator) -> list[list[int]]:
    """This epoch's windows: the blocks in a random order, `window_blocks` at a time (steps 1
    and 2 of the module's shuffle)."""
    order = torch.randperm(num_blocks, generator=generator).tolist()
    return [order[i:i + window_blocks] for i in range(0, num_blocks, window_blocks)]


def shuffled_windows(split: SplitBlocks, generator: torch.Generator,
                     window_blocks: int = WINDOW_BLOCKS,
                     build: Callable[[EncodedSplit], W] | None = None,
                     threads: int = 0) -> Iterator[tuple[W, Tensor]]:
    """One epoch of the shuffle (the module docstring): each window's rows, and the random
    order (int64 positions into them) in which training visits them.

    `build(rows)` (default: the rows as they are) is what is handed out for a window; with
    `threads` > 0 the windows are read and built by that many background threads, ahead of the
    consumer (`built_ahead`). The order is drawn from `generator` when a window is handed out,
    so the shuffle is the same with or without threads.
    """
    def make(window: list[int]) -> W:
        rows = concat_splits([split.block(i) for i in window])
        return rows if build is None else build(rows)

    windows = epoch_windows(split.num_blocks, window_blocks, generator)
    built = built_ahead(make, windows, threads) if threads > 0 else map(make, windows)
    try:
        for item in built:
            yield item, torch.randperm(item.num_samples, generator=generator)
    finally:
        if threads > 0:
            built.close()  # stops and joins the threads


def built_ahead(build: Callable[[P], T], plans: Iterable[P], threads: int = 1) -> Iterator[T]:
    """`build(plan)` for each of `plans`, in order, made by `threads` background threads at most
    `threads` items ahead of the consumer.

    On CUDA the trainer builds the next shuffle windows (reading and mapping their blocks,
    fusing their lookup arrays, pinning them) while the GPU trains on this one. An exception
    raised by `build` is raised to the consumer at that item's place in the sequence. When the
    consumer stops early (or is closed), the builds not yet started are cancelled and the
    threads are joined: they outlive neither.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    plans = iter(plans)
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=PREFETCH_THREAD)
    pending: deque[Future[T]] = deque(pool.submit(build, plan) for plan in islice(plans, threads))
    try:
        while pending:
            item = pending.popleft().result()
            pending.extend(pool.submit(build, plan) for plan in islice(plans, 1))
            yield item
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
