"""The mapper contract: raw int64 id -> embedding-table row(s); errors and validation.

Every strategy subclasses `Mapper`:

    mapper = get_mapper("frequency", num_rows=1000, hot_fraction=0.2, seed=0)
    mapper.fit(ids, counts, embeddings=None)   # training vocabulary: unique int64 ids [V],
                                               # int64 counts [V], probe embeddings [V, d]
    rows = mapper.transform(raw_ids)           # any shape, any int64 -> int64, same shape
                                               # two-table strategies: a tuple, one per table

Attributes the rest of the system relies on: `name` (registry key), `params` (constructor
params, JSON-serialisable), `table_sizes` (rows per table), `combine` ("none" for one
table, "sum" for double_hash, "mult" | "add" | "concat" for qr), `nbytes`, `num_unseen_`
(ids transformed since the last fit that were not in the fitted vocabulary), and
`to_bundle()` / `from_bundle()` (the bundle format and its digest: mappers/bundle.py).

`nbytes` is mapping_bytes of docs/DESIGN.md, the bytes serving must hold to map a raw id:
- hash-based (hash, double_hash, qr): 8 bytes per hash key + 8 bytes per table size
  (16, 32 and 24 bytes);
- learned (full, frequency, embedding, frequency_embedding): 12 bytes per explicitly stored
  id (8-byte key + 4-byte row) + LEARNED_HEADER_BYTES (hash key, table size, fallback range).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np

from .bundle import FORMAT_VERSION, describe_arrays, verify_arrays

ID_BYTES = 12  # 8-byte key + 4-byte row per explicitly stored id
LEARNED_HEADER_BYTES = 32  # hash key, num_rows, fallback range start and stop
KEY_BYTES = 8  # one 64-bit hash key
SIZE_BYTES = 8  # one table size
MAX_ROWS = 2**31 - 1  # rows are stored as 4-byte ints
UNSEEN_POLICIES = ("hash", "oov_row", "error")


class NotFittedError(ValueError):
    """transform / to_bundle called before fit."""


class UnseenIdError(KeyError, ValueError):
    """transform met ids outside the fitted vocabulary under unseen="error"."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


# ---------------------------------------------------------------- argument validation


def check_int(name: str, value: Any, minimum: int, maximum: int | None = None) -> int:
    """`value` as a Python int in [minimum, maximum], else ValueError naming `name`."""
    allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < minimum or (maximum is not None and value > maximum):
        raise ValueError(f"{name} must be an int {allowed}, got {value!r}")
    return int(value)


def check_optional_int(name: str, value: Any, minimum: int) -> int | None:
    """None, or `value` as an int >= minimum."""
    if value is None:
        return None
    allowed = f"None or an int >= {minimum}"
    ok = isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)
    if not ok or value < minimum:
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return int(value)


