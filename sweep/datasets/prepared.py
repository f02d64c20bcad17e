"""Loading a prepared dataset: verify its manifest, memory-map every column.

See `sweep.datasets.store` for the on-disk layout. Nothing here copies a column: every
array is a read-only `np.memmap`, so many Ray trials on one node share the page cache.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sweep.errors import DataError

__all__ = [
    "FORMAT_VERSION",
    "PreparedDataError",
    "PreparedDataset",
    "SparseColumn",
    "Vocabulary",
    "load_prepared",
    "read_manifest",
    "take_bags",
]

FORMAT_VERSION = 2  # 2: each feature's encoding (how raw values became ids)
READABLE_VERSIONS = (1, 2)  # 1 trains as well; only its exports cannot map raw values
SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


class PreparedDataError(DataError):
    """A prepared-data directory is missing, incomplete or corrupt."""


@dataclass(frozen=True)
class SparseColumn:
    values: np.ndarray  # int64 [N] or [nnz]
    offsets: np.ndarray | None  # int64 [N + 1] for multi-valued features

    @property
    def multi_valued(self) -> bool:
        return self.offsets is not None

    def rows_between(self, start: int, stop: int, row_mask: np.ndarray) -> np.ndarray:
        """Raw ids of the rows [start, stop) that `row_mask` [stop - start] selects (flattened for
        bags); reads only those rows' part of the column."""
        if self.offsets is None:
            return np.asarray(self.values[start:stop])[row_mask]
        offsets = np.asarray(self.offsets[start:stop + 1])
        values = np.asarray(self.values[offsets[0]:offsets[-1]])
        return values[np.repeat(row_mask, np.diff(offsets))]

    def rows_of(self, row_mask: np.ndarray) -> np.ndarray:
        """Raw ids of the rows selected by a boolean mask [N] (flattened for bags)."""
        if self.offsets is None:
            return np.asarray(self.values[row_mask])
        lengths = np.diff(self.offsets)
        return np.asarray(self.values[np.repeat(row_mask, lengths)])


@dataclass(frozen=True)
class Vocabulary:
    ids: np.ndarray  # int64 [V], sorted distinct raw ids of the train split
    counts: np.ndarray  # int64 [V], occurrences in the train split


