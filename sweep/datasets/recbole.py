"""`recbole`: RecBole atomic files (`<name>.inter`, optional `<name>.user`, `<name>.item`).

Each file is tab-separated with a header of `name:type` fields. The interactions are
joined with the user file on `user_field` and with the item file on `item_field`; the
output has one row per interaction, in file order.

- label: `label_field` (a float, default `rating`) >= `label_threshold` (default 4).
- `time_field` (default `timestamp`) orders the "timestamp" split and is not a feature.
- token -> a single-valued categorical; token_seq -> a multi-valued one (a bag of the
  space-separated tokens). Raw ids are `stable_hash_strings` of the token text, so the same
  token gives the same id on every machine (user "196" is hashed, not the int 196).
- float -> a dense column (missing -> 0.0), then transformed by `dense_transform` (default
  auto, statistics of the train rows, recorded in the manifest; see `sweep.datasets.dense`);
  float_seq -> skipped with a warning and listed
  in `report()["skipped_fields"]` (a DLRM dense input has one value per column). "nan",
  "inf" or a value beyond float32 is an error naming file, line and field, as is a label or
  timestamp that is not a finite number.
- text rules are those of `sweep.datasets.delimited` (no quoting): a blank line (no bytes,
  or only "\r") is dropped and counted in `report()["blank_lines"]`; a line of tabs only is a
  row of empty fields (so its label is missing, an error). An .inter file without data rows,
  or a header that repeats a field name, is an error.
- missing values (empty token, a user or item absent from its side file) -> `MISSING_ID`
  for tokens, the bag [MISSING_ID] for token_seq, 0.0 for floats; `report()` counts the
  interactions without a user / item row.
- split "timestamp": rows stably sorted by (timestamp, line); the oldest 1 - val - test
  share is train, the next val share is val, the newest is test, and the per-row extra "time"
  keeps each row's timestamp (float64), so the test split can be cut into time windows
  (`test_windows`). "random": seeded per row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pyarrow as pa

from sweep.datasets.base import Source, id_encoding, option
from sweep.datasets.delimited import (
    TextTable,
    dense_float32,
    parse_floats,
    read_header,
    read_text_table,
)
from sweep.datasets.dense import parse_dense_transform
from sweep.datasets.prepared import take_bags
from sweep.datasets.store import Chunk, FeatureSchema, Schema, SplitSpec
from sweep.datasets.tokens import MISSING_ID, hash_tokens, split_bags
from sweep.errors import DataError

__all__ = ["ATOMIC_TYPES", "RecBoleConfig", "RecBoleSource"]

log = logging.getLogger(__name__)

ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


@dataclass(frozen=True)
class RecBoleConfig:
    path: Path = field(metadata=option("directory holding NAME.inter and optionally NAME.user, "
                                       "NAME.item", path=True))
    name: str | None = field(default=None, metadata=option(
        "dataset name, the files' stem (default: the directory name)"))
    label_field: str = field(default="rating", metadata=option(
        "float field of .inter that gives the label"))
    label_threshold: float = field(default=4.0, metadata=option("label = label_field >= this"))
    time_field: str = field(default="timestamp", metadata=option(
        "float field of .inter that orders the timestamp split; not a feature"))
    user_field: str = field(default="user_id", metadata=option(
        "token field joining .inter with .user"))
    item_field: str = field(default="item_id", metadata=option(
        "token field joining .inter with .item"))
    seq_separator: str = field(default=" ", metadata=option(
        "separator of the tokens of a token_seq field"))
    split: str = field(default="timestamp", metadata=option(
        "'timestamp' (oldest rows train, newest test) or 'random' (seeded)"))
    val_fraction: float = field(default=0.1, metadata=option(
        "share of rows in the validation split"))
    test_fraction: float = field(default=0.1, metadata=option("share of rows in the test split"))
    seed: int = field(default=0, metadata=option("seed of the random split"))
    dense_transform: str = field(default="auto", metadata=option(
        "auto, none, log1p, standardize, log1p_standardize, or COL=KIND,... (others auto); "
        "train-split stats"))
    chunk_rows: int = field(default=1 << 16, metadata=option("rows per chunk written"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if isinstance(self.dense_transform, str) and "=" not in self.dense_transform:
            parse_dense_transform(self.dense_transform, ())  # a kind for every column: check it now
        if self.split not in ("timestamp", "random"):
            raise DataError(f"split must be 'timestamp' or 'random', got {self.split!r}")
        if not isinstance(self.chunk_rows, int) or isinstance(self.chunk_rows,
                                                              bool) or self.chunk_rows < 1:
            raise DataError(f"chunk_rows must be an int >= 1, got {self.chunk_rows!r}")
        if not self.seq_separator:
            raise DataError(f"seq_separator must be a non-empty string, got {self.seq_separator!r}")
        for name in ("label_field", "time_field", "user_field", "item_field"):
            if not getattr(self, name):
                raise DataError(f"{name} must be a non-empty field name, got "
                                f"{getattr(self, name)!r}")
        if self.name is not None and (not self.name or "/" in self.name):
            raise DataError(f"name must be a file stem such as 'ml-100k', got {self.name!r}")
        # validates the fractions
        SplitSpec("random", self.val_fraction, self.test_fraction, self.seed)


@dataclass
class _AtomicFile:
    """One parsed atomic file: typed columns by field name, in header order."""

    path: Path
    types: dict[str, str]  # field -> atomic type, header order
    text: TextTable

    def column(self, name: str) -> pa.ChunkedArray:
        return self.text.table.column(name)

    def where(self, row: int) -> str:
        return f"{self.path}:{self.text.lines[row]}"


def _read_atomic(path: Path) -> _AtomicFile:
    types = {}
    for raw in read_header(path, "\t", quoting=False):
        name, sep, kind = raw.partition(":")
        if not sep or not name:
            raise DataError(f"{path}:1: header field {raw!r} must look like name:type")
        if kind not in ATOMIC_TYPES:
            raise DataError(f"{path}:1: field {name!r} has type {kind!r}; allowed: "
                            f"{', '.join(ATOMIC_TYPES)}")
        if name in types:
            raise DataError(f"{path}:1: field {name!r} appears twice in the header; field names "
                            "must be unique")
        types[name] = kind
    text = read_text_table(path, "\t", quoting=False)
    return _AtomicFile(path=path, types=types, text=TextTable(
        path=text.path, table=text.table.rename_columns(list(types)), lines=text.lines,
        blank=text.blank))


def _join_index(side: _AtomicFile, key: str, wanted: np.ndarray) -> np.ndarray:
    """Row of `side` whose `key` equals each wanted raw id, -1 where none (int64 [n])."""
    keys = hash_tokens(side.column(key))
    if (keys == MISSING_ID).any():
        line = side.text.lines[np.flatnonzero(keys == MISSING_ID)[0]]
        raise DataError(f"{side.path}:{line}: the join field {key!r} is empty")
    if len(keys) == 0:
        return np.full(len(wanted), -1, dtype=np.int64)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    repeated = np.flatnonzero(sorted_keys[1:] == sorted_keys[:-1])
    if len(repeated):
        first, second = order[repeated[0]], order[repeated[0] + 1]
        raise DataError(f"{side.path}: {key} {side.column(key)[int(first)].as_py()!r} appears on "
                        f"lines {side.text.lines[first]} and {side.text.lines[second]}; keys must "
                        "be unique")
    at = np.minimum(np.searchsorted(sorted_keys, wanted), len(keys) - 1)
    found = (sorted_keys[at] == wanted) & (wanted != MISSING_ID)
    return np.where(found, order[at], -1)


def _take_bags(values: np.ndarray, lengths: np.ndarray,
               index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bags of rows `index` as (values, lengths); index -1 gives the bag [MISSING_ID]."""
    values = np.append(values, MISSING_ID)
    offsets = np.zeros(len(lengths) + 2, dtype=np.int64)
    np.cumsum(np.append(lengths, 1), out=offsets[1:])
    rows = np.where(index < 0, len(lengths), index).astype(np.int64)  # the appended bag
    bag_values, bag_offsets = take_bags(values, offsets, rows)
    return bag_values, np.diff(bag_offsets)