def check_float(name: str, value: Any, low: float, high: float, *, low_open: bool) -> float:
    """`value` as a finite float in (low, high] (low_open) or [low, high]."""
    bracket = "(" if low_open else "["
    ok = isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )
    if ok:
        v = float(value)
        ok = math.isfinite(v) and (v > low if low_open else v >= low) and v <= high
    if not ok:
        raise ValueError(f"{name} must be a number in {bracket}{low}, {high}], got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, allowed: Sequence[str]) -> str:
    """`value` if it is one of `allowed`, else ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")
    return value


def as_id_array(ids: Any, name: str = "ids") -> np.ndarray:
    """Integer array-like -> int64 array of the same shape (uint64 reinterpreted).

    Floats, bools, strings and objects are refused, never cast; an empty Python
    sequence (which numpy would type as float64) is an empty int64 array.
    """
    array = np.asarray(ids)
    if array.size == 0 and not isinstance(ids, np.ndarray):
        return array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise ValueError(
            f"{name} must be an integer array (int64 raw ids), got dtype {array.dtype}"
        )
    if array.dtype == np.uint64:
        return array.view(np.int64)
    return array.astype(np.int64, copy=False)


def check_vocabulary(
    ids: Any, counts: Any, embeddings: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate fit inputs; returns (ids, counts, embeddings) SORTED by id.

    ids: unique int64 [V]; counts: non-negative ints [V]; embeddings: None or finite
    floats [V, d], all aligned with ids.
    """
    ids = as_id_array(ids)
    if ids.ndim != 1:
        raise ValueError(f"ids must be 1-D (the vocabulary), got shape {ids.shape}")
    counts = np.asarray(counts)
    if counts.dtype.kind not in "iu" or counts.shape != ids.shape:
        raise ValueError(
            f"counts must be integers aligned with ids (shape {ids.shape}), "
            f"got dtype {counts.dtype} shape {counts.shape}"
        )
    counts = counts.astype(np.int64)
    if counts.size and counts.min() < 0:
        raise ValueError(f"counts must be >= 0, got min {counts.min()}")
    if bool(np.all(ids[1:] > ids[:-1])):  # sorted and unique already, as vocabularies are
        order = None  # stored: no reordered copies (of the [V, d] embeddings above all)
        ids = ids.copy()  # the mapper keeps these as its keys; the caller keeps its array
    else:
        order = np.argsort(ids, kind="stable")
        ids, counts = ids[order], counts[order]
        duplicated = ids[1:][ids[1:] == ids[:-1]]
        if duplicated.size:
            raise ValueError(
                f"ids must be unique, got {duplicated.size} duplicates, "
                f"e.g. {duplicated[:5].tolist()}"
            )
    if embeddings is not None:
        embeddings = np.asarray(embeddings)
        if embeddings.dtype.kind not in "fiu" or embeddings.shape[:1] != ids.shape:
            raise ValueError(
                f"embeddings must be a float array [V, d] aligned with ids (V={ids.size}), "
                f"got dtype {embeddings.dtype} shape {embeddings.shape}"
            )
        if embeddings.ndim != 2 or not np.isfinite(embeddings).all():
            raise ValueError(f"embeddings must be 2-D and finite, got shape {embeddings.shape}")
        embeddings = embeddings if order is None else embeddings[order]
    return ids, counts, embeddings


# ---------------------------------------------------------------- the contract


class Mapper(ABC):
    """Abstract id -> row mapper. Subclasses set `name` and implement the hooks below."""

    name: ClassVar[str]
    combine: str = "none"
    # Traits: what the rest of the system asks of a strategy instead of comparing its name.
    # Built with `num_rows`, which a compression sets (rows = ceil(vocab / compression));
    # False: its rows follow from the vocabulary, and a compression has no effect.
    takes_compression: ClassVar[bool] = True
    # fit needs the probe's embeddings [V, d] (a learned map); such a map also takes `min_count`,
    # below which ids are hashed, since the probe learns from the training labels.
    needs_embeddings: ClassVar[bool] = False
    # Built with `dim`, the grid's embedding dim (its blocks' dims follow from it): a trial
    # passes its own, and a `dim` among the strategy's params is refused.
    takes_dim: ClassVar[bool] = False
    # Maps one id per sample only: a multi-valued (bag) feature is refused before a sweep starts.
    needs_single_valued: ClassVar[bool] = False
    # Its rows move during training (mch): the trainer feeds it the training batches' ids
    # (`observe`) and applies its `update`s; frozen after training (models/online.py).
    online: ClassVar[bool] = False
    is_baseline: ClassVar[bool] = False  # reports compare every other strategy with this one
    # Other strategies reports also compare it with, paired by seed: what it adds to each.
    compared_with: ClassVar[tuple[str, ...]] = ()
    report_rank: ClassVar[int] = 100  # its place in reports and tables (equal ranks: by name)

    def __init__(self, *, seed: int = 0) -> None:
        self.seed = check_int("seed", seed, minimum=0, maximum=2**63 - 1)
        self._params: dict[str, Any] = {"seed": self.seed}
        self._hash_keys = np.empty(0, dtype=np.uint64)  # 64-bit hash keys derived from seed
        self._fitted = False
        self.num_unseen_ = 0

    # -- hooks for subclasses
    @abstractmethod
    def _fit(self, ids: np.ndarray, counts: np.ndarray, embeddings: np.ndarray | None) -> None:
        """Learn state from the SORTED vocabulary (ids ascending, counts/embeddings aligned)."""

    @abstractmethod
    def _transform_flat(self, ids: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Rows for a flat int64 id array (one array per table for multi-table mappers)."""

    def _state_arrays(self) -> dict[str, np.ndarray]:
        """Fitted state as plain numeric arrays (what a bundle stores besides hash_keys)."""
        return {}

    def _load_state(self, arrays: dict[str, np.ndarray]) -> None:  # noqa: B027 (stateless default)
        """Restore fitted state from `_state_arrays()` output (stateless mappers: nothing)."""

    @property
    @abstractmethod
    def table_sizes(self) -> tuple[int, ...]:
        """Rows per table."""

    @property
    @abstractmethod
    def nbytes(self) -> int:
        """Bytes serving must hold to map a raw id (see the module docstring)."""

    # -- public API
    @property
    def params(self) -> dict[str, Any]:
        """Constructor params (JSON-serialisable); `type(m)(**m.params)` rebuilds m unfitted."""
        return dict(self._params)

    @property
    def is_fitted(self) -> bool:
        return self._fitted

    def fit(self, ids: Any, counts: Any, embeddings: Any = None) -> Mapper:
        """Fit on the training vocabulary; replaces any earlier state and resets num_unseen_."""
        ids, counts, embeddings = check_vocabulary(ids, counts, embeddings)
        self._fitted = False
        self._fit(ids, counts, embeddings)
        self._fitted = True
        self.num_unseen_ = 0
        return self

    def transform(self, ids: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """int64 raw ids (any shape) -> int64 rows of the same shape, in [0, table size)."""
        self._check_fitted("transform")
        array = as_id_array(ids)
        rows = self._transform_flat(np.ascontiguousarray(array).reshape(-1))
        if isinstance(rows, tuple):
            return tuple(r.reshape(array.shape) for r in rows)
        return rows.reshape(array.shape)

    def to_bundle(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(manifest, arrays) describing this fitted mapper; see mappers/bundle.py.

        The manifest has no "digest" yet: `save_bundle` adds it when writing.
        """
        self._check_fitted("to_bundle")
        arrays = {"hash_keys": self._hash_keys.copy(), **self._state_arrays()}
        manifest = {
            "format_version": FORMAT_VERSION,
            "strategy": self.name,
            "params": self.params,
            "table_sizes": list(self.table_sizes),
            "combine": self.combine,
            "nbytes": self.nbytes,
            "arrays": describe_arrays(arrays),
        }
        return manifest, arrays

    @classmethod
    def from_bundle(cls, manifest: dict[str, Any], arrays: dict[str, np.ndarray]) -> Mapper:
        """Rebuild a fitted mapper from `to_bundle()` or `read_bundle()` output.

        Verifies every array checksum and that the manifest's sizes are what the arrays
        give; the manifest digest, if any, is `read_bundle`'s to check.
        """
        if manifest.get("strategy") != cls.name:
            raise ValueError(
                f"bundle strategy is {manifest.get('strategy')!r}, cannot load it as {cls.name!r}"
            )
        verify_arrays(manifest, arrays, source="bundle arrays")
        mapper = cls(**manifest.get("params", {}))
        state = dict(arrays)
        hash_keys = state.pop("hash_keys", None)
        if hash_keys is None or not np.array_equal(hash_keys, mapper._hash_keys):
            raise ValueError("bundle array 'hash_keys' does not match the seed in its params")
        mapper._load_state(state)
        mapper._fitted = True
        for field in ("table_sizes", "combine", "nbytes"):
            value = getattr(mapper, field)
            value = list(value) if field == "table_sizes" else value
            if manifest.get(field) != value:
                raise ValueError(
                    f"bundle manifest says {field}={manifest.get(field)!r} "
                    f"but its arrays give {value!r}"
                )
        return mapper

    def _check_fitted(self, what: str) -> None:
        if not self._fitted:
            raise NotFittedError(
                f"{type(self).__name__} ({self.name!r}) is not fitted: call "
                f"fit(ids, counts, embeddings) before {what}"
            )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._params.items())
        return f"{type(self).__name__}({args})"