@dataclass(frozen=True)
class PreparedDataset:
    path: Path
    manifest: dict
    labels: np.ndarray  # float32 [N]
    dense: np.ndarray  # float32 [N, num_dense]
    split: np.ndarray  # int8 [N]: 0 train, 1 val, 2 test
    sparse: dict[str, SparseColumn]
    vocab: dict[str, Vocabulary]  # empty while the writer is still counting
    extras: dict[str, np.ndarray]  # per-row extras, e.g. "true_prob"
    meta: dict[str, dict[str, np.ndarray]]  # per-feature extras, e.g. planted clusters

    @property
    def feature_names(self) -> list[str]:
        return [f["name"] for f in self.manifest["features"]]

    @property
    def num_rows(self) -> int:
        return int(self.manifest["num_rows"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    def split_indices(self, name: str) -> np.ndarray:
        """Row indices (int64) of split `name`: 'train', 'val' or 'test'."""
        if name not in SPLIT_CODES:
            raise ValueError(f"split must be one of {sorted(SPLIT_CODES)}, got {name!r}")
        return np.flatnonzero(np.asarray(self.split) == SPLIT_CODES[name])

    def first_non_finite_dense(self, chunk_rows: int = 1 << 20) -> tuple[int, int, float] | None:
        """(row, column, value) of the first NaN or inf in the dense columns, read in chunks;
        None when they are all finite (as prepare writes them)."""
        dense = self.dense
        for start in range(0, len(dense), chunk_rows):
            bad = ~np.isfinite(np.asarray(dense[start:start + chunk_rows]))
            if bad.any():
                row, column = (int(i) for i in np.argwhere(bad)[0])
                return start + row, column, float(dense[start + row, column])
        return None

    @property
    def time_ordered(self) -> bool:
        """Whether the rows have a time order: a per-row extra "time", or a sequential split (rows
        in order)."""
        return "time" in self.extras or self.manifest.get("split", {}).get("kind") == "sequential"

    def test_windows(self, count: int) -> list[np.ndarray]:
        """The test split cut into `count` consecutive time windows of equal size (+-1 row),
        earliest first: for each, positions into `split_indices("test")`. Time is the extra
        "time" (ties in row order), else the row order of a sequential split; other data has no
        time to cut by."""
        if count < 1:
            raise DataError(f"test windows must be >= 1, got {count}")
        test = self.split_indices("test")
        if count == 1:
            return [np.arange(len(test))]
        if not self.time_ordered:
            kind = self.manifest.get("split", {}).get("kind")
            raise PreparedDataError(
                f"{self.path}: {count} test windows need rows in time order, but this data has a "
                f"{kind!r} split and no per-row time; prepare it with split 'sequential' "
                "(synthetic, criteo, table) or 'timestamp' (recbole)")
        if len(test) < count:
            raise PreparedDataError(f"{self.path}: {count} test windows need at least {count} test "
                                    f"rows, the test split has {len(test)}")
        order = np.argsort(np.asarray(self.extras["time"])[test],
                           kind="stable") if "time" in self.extras \
            else np.arange(len(test))
        return np.array_split(order, count)


def take_bags(values: np.ndarray, offsets: np.ndarray,
              rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The bags of `rows` from a ragged column: (values [nnz'], offsets [len(rows) + 1])."""
    starts = np.asarray(offsets[rows], dtype=np.int64)
    lengths = np.asarray(offsets[rows + 1], dtype=np.int64) - starts
    new_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=new_offsets[1:])
    # position j of the output belongs to bag b: source index = starts[b] + (j - new_offsets[b])
    source = (np.repeat(starts - new_offsets[:-1], lengths)
              + np.arange(new_offsets[-1], dtype=np.int64))
    return np.asarray(values[source]), new_offsets


def read_manifest(path: Path) -> dict:
    """Parse and check `path/manifest.json`; raise PreparedDataError naming what is wrong."""
    manifest_path = Path(path) / "manifest.json"
    if not manifest_path.is_file():
        raise PreparedDataError(f"{manifest_path}: missing; {path} is not a complete prepared "
                                "dataset")
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PreparedDataError(f"{manifest_path}: not valid JSON ({exc})") from exc
    if manifest.get("format_version") not in READABLE_VERSIONS:
        raise PreparedDataError(
            f"{manifest_path}: format_version {manifest.get('format_version')!r}, expected "
            f"{' or '.join(map(str, READABLE_VERSIONS))}; prepare the data again"
        )
    for rel, size in manifest.get("files", {}).items():
        file = Path(path) / rel
        if not file.is_file() or file.stat().st_size != size:
            found = file.stat().st_size if file.is_file() else "missing"
            raise PreparedDataError(f"{file}: expected {size} bytes, found {found}; the cache is "
                                    "damaged")
    return manifest


def load_prepared(path: str | Path, _manifest: dict | None = None) -> PreparedDataset:
    """Memory-map a prepared dataset written by `collide prepare`."""
    path = Path(path)
    manifest = _manifest if _manifest is not None else read_manifest(path)

    def column(rel: str) -> np.ndarray:
        return np.load(path / rel, mmap_mode="r", allow_pickle=False)

    sparse, vocab, meta = {}, {}, {}
    for i, feature in enumerate(manifest["features"]):
        name = feature["name"]
        offsets = column(f"sparse/{i}.offsets.npy") if feature.get("multi_valued") else None
        sparse[name] = SparseColumn(values=column(f"sparse/{i}.values.npy"), offsets=offsets)
        if (path / "vocab" / f"{i}.ids.npy").is_file():
            vocab[name] = Vocabulary(ids=column(f"vocab/{i}.ids.npy"),
                                     counts=column(f"vocab/{i}.counts.npy"))
        meta[name] = {key: column(f"meta/{i}.{key}.npy") for key in feature.get("meta", [])}
    extras = {name: column(f"extras/{name}.npy") for name in manifest.get("extras", [])}
    return PreparedDataset(
        path=path, manifest=manifest, labels=column("labels.npy"), dense=column("dense.npy"),
        split=column("split.npy"), sparse=sparse, vocab=vocab, extras=extras, meta=meta,
    )
