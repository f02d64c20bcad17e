"""Categorical values to raw ids: the reserved missing id, stable string hashes, bags of ids.

Shared by the `recbole` and `table` sources, so the same string gives the same raw id in
both (the first 8 bytes of blake2b of its UTF-8, see `sweep.hashing.stable_hash_strings`).

Missing values: a null or empty string becomes `MISSING_ID`; a row whose bag has no id at
all (null, empty, or only separators) becomes the one-id bag [MISSING_ID], so every row
of a multi-valued feature has at least one id.

Integers keep their int64 value; uint64 values keep their 64-bit pattern (2**64 - 1 -> -1,
like a 16-hex-digit Criteo id), so every uint64 maps to a distinct int64.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from mappers.portable import MISSING_ID as SERVING_MISSING_ID
from sweep.hashing import stable_hash_strings

__all__ = ["MISSING_ID", "bags_from_lists", "hash_tokens", "integer_ids", "split_bags"]

MISSING_ID = SERVING_MISSING_ID  # raw id of an empty / missing categorical value, in every source


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def hash_tokens(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """int64 [n] raw ids of strings, each distinct value hashed once; null or "" -> MISSING_ID."""
    encoded = pc.dictionary_encode(_plain(values).cast(pa.string()))
    words = encoded.dictionary.to_pylist()
    table = np.append(stable_hash_strings(words) if words else np.zeros(0, np.int64), MISSING_ID)
    table[:-1][np.asarray([w == "" for w in words], dtype=bool)] = MISSING_ID
    index = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    return table[index]


def integer_ids(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """int64 [n] of an integer (or boolean) array; uint64 by bit pattern; null -> MISSING_ID."""
    values = _plain(values)
    values = pc.cast(values, pa.int64(), safe=not pa.types.is_uint64(values.type))
    return pc.fill_null(values, MISSING_ID).to_numpy(zero_copy_only=False).astype(np.int64)


def bags_from_lists(lists: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids [nnz], int64 lengths [n]) of a list array of strings (hashed) or integers.

    Null and "" elements are dropped; a row left with no id gets [MISSING_ID].
    """
    lists = _plain(lists)
    n = len(lists)
    lengths = pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(
        np.int64)
    flat = pc.list_flatten(lists)  # null lists contribute nothing
    row = np.repeat(np.arange(n, dtype=np.int64), lengths)
    if pa.types.is_string(flat.type) or pa.types.is_large_string(flat.type):
        keep = pc.fill_null(pc.not_equal(flat, ""), False)
        ids = hash_tokens(flat.filter(keep))
    elif pa.types.is_integer(flat.type) or pa.types.is_boolean(flat.type):
        keep = pc.is_valid(flat)
        ids = integer_ids(flat.filter(keep))
    else:
        raise TypeError(f"bag elements must be strings or integers, got {flat.type}")
    row = row[keep.to_numpy(zero_copy_only=False)]
    counts = np.bincount(row, minlength=n).astype(np.int64)
    empty = counts == 0
    out = np.full(int(counts.sum() + empty.sum()), MISSING_ID, dtype=np.int64)
    empties_before = np.cumsum(empty) - empty
    out[np.arange(len(ids)) + empties_before[row]] = ids
    return out, np.maximum(counts, 1)


def split_bags(values: pa.Array | pa.ChunkedArray, separator: str) -> tuple[np.ndarray, np.ndarray]:
    """Bags of separator-joined string tokens, e.g. "Action Comedy" with separator " "."""
    return bags_from_lists(pc.split_pattern(_plain(values).cast(pa.string()), separator))