class RecBoleSource(Source):
    name = "recbole"
    Config = RecBoleConfig
    version = 3  # 2: dense columns transformed (dense_transform); 3: extra "time" (timestamp split)

    def __init__(self, config: RecBoleConfig):
        super().__init__(config)
        c = config
        self.dataset_name = c.name if c.name is not None else c.path.resolve().name
        self.inter_path = c.path / f"{self.dataset_name}.inter"
        if not self.inter_path.is_file():
            found = sorted(p.name for p in c.path.glob("*.inter") if p.is_file()) if c.path.is_dir(
                ) \
                else "not a directory"
            raise DataError(f"path {str(c.path)!r}: no {self.dataset_name}.inter file (found: "
                            f"{found}); set name to the files' stem")
        self.skipped_fields: list[str] = []
        self.rows_without: dict[str, int] = {}

    def _side_path(self, kind: str) -> Path | None:
        path = self.config.path / f"{self.dataset_name}.{kind}"
        if path.exists() and not path.is_file():
            raise DataError(f"{path}: expected the {kind} atomic file, found a directory or other "
                            "non-file")
        return path if path.is_file() else None

    def input_files(self) -> list[Path]:
        return [self.inter_path,
                *(p for p in (self._side_path("user"), self._side_path("item")) if p)]

    def params(self) -> dict:
        """The config minus chunk_rows, which cannot change the output (so it does not rebuild a
        cache)."""
        return {k: v for k, v in super().params().items() if k != "chunk_rows"}

    def split_spec(self) -> SplitSpec:
        c = self.config
        return SplitSpec("given" if c.split == "timestamp" else "random", c.val_fraction,
                         c.test_fraction, c.seed)

    def schema(self) -> Schema:
        features = tuple(FeatureSchema(name, multi_valued=isinstance(data, tuple))
                         for name, data in self._data["sparse"].items())
        return Schema(dense=tuple(self._data["dense"]), features=features)

    def dense_transforms(self) -> dict[str, str]:
        return parse_dense_transform(self.config.dense_transform, tuple(self._data["dense"]))

    def encodings(self) -> dict[str, dict]:
        """Tokens are hashed as text; a token_seq is split by seq_separator."""
        return {f.name: id_encoding("text", f.multi_valued,
                                    self.config.seq_separator if f.multi_valued else None)
                for f in self.schema().features}

    def report(self) -> dict:
        data = self._data
        return {"rows": len(data["labels"]), "blank_lines": data["blank"],
                "skipped_fields": list(self.skipped_fields),
                **{f"rows_without_{kind}": n for kind, n in self.rows_without.items()}}

    def chunks(self) -> Iterator[Chunk]:
        data = self._data
        n = len(data["labels"])
        offsets = {name: np.concatenate([[0], np.cumsum(col[1])])
                   for name, col in data["sparse"].items() if isinstance(col, tuple)}
        dense = np.stack(list(data["dense"].values()), axis=1).astype(np.float32) if data["dense"] \
            else np.zeros((n, 0), np.float32)
        for a in range(0, n, self.config.chunk_rows):
            b = min(a + self.config.chunk_rows, n)
            sparse = {}
            for name, col in data["sparse"].items():
                if isinstance(col, tuple):
                    sparse[name] = (col[0][offsets[name][a]:offsets[name][b]], col[1][a:b])
                else:
                    sparse[name] = col[a:b]
            split = data["split"][a:b] if data["split"] is not None else None
            extras = {"time": np.asarray(data["time"][a:b],
                                         dtype=np.float64)} if data["time"] is not None else {}
            yield Chunk(labels=data["labels"][a:b], dense=dense[a:b], sparse=sparse, split=split,
                        extras=extras)

    @cached_property
    def _data(self) -> dict:
        """Read and join the files once: labels, split codes, sparse and dense columns."""
        c = self.config
        inter = _read_atomic(self.inter_path)
        n = inter.text.table.num_rows
        self._require(inter, c.label_field, ("float",), "label_field")
        if c.split == "timestamp":
            self._require(inter, c.time_field, ("float",), "time_field")
        self._require(inter, c.user_field, ("token",), "user_field")
        self._require(inter, c.item_field, ("token",), "item_field")
        if n == 0:
            raise DataError(f"{self.inter_path}: no interactions after the header "
                            f"({inter.text.blank} blank lines); expected at least one row")
        rating = parse_floats(inter.column(c.label_field), c.label_field, inter.where)
        self._no_missing(inter, rating, c.label_field)
        sparse: dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]] = {}
        dense: dict[str, np.ndarray] = {}
        owner: dict[str, Path] = {}
        self.skipped_fields, self.rows_without = [], {}
        self._add_fields(inter, np.arange(n), {c.label_field, c.time_field}, sparse, dense, owner)
        for kind, key in (("user", c.user_field), ("item", c.item_field)):
            side_path = self._side_path(kind)
            if side_path is None:
                continue
            side = _read_atomic(side_path)
            self._require(side, key, ("token",), f"{kind}_field")
            index = _join_index(side, key, sparse[key])
            self.rows_without[kind] = int((index < 0).sum())
            self._add_fields(side, index, {key}, sparse, dense, owner)
        split = time = None
        if c.split == "timestamp":
            time = parse_floats(inter.column(c.time_field), c.time_field, inter.where)
            self._no_missing(inter, time, c.time_field)
            split = self._time_split(time)
        labels = (rating >= c.label_threshold).astype(np.float32)
        return {"labels": labels, "split": split, "time": time, "sparse": sparse, "dense": dense,
                "blank": inter.text.blank}

    def _add_fields(self, source: _AtomicFile, index: np.ndarray, exclude: set[str], sparse: dict,
                    dense: dict, owner: dict) -> None:
        """Add the fields of one file, taking row index[i] (-1: missing) for output row i."""
        for name, kind in source.types.items():
            if name in exclude:
                continue
            if name in owner:
                raise DataError(f"field {name!r} appears in both {owner[name]} and {source.path}; "
                                "rename one")
            owner[name] = source.path
            column = source.column(name)
            if kind == "token":
                sparse[name] = np.append(hash_tokens(column), MISSING_ID)[index]
            elif kind == "token_seq":
                sparse[name] = _take_bags(*split_bags(column, self.config.seq_separator), index)
            elif kind == "float":
                values = dense_float32(parse_floats(column, name, source.where), name, source.where)
                dense[name] = np.append(values, np.float32(0.0))[index]
            else:
                self.skipped_fields.append(f"{source.path.name}:{name}")
                log.warning("%s: skipping float_seq field %r (dense inputs take one value per "
                            "column)",
                            source.path, name)

    def _time_split(self, time: np.ndarray) -> np.ndarray:
        c = self.config
        n = len(time)
        order = np.argsort(time, kind="stable")  # ties: earlier line first
        num_val, num_test = int(round(n * c.val_fraction)), int(round(n * c.test_fraction))
        num_train = n - num_val - num_test
        codes = np.empty(n, dtype=np.int8)
        codes[order[:num_train]] = 0
        codes[order[num_train:num_train + num_val]] = 1
        codes[order[num_train + num_val:]] = 2
        return codes

    @staticmethod
    def _require(source: _AtomicFile, name: str, kinds: tuple[str, ...], option: str) -> None:
        if name not in source.types:
            raise DataError(f"{source.path}: {option} {name!r} is not a field; fields: "
                            f"{list(source.types)}")
        if source.types[name] not in kinds:
            raise DataError(f"{source.path}: {option} {name!r} has type {source.types[name]!r}, "
                            f"expected {' or '.join(kinds)}")

    @staticmethod
    def _no_missing(source: _AtomicFile, values: np.ndarray, name: str) -> None:
        missing = np.flatnonzero(np.isnan(values))
        if len(missing):
            raise DataError(f"{source.path}:{source.text.lines[missing[0]]}: {name!r} is missing")
