"""Stable 64-bit hashing for data preparation: row-seeded splits and string ids.

Never Python's salted `hash()`: a prepared dataset must give the same raw ids on every
machine and every run.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

__all__ = ["mix64", "stable_hash_strings"]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def mix64(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """splitmix64 finaliser of (x + seed * golden): a seeded bijection on uint64 (vectorised)."""
    z = np.asarray(x).astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        z += np.uint64(seed & 0xFFFFFFFFFFFFFFFF) * _GOLDEN + _GOLDEN
        z ^= z >> np.uint64(30)
        z *= _M1
        z ^= z >> np.uint64(27)
        z *= _M2
        z ^= z >> np.uint64(31)
    return z


def stable_hash_strings(values: Iterable[str]) -> np.ndarray:
    """int64 ids for strings: the first 8 bytes of blake2b(utf-8), hashed once per distinct value."""
    values = np.asarray(list(values), dtype=object)
    uniques, inverse = np.unique(values.astype(str), return_inverse=True)
    hashed = np.fromiter(
        (int.from_bytes(hashlib.blake2b(u.encode("utf-8"), digest_size=8).digest(), "little", signed=True)
         for u in uniques),
        dtype=np.int64, count=len(uniques),
    )
    return hashed[inverse.reshape(-1)]
