"""Vectorised exact lookup of raw int64 ids in a stored key set.

`IdIndex(keys, values)` is an open-addressing hash table with linear probing, built and
queried entirely in numpy. Capacity is a power of two with load <= MAX_LOAD; the home slot
of a key is the top bits of its splitmix64 hash; a slot is one 16-byte [key, value] record,
so a probe is a single random memory access. A query runs in two phases:

1. in cache-sized chunks: hash, gather the home slot's record, compare;
2. the queries whose home slot held another key probe on, all together, one vectorised
   round per probe step.

Its speed against np.searchsorted on the sorted keys is measured in benchmarks/README.md
("Mappers"). The table is an in-memory accelerator (16 bytes per slot, 2.5-5 slots per key)
rebuilt from (keys, values) on load: the state to ship and serve from is the sorted keys
and their rows, 12 bytes per id, and that is what mappers count in `nbytes`.
"""

from __future__ import annotations

import numpy as np

from .hashing import CHUNK, derive_key, mix64_into

MAX_LOAD = 0.4  # ~1.3 probes per hit, ~1.9 per miss
_INDEX_KEY = derive_key(0x1D, 0x1D)  # fixed: the index layout is not part of any mapping
MISSING = -1
_RECORD = np.dtype((np.void, 16))  # one [key, value] slot


class IdIndex:
    """Exact map from unique int64 keys to non-negative int32 values.

    Slots are 16-byte records [key, value] (value MISSING = empty slot), gathered as one
    np.void(16) item so a probe costs a single random memory access.
    """

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        keys = np.ascontiguousarray(keys, dtype=np.int64)
        values = np.asarray(values)
        assert keys.ndim == 1 and values.shape == keys.shape
        assert values.size == 0 or (values.min() >= 0 and values.max() < 2**31)
        self.size = keys.size
        self.bits = max(4, int(np.ceil(np.log2(max(keys.size, 1) / MAX_LOAD))))
        self._slots = np.zeros((1 << self.bits, 2), dtype=np.int64)  # (capacity, [key, value])
        self._slots[:, 1] = MISSING
        self._records = self._slots.view(_RECORD).reshape(-1)  # (capacity,) 16-byte items
        self._insert(keys, values.astype(np.int64))

    @property
    def memory_nbytes(self) -> int:
        """Bytes this in-memory table occupies (larger than the 12 bytes/id shipped state)."""
        return self._slots.nbytes

    def _home_slots(self, keys: np.ndarray) -> np.ndarray:
        """Home slot (int64) of each key: the top `bits` bits of its hash."""
        slots = np.empty(keys.size, dtype=np.uint64)
        tmp = np.empty(min(keys.size, CHUNK), dtype=np.uint64)
        shift = np.uint64(64 - self.bits)
        for start in range(0, keys.size, CHUNK):
            stop = min(start + CHUNK, keys.size)
            block = slots[start:stop]
            mix64_into(keys[start:stop], _INDEX_KEY, block, tmp[: stop - start])
            block >>= shift
        return slots.view(np.int64)

    def _insert(self, keys: np.ndarray, values: np.ndarray) -> None:
        """Linear-probing insertion, vectorised: each round, among the pending keys whose
        current slot is empty, the first claimant of each slot wins; the rest step on."""
        mask = (1 << self.bits) - 1
        pending = np.arange(keys.size)
        slots = self._home_slots(keys)
        while pending.size:
            free = self._slots[slots, 1] == MISSING
            claimed, first = np.unique(slots[free], return_index=True)
            winners = pending[free][first]
            self._slots[claimed, 0] = keys[winners]
            self._slots[claimed, 1] = values[winners]
            placed = np.zeros(pending.size, dtype=bool)
            placed[np.flatnonzero(free)[first]] = True
            pending = pending[~placed]
            slots = (slots[~placed] + 1) & mask

    def lookup(self, queries: np.ndarray) -> np.ndarray:
        """Values (int64) for a flat int64 query array; MISSING (-1) where the key is absent."""
        queries = np.ascontiguousarray(queries, dtype=np.int64)
        n = queries.size
        out = np.empty(n, dtype=np.int64)
        block = min(n, CHUNK)
        hashed, tmp = np.empty(block, dtype=np.uint64), np.empty(block, dtype=np.uint64)
        slots = np.empty(block, dtype=np.int64)
        records = np.empty(block, dtype=_RECORD)
        fetched = records.view(np.int64).reshape(block, 2)  # (block, [key, value])
        hit = np.empty(block, dtype=bool)
        shift = np.uint64(64 - self.bits)
        probing, probing_slots = [], []
        for start in range(0, n, CHUNK):  # phase 1: home slots, chunked to stay in cache
            stop = min(start + CHUNK, n)
            m = stop - start
            mix64_into(queries[start:stop], _INDEX_KEY, hashed[:m], tmp[:m])
            np.right_shift(hashed[:m], shift, out=slots[:m].view(np.uint64))
            np.take(self._records, slots[:m], out=records[:m], mode="clip")
            np.equal(fetched[:m, 0], queries[start:stop], out=hit[:m])
            block_out = out[start:stop]
            block_out[...] = fetched[:m, 1]
            occupied_by_other = np.flatnonzero((block_out != MISSING) & ~hit[:m])
            np.copyto(block_out, MISSING, where=~hit[:m])
            if occupied_by_other.size:
                probing.append(occupied_by_other + start)
                probing_slots.append(slots[occupied_by_other])
        if probing:  # phase 2: the rest probe on together, one round per step
            self._probe(queries, out, np.concatenate(probing), np.concatenate(probing_slots))
        return out

    def _probe(
        self, queries: np.ndarray, out: np.ndarray, active: np.ndarray, slots: np.ndarray
    ) -> None:
        """Continue linear probing for queries[active] from `slots`, writing hits to out."""
        mask = (1 << self.bits) - 1
        while active.size:
            slots = (slots + 1) & mask
            fetched = np.take(self._records, slots).view(np.int64).reshape(-1, 2)
            values = fetched[:, 1]
            match = fetched[:, 0] == queries[active]
            out[active[match]] = values[match]
            going_on = (values != MISSING) & ~match
            active, slots = active[going_on], slots[going_on]
