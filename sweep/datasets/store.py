"""The prepared form every data source produces, written chunk by chunk and memory-mapped back.

Notation: N rows, num_dense dense columns, one entry per categorical feature.

On disk a prepared dataset is a directory::

    manifest.json                 written last; lists every file with its byte size
    labels.npy                    float32 [N] in {0, 1}
    dense.npy                     float32 [N, num_dense], transformed (manifest "dense_transforms")
    split.npy                     int8 [N]: 0 train, 1 val, 2 test
    sparse/<i>.values.npy         int64 raw ids: [N] single-valued, [nnz] multi-valued
    sparse/<i>.offsets.npy        int64 [N + 1], multi-valued features only
    vocab/<i>.ids.npy             int64 sorted distinct raw ids of the TRAIN split
    vocab/<i>.counts.npy          int64 occurrences of each id in the train split
    extras/<name>.npy             per-row extras (synthetic: true click probability)
    meta/<i>.<name>.npy           per-feature extras (synthetic: planted cluster per id)

`<i>` is the feature's position, so any feature name is safe.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from sweep.datasets.columns import NpyAppender
from sweep.datasets.dense import SOURCE_DEFAULT, DenseTransform, fit_dense_transform
from sweep.datasets.prepared import FORMAT_VERSION, SparseColumn, load_prepared
from sweep.errors import DataError
from sweep.hashing import mix64

__all__ = [
    "FORMAT_VERSION",
    "SPLIT_NAMES",
    "Chunk",
    "FeatureSchema",
    "PreparedWriter",
    "Schema",
    "SplitSpec",
]

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class FeatureSchema:
    name: str
    multi_valued: bool = False  # a bag of ids per row (values + offsets)


@dataclass(frozen=True)
class Schema:
    dense: tuple[str, ...]  # dense column names; may be empty
    features: tuple[FeatureSchema, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.features]
        if not names:
            raise DataError("a dataset needs at least one categorical feature, got none")
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated or any(not n for n in names):
            raise DataError(f"feature names must be unique and non-empty, got {names}")


@dataclass(frozen=True)
class SplitSpec:
    """How rows are assigned to train / val / test.

    kind "random": each row independently, seeded by row number (chunking does not matter).
    kind "sequential": the leading rows train, then val, then test (the reference DLRM's day
    split); the rows after train are shared in the ratio val_fraction : test_fraction, rounded
    down for val (equal fractions: halved). kind "given": the source supplies `Chunk.split`.
    """

    kind: str = "random"
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("random", "sequential", "given"):
            raise DataError(f"split must be 'random', 'sequential' or 'given', got {self.kind!r}")
        for name in ("val_fraction", "test_fraction"):
            value = getattr(self, name)
            if not 0.0 < value < 1.0:
                raise DataError(f"{name} must be in (0, 1), got {value}")
        if self.val_fraction + self.test_fraction >= 1.0:
            raise DataError(
                f"val_fraction + test_fraction must be < 1 to leave training rows, got "
                f"{self.val_fraction} + {self.test_fraction}"
            )

    def assign(self, start: int, stop: int, total: int) -> np.ndarray:
        """Split codes (int8) for rows [start, stop) of `total` rows."""
        rows = np.arange(start, stop, dtype=np.uint64)
        if self.kind == "random":
            u = (mix64(rows, seed=self.seed) >> np.uint64(11)).astype(np.float64) / float(2**53)
            codes = np.zeros(stop - start, dtype=np.int8)
            codes[u < self.val_fraction + self.test_fraction] = 1
            codes[u < self.test_fraction] = 2
            return codes
        if self.kind == "sequential":
            num_train = int(round(total * (1.0 - self.val_fraction - self.test_fraction)))
            # exact: no float error
            val, test = Fraction(str(self.val_fraction)), Fraction(str(self.test_fraction))
            # rounded down; equal fractions: halved
            num_val = int((total - num_train) * val // (val + test))
            codes = np.full(stop - start, 2, dtype=np.int8)
            codes[rows < num_train + num_val] = 1
            codes[rows < num_train] = 0
            return codes
        raise ValueError("split kind 'given' needs Chunk.split from the source")


@dataclass
class Chunk:
    """A block of consecutive rows from a source."""

    labels: np.ndarray  # float32 [n] in {0, 1}
    dense: np.ndarray  # float32 [n, num_dense]
    sparse: dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]]
    # single-valued: int64 [n]; multi-valued: (int64 values [nnz], int64 lengths [n])
    split: np.ndarray | None = None  # int8 [n], only with SplitSpec(kind="given")
    extras: dict[str, np.ndarray] = field(default_factory=dict)  # per-row, leading dim n


class PreparedWriter:
    """Writes a prepared dataset into an empty directory, one `Chunk` at a time."""

    def __init__(self, out_dir: Path, schema: Schema, split: SplitSpec):
        self.out_dir = Path(out_dir)
        self.schema = schema
        self.split_spec = split
        for sub in ("sparse", "vocab", "extras", "meta"):
            (self.out_dir / sub).mkdir(parents=True, exist_ok=True)
        self._labels = NpyAppender(self.out_dir / "labels.npy", np.float32)
        self._dense = NpyAppender(self.out_dir / "dense.npy", np.float32, (len(schema.dense),))
        self._split = NpyAppender(self.out_dir / "split.npy", np.int8)
        self._values = [NpyAppender(self._sparse_path(i, "values"), np.int64)
                        for i in range(len(schema.features))]
        self._offsets: dict[int, NpyAppender] = {}
        self._offset_base: dict[int, int] = {}
        for i, feature in enumerate(schema.features):
            if feature.multi_valued:
                self._offsets[i] = NpyAppender(self._sparse_path(i, "offsets"), np.int64)
                self._offsets[i].append(np.zeros(1, dtype=np.int64))
                self._offset_base[i] = 0
        self._extras: dict[str, NpyAppender] = {}
        self.num_rows = 0

    def _sparse_path(self, i: int, kind: str) -> Path:
        return self.out_dir / "sparse" / f"{i}.{kind}.npy"

    def append(self, chunk: Chunk) -> None:
        n = len(chunk.labels)
        if chunk.dense.shape != (n, len(self.schema.dense)):
            raise ValueError(f"chunk dense has shape {chunk.dense.shape}, expected ({n}, "
                             f"{len(self.schema.dense)})")
        self._labels.append(np.asarray(chunk.labels, dtype=np.float32))
        self._dense.append(chunk.dense)
        if self.split_spec.kind == "given":
            if chunk.split is None or len(chunk.split) != n:
                raise ValueError("split kind 'given' needs Chunk.split with one code per row")
            self._split.append(np.asarray(chunk.split, dtype=np.int8))
        for i, feature in enumerate(self.schema.features):
            column = chunk.sparse[feature.name]
            if feature.multi_valued:
                values, lengths = column
                if len(lengths) != n or int(lengths.sum()) != len(values):
                    raise ValueError(f"feature {feature.name!r}: lengths must cover {n} rows and "
                                     "sum to len(values)")
                self._values[i].append(values)
                self._offsets[i].append(self._offset_base[i] + np.cumsum(lengths, dtype=np.int64))
                self._offset_base[i] += len(values)
            else:
                if np.shape(column) != (n,):
                    raise ValueError(f"feature {feature.name!r}: expected {n} ids, got shape "
                                     f"{np.shape(column)}")
                self._values[i].append(column)
        for name, values in chunk.extras.items():
            if name not in self._extras:
                self._extras[name] = NpyAppender(self.out_dir / "extras" / f"{name}.npy",
                                                 values.dtype, values.shape[1:])
            self._extras[name].append(values)
        self.num_rows += n

    def finish(self, *, source: str, params: Mapping, fingerprint: str,
               feature_meta: Mapping[str, Mapping[str, np.ndarray]] | None = None,
               report: Mapping | None = None,
               dense_transforms: Mapping[str, str | DenseTransform] | None = None,
               encodings: Mapping[str, dict] | None = None) -> dict:
        """Close every column, assign the split, transform the dense columns, count train
        vocabularies, write manifest.json.

        `dense_transforms` per dense column: a kind or "auto" (fitted here on the train rows and
        applied to dense.npy), or a DenseTransform the source already applied (recorded only);
        a column not named stays as it is ("none"). `encodings` per feature: how its raw values
        became ids (`Source.encodings`), kept for serving."""
        if self.num_rows == 0:
            raise DataError(f"{_describe(source, params)} produced no rows")
        for appender in [self._labels, self._dense, *self._values, *self._offsets.values(),
                         *self._extras.values()]:
            appender.close()
        if self.split_spec.kind != "given":
            step = 1 << 22
            for start in range(0, self.num_rows, step):
                self._split.append(self.split_spec.assign(start, min(start + step, self.num_rows),
                                                          self.num_rows))
        self._split.close()
        sizes = self._split_sizes()
        self._check_split_sizes(sizes, _describe(source, params))
        transforms = self._transform_dense(dense_transforms or {})
        meta_names = {}
        for name, arrays in (feature_meta or {}).items():
            i = [f.name for f in self.schema.features].index(name)
            meta_names[name] = sorted(arrays)
            for key, array in arrays.items():
                np.save(self.out_dir / "meta" / f"{i}.{key}.npy", np.asarray(array))
        draft = self._draft_manifest(source, params, fingerprint)
        draft["features"] = [{**asdict(f), "meta": meta_names.get(f.name, [])}
                             for f in self.schema.features]
        dataset = load_prepared(self.out_dir, _manifest=draft)
        train_mask = np.asarray(dataset.split) == 0
        with ThreadPoolExecutor(max_workers=2) as pool:  # np.unique releases the GIL while sorting
            vocabs = list(pool.map(lambda i: self._count_train(i, train_mask),
                                   range(len(self.schema.features))))
        features = []
        for i, (feature, (ids, counts)) in enumerate(
            zip(self.schema.features, vocabs, strict=True)):
            np.save(self.out_dir / "vocab" / f"{i}.ids.npy", ids.astype(np.int64))
            np.save(self.out_dir / "vocab" / f"{i}.counts.npy", counts.astype(np.int64))
            features.append({**asdict(feature), "vocab_size": int(len(ids)),
                             "encoding": (encodings or {}).get(feature.name),
                             "num_values": int(len(dataset.sparse[feature.name].values)),
                             "meta": meta_names.get(feature.name, [])})
        manifest = self._draft_manifest(source, params, fingerprint)
        manifest.update({
            "features": features,
            "split_sizes": {name: int(sizes[code]) for code, name in enumerate(SPLIT_NAMES)},
            "label_rate": float(np.asarray(dataset.labels).mean()),
            "dense_transforms": [t.to_json() for t in transforms],
            "extras": sorted(self._extras),
            "report": dict(report or {}),
        })
        manifest["files"] = {str(p.relative_to(self.out_dir)): p.stat().st_size
                             for p in sorted(self.out_dir.rglob("*.npy"))}
        (self.out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True))
        return manifest

    def _transform_dense(self,
                         requested: Mapping[str, str | DenseTransform]) -> list[DenseTransform]:
        """Fit each requested transform on the train rows and rewrite dense.npy in place."""
        unknown = sorted(set(requested) - set(self.schema.dense))
        if unknown:
            raise DataError(f"dense transforms name {unknown}, which are not dense columns "
                            f"{list(self.schema.dense)}")
        dense = train = None  # mapped on the first column that is fitted: most sources fit none
        transforms = []
        for j, column in enumerate(self.schema.dense):
            wanted = requested.get(column)
            if isinstance(wanted, DenseTransform):  # the source applied it while reading
                transforms.append(wanted)
                continue
            if wanted in (None, "none"):  # nothing to do to the data
                transforms.append(DenseTransform(column, "none", reason="requested" if wanted
                                                 else SOURCE_DEFAULT))
                continue
            if dense is None:
                dense = np.load(self.out_dir / "dense.npy", mmap_mode="r+")
                train = np.load(self.out_dir / "split.npy", mmap_mode="r") == 0
            fitted = fit_dense_transform(column, wanted, np.asarray(dense[train, j]))
            step = 1 << 22
            for a in range(0, self.num_rows, step):
                dense[a:a + step, j] = fitted.apply(dense[a:a + step, j])
            transforms.append(fitted)
        if dense is not None:
            dense.flush()
            del dense
        return transforms

    def _split_sizes(self) -> list[int]:
        """Rows of each split, counted a block at a time (split.npy may hold billions of rows)."""
        split = np.load(self.out_dir / "split.npy", mmap_mode="r")
        step = 1 << 24
        return [sum(int((split[a:a + step] == code).sum()) for a in range(0, len(split), step))
                for code in range(len(SPLIT_NAMES))]

    def _check_split_sizes(self, sizes: list[int], described: str) -> None:
        """Refuse an empty train, val or test split: every trial would fail on it later."""
        spec = self.split_spec
        fractions = {"train": 1.0 - spec.val_fraction - spec.test_fraction,
                     "val": spec.val_fraction,
                     "test": spec.test_fraction}
        for code, name in enumerate(SPLIT_NAMES):
            if sizes[code] == 0:
                fix = ("use more rows or smaller val_fraction + test_fraction" if name == "train"
                       else f"use more rows or a larger {name}_fraction")
                raise DataError(f"{described}: the {name} split is empty: {self.num_rows} rows "
                                f"with a {name} fraction of {fractions[name]:g} (split "
                                f"{spec.kind!r}) give it no rows; {fix}")

    def _count_train(self, i: int, train_mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distinct train ids of feature i and their counts. The column is mapped here and unmapped
        on return, so the pages it touched do not stay in this process's RSS for all features."""
        def column(kind: str) -> np.ndarray:
            return np.load(self._sparse_path(i, kind), mmap_mode="r", allow_pickle=False)

        offsets = column("offsets") if self.schema.features[i].multi_valued else None
        return np.unique(SparseColumn(values=column("values"), offsets=offsets).rows_of(train_mask),
                         return_counts=True)

    def _draft_manifest(self, source: str, params: Mapping, fingerprint: str) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "source": source,
            "params": dict(params),
            "fingerprint": fingerprint,
            "num_rows": self.num_rows,
            "dense": list(self.schema.dense),
            "features": [asdict(f) for f in self.schema.features],
            "split": asdict(self.split_spec),
            "extras": sorted(self._extras),
        }


def _describe(source: str, params: Mapping) -> str:
    """The source and, where its params name one, its input: "source 'table' (path data.csv)"."""
    return f"source {source!r}" + (f" (path {params['path']})" if "path" in params else "")
