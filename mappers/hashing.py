"""Seeded 64-bit hashing of raw ids, shared by every strategy.

`mix64` is the splitmix64 finaliser (Steele et al., 2014) applied to `id + key`, where
`key` is a 64-bit hash key derived from the mapper's seed. The finaliser is a bijection on
uint64 with full avalanche, so sequential ids spread like random ones. Rows come from
Lemire's multiply-shift range reduction on the high 32 bits, `(h >> 32) * n >> 32`, which
is unbiased to within n / 2**32 and never uses `x % n`.

Everything runs on uint64 arrays in chunks of `CHUNK` elements with in-place ufuncs, so the
temporaries stay in cache (faster than whole-array expressions; benchmarks/mappers.py times it).
"""

from __future__ import annotations

import numpy as np

CHUNK = 1 << 15  # elements per in-place block: 256 KiB of uint64, fits in L2
MAX_RANGE = 1 << 32  # largest range the 32-bit multiply-shift can reduce into

_GAMMA = np.uint64(0x9E3779B97F4A7C15)  # golden-ratio increment of splitmix64
_MUL1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL2 = np.uint64(0x94D049BB133111EB)
_S27, _S30, _S31, _S32 = (np.uint64(s) for s in (27, 30, 31, 32))
_LOW32 = np.uint64(0xFFFFFFFF)


def _finalise(z: np.ndarray, tmp: np.ndarray) -> None:
    """splitmix64 finaliser on a uint64 block, in place; `tmp` is scratch of the same size."""
    np.right_shift(z, _S30, out=tmp)
    z ^= tmp
    z *= _MUL1
    np.right_shift(z, _S27, out=tmp)
    z ^= tmp
    z *= _MUL2
    np.right_shift(z, _S31, out=tmp)
    z ^= tmp


def derive_key(seed: int, stream: int) -> np.uint64:
    """A well-mixed 64-bit hash key for (seed, stream); distinct pairs give distinct keys."""
    mask = 0xFFFFFFFFFFFFFFFF
    gamma = int(_GAMMA)
    z = np.array([((seed + 1) * gamma) & mask], dtype=np.uint64)
    tmp = np.empty_like(z)
    _finalise(z, tmp)
    z[0] = (int(z[0]) + (stream + 1) * gamma) & mask
    _finalise(z, tmp)
    return np.uint64(z[0])


def mix64_into(ids: np.ndarray, key: np.uint64, out: np.ndarray, tmp: np.ndarray) -> None:
    """out = splitmix64(ids + key) for int64 `ids`; `out` and `tmp` are uint64 of ids' size."""
    np.add(ids.view(np.uint64), key, out=out)
    _finalise(out, tmp)


def mix64(ids: np.ndarray, key: np.uint64) -> np.ndarray:
    """Mixed 64-bit hash (uint64, shape of `ids`) of int64 `ids` under hash key `key`."""
    flat = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    out = np.empty(flat.size, dtype=np.uint64)
    tmp = np.empty(min(flat.size, CHUNK), dtype=np.uint64)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        mix64_into(flat[start:stop], key, out[start:stop], tmp[: stop - start])
    return out.reshape(np.shape(ids))


def _reduce_high(h: np.ndarray, size: int) -> None:
    """In place: h = (h >> 32) * size >> 32, i.e. the high half mapped into [0, size)."""
    h >>= _S32
    h *= np.uint64(size)
    h >>= _S32


def _reduce_low(h: np.ndarray, size: int) -> None:
    """In place: h = (h & 0xffffffff) * size >> 32, i.e. the low half mapped into [0, size)."""
    h &= _LOW32
    h *= np.uint64(size)
    h >>= _S32


def hash_to_range(ids: np.ndarray, key: np.uint64, size: int, offset: int = 0) -> np.ndarray:
    """Rows in [offset, offset + size) for int64 `ids` (any shape): int64, same shape."""
    assert 1 <= size <= MAX_RANGE, size
    flat = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    out = np.empty(flat.size, dtype=np.uint64)
    tmp = np.empty(min(flat.size, CHUNK), dtype=np.uint64)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        block = out[start:stop]
        mix64_into(flat[start:stop], key, block, tmp[: stop - start])
        _reduce_high(block, size)
    rows = out.view(np.int64)
    if offset:
        rows += offset
    return rows.reshape(np.shape(ids))


def hash_to_pair(
    ids: np.ndarray, key: np.uint64, high_size: int, low_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Two rows from ONE hash: its high 32 bits into [0, high_size), low 32 into [0, low_size).

    Equivalent to hashing into a virtual id v in [0, high_size * low_size) and returning
    (v // low_size, v % low_size) - the quotient-remainder split of a hashed id.
    """
    assert 1 <= high_size <= MAX_RANGE and 1 <= low_size <= MAX_RANGE
    flat = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    high = np.empty(flat.size, dtype=np.uint64)
    low = np.empty(flat.size, dtype=np.uint64)
    tmp = np.empty(min(flat.size, CHUNK), dtype=np.uint64)
    for start in range(0, flat.size, CHUNK):
        stop = min(start + CHUNK, flat.size)
        hi_block, lo_block = high[start:stop], low[start:stop]
        mix64_into(flat[start:stop], key, hi_block, tmp[: stop - start])
        lo_block[...] = hi_block
        _reduce_high(hi_block, high_size)
        _reduce_low(lo_block, low_size)
    shape = np.shape(ids)
    return high.view(np.int64).reshape(shape), low.view(np.int64).reshape(shape)
