"""Stable 64-bit hashing for data preparation: row-seeded splits and string ids.

Never Python's salted `hash()`: a prepared dataset must give the same raw ids on every
machine and every run.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from mappers.hashing import mix64 as _keyed_mix64
from mappers.portable import text_ids

__all__ = ["mix64", "stable_hash_strings"]

_MASK = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15


def mix64(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """splitmix64 finaliser of (x + seed * golden + golden): a seeded bijection on uint64
    (vectorised).

    The finaliser itself is the mappers' (`mappers.hashing.mix64`): one hashing primitive.
    """
    key = np.uint64(((seed & _MASK) * _GOLDEN + _GOLDEN) & _MASK)
    ids = np.ascontiguousarray(np.asarray(x).astype(np.uint64)).view(np.int64)
    return _keyed_mix64(ids, key)


def stable_hash_strings(values: Iterable[str]) -> np.ndarray:
    """int64 ids for strings: the first 8 bytes of blake2b(utf-8), hashed once per distinct
    value. The serving loader's "text" encoding (`mappers.portable.text_ids`): one definition."""
    return text_ids(values)
