"""`table`: any CSV or Parquet file plus a small schema (label, dense, categorical, multi-valued).

The schema comes from config fields and/or a YAML file (`schema_file`, read with
yaml.safe_load) with the same keys: `label`, `label_threshold`, `label_equals`, `label_in`,
`dense`, `dense_transform`, `categorical`, `multi_valued`, `separator`. A key set in both
places must agree. An example schema file::

    label: income
    label_equals: ">50K"          # label = 1 where the column is ">50K", else 0
    dense: [age, fnlwgt, hours_per_week]
    dense_transform: auto         # or one kind for all, or {fnlwgt: log1p_standardize, age: none}
    categorical: [workclass, education, occupation]

- format: by suffix (.csv comma, .tsv tab, .parquet / .pq), or `format` (csv, tsv, parquet)
  for any name, e.g. data.parquet.brotli. The file is read whole. Text rules (line numbers,
  blank lines, quotes, encoding) are those of `sweep.datasets.delimited`: a blank line (no
  bytes, or only "\r") is dropped and counted in `report()["blank_lines"]`; a line of
  delimiters only (",,,") is a row whose label is missing, so an error.
- errors name the file and the line (CSV) or the 1-based row (Parquet), the column and the value.
- label, one rule at most:
  - none: the column holds 0/1 or booleans (Parquet bool; text true/false in any case);
  - `label_threshold`: label = value >= threshold (numbers);
  - `label_equals` / `label_in`: label = value equals one of the given values. Strings are
    compared as text with surrounding whitespace removed (" >50K" equals ">50K"); numbers
    numerically. A rule that makes every row 0 (or every row 1) is an error listing the
    values seen.
  A missing label, a NaN or an infinite one, or a value the rule cannot read is an error.
- dense: numbers (text is parsed); missing (an empty field, a Parquet null) -> 0.0. NaN ("nan"
  in any spelling, or a Parquet NaN), infinity, or |x| > float32's max is an error. Then each
  column is transformed (`dense_transform`, default auto; see `sweep.datasets.dense`) with
  statistics of the train rows, recorded in the manifest.
- categorical: integers stay their int64 value; strings -> `stable_hash_strings`; missing or
  "" -> `MISSING_ID` (-1, which a real integer -1 also maps to). A CSV column whose non-empty
  values all look like integers (optional sign, ASCII digits) is an integer column: values in
  [2**63, 2**64) keep their 64-bit pattern (two's complement, like a 16-hex-digit Criteo id;
  Parquet uint64 likewise), any other value outside int64 is an error. A column with any other
  value (" 7", "7.0", "x") is hashed as strings, all of it. Parquet floats must be integral and
  in [-2**63, 2**63); NaN or null -> `MISSING_ID`.
- multi_valued: text joined by `separator` (each token hashed as a string), or a Parquet
  list column (strings hashed, integers kept); an empty bag -> [MISSING_ID].

List options take comma-separated values on the command line (`--dense a,b,c`) and YAML
lists in a schema file.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields
from functools import cached_property, partial
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import yaml

from sweep.datasets.base import Source, id_encoding, option
from sweep.datasets.delimited import (
    check_finite,
    dense_float32,
    parse_floats,
    parse_integer_ids,
    read_header,
    read_text_table,
    value_error,
)
from sweep.datasets.dense import parse_dense_transform
from sweep.datasets.store import Chunk, FeatureSchema, Schema, SplitSpec
from sweep.datasets.tokens import MISSING_ID, bags_from_lists, hash_tokens, integer_ids, split_bags
from sweep.errors import DataError

__all__ = ["SCHEMA_KEYS", "TableConfig", "TableSource"]

SCHEMA_KEYS = ("label", "label_threshold", "label_equals", "label_in", "dense", "dense_transform",
               "categorical",
               "multi_valued", "separator")
SUFFIXES = {".csv": ",", ".tsv": "\t", ".parquet": None, ".pq": None}
FORMATS = {"csv": ",", "tsv": "\t", "parquet": None}
LABEL_RULES = ("label_threshold", "label_equals", "label_in")
TRUE_FALSE = ("true", "false")  # text labels read as 1 / 0, in any case
ZERO_ONE = ("be 0 or 1 (or true/false); for other values set label_equals, label_in or "
            "label_threshold")
# NaN, inf: errors later
_NUMBER = r"(?i)^[+-]?(([0-9]+\.?[0-9]*|\.[0-9]+)(e[+-]?[0-9]+)?|inf|infinity|nan)$"


@dataclass(frozen=True)
class TableConfig:
    path: Path = field(metadata=option("CSV (.csv, .tsv) or Parquet (.parquet, .pq) file; other "
                                       "names need --format", path=True))
    format: str | None = field(default=None, metadata=option(
        "csv, tsv or parquet; None: by the path's suffix"))
    schema_file: Path | None = field(default=None, metadata=option(
        "YAML file with any of: " + ", ".join(SCHEMA_KEYS), path=True))
    label: str | None = field(default=None, metadata=option("label column"))
    label_threshold: float | None = field(default=None, metadata=option(
        "label = value >= this (numbers)"))
    label_equals: str | None = field(default=None, metadata=option(
        "label = value equals this (text, trimmed)"))
    label_in: tuple[str, ...] = field(default=(), metadata=option(
        "label = value is one of these (text, trimmed)"))
    dense: tuple[str, ...] = field(default=(), metadata=option("dense (numeric) columns"))
    dense_transform: str = field(default="auto", metadata=option(
        "auto, none, log1p, standardize, log1p_standardize, or COL=KIND,... (others auto); "
        "train-split stats"))
    categorical: tuple[str, ...] = field(default=(), metadata=option(
        "single-valued categorical columns"))
    multi_valued: tuple[str, ...] = field(default=(), metadata=option(
        "multi-valued columns: separator-joined text or Parquet lists"))
    separator: str = field(default="|", metadata=option(
        "separator of the ids in a multi-valued text column"))
    split: str = field(default="random", metadata=option(
        "'random' (seeded per row) or 'sequential' (train first, then val, test)"))
    val_fraction: float = field(default=0.1, metadata=option(
        "share of rows in the validation split"))
    test_fraction: float = field(default=0.1, metadata=option("share of rows in the test split"))
    seed: int = field(default=0, metadata=option("seed of the random split"))
    chunk_rows: int = field(default=1 << 16, metadata=option("rows per chunk written"))

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if self.schema_file is not None:
            object.__setattr__(self, "schema_file", Path(self.schema_file))
        for name in ("dense", "categorical", "multi_valued", "label_in"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.format is not None and self.format not in FORMATS:
            raise DataError(f"format must be one of {sorted(FORMATS)} (or unset: by suffix), got "
                            f"{self.format!r}")
        if self.format is None and self.path.suffix.lower() not in SUFFIXES:
            raise DataError(f"path must end in one of {sorted(SUFFIXES)}, or give format (csv, "
                            f"tsv, parquet); got {str(self.path)!r}")
        if self.split not in ("random", "sequential"):
            raise DataError(f"split must be 'random' or 'sequential', got {self.split!r}")
        if not isinstance(self.chunk_rows, int) or isinstance(self.chunk_rows,
                                                              bool) or self.chunk_rows < 1:
            raise DataError(f"chunk_rows must be an int >= 1, got {self.chunk_rows!r}")
        # validates the fractions
        SplitSpec(self.split, self.val_fraction, self.test_fraction, self.seed)
        self.resolved()  # validates the schema, the YAML file included

    def resolved(self) -> dict:
        """The effective schema: config fields merged with `schema_file`."""
        defaults = {f.name: f.default for f in fields(self)}
        merged = {key: getattr(self, key) for key in SCHEMA_KEYS}
        if self.schema_file is not None:
            for key, value in _load_schema_file(self.schema_file).items():
                mine = getattr(self, key)
                if mine != defaults[key] and mine != value:
                    raise DataError(f"{key} is {mine!r} in the config but {value!r} in "
                                    f"{self.schema_file}; set it in one place")
                merged[key] = value
        rules = [key for key in LABEL_RULES if merged[key] not in (None, ())]
        if len(rules) > 1:
            raise DataError(f"give at most one label rule, got {rules}")
        if merged["label_in"] == () and "label_in" in rules:
            raise DataError("label_in must list at least one value")
        for key in ("label_equals", "label_in"):
            values = [merged[key]] if key == "label_equals" else list(merged[key])
            kinds = {"number" if isinstance(v, (int, float)) and not isinstance(v, bool) else
                     "text" if isinstance(v, str) else "other" for v in values if v is not None}
            if "other" in kinds or len(kinds) > 1:
                raise DataError(f"{key} must hold strings or numbers, not a mix or other values, "
                                f"got {merged[key]!r}")
        # validates kinds and columns
        parse_dense_transform(merged["dense_transform"], merged["dense"])
        if not merged["label"]:
            raise DataError("label must name the label column (set label, or label: in a "
                            "schema_file), got None")
        if not merged["categorical"] and not merged["multi_valued"]:
            raise DataError("categorical and multi_valued are both empty; name at least one "
                            "categorical column")
        if not merged["separator"]:
            raise DataError(f"separator must be a non-empty string, got {merged['separator']!r}")
        roles = [merged["label"], *merged["dense"], *merged["categorical"], *merged["multi_valued"]]
        repeated = sorted({c for c in roles if roles.count(c) > 1})
        if repeated:
            raise DataError("each column may have one role (label, dense, categorical, "
                            f"multi_valued); repeated: {repeated}")
        return merged


def _load_schema_file(path: Path) -> dict:
    """Keys of a YAML schema file, type-checked; an unknown key names the allowed ones."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except OSError as exc:
        raise DataError(f"schema_file {str(path)!r} cannot be read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise DataError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path}: expected a mapping of {', '.join(SCHEMA_KEYS)}, got "
                        f"{type(raw).__name__}")
    out = {}
    for key, value in raw.items():
        if key not in SCHEMA_KEYS:
            raise DataError(f"{path}: unknown key {key!r}; allowed: {', '.join(SCHEMA_KEYS)}")
        if key in ("dense", "categorical", "multi_valued"):
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise DataError(f"{path}: {key} must be a list of column names, got {value!r}")
            value = tuple(value)
        elif key == "label_in":
            if not isinstance(value, list) or not value:
                raise DataError(f"{path}: label_in must be a non-empty list of values, got "
                                f"{value!r}")
            value = tuple(value)
        elif key == "label_equals":
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                raise DataError(f"{path}: label_equals must be a string or a number, got {value!r}")
        elif key == "dense_transform":
            if not isinstance(value, (str, dict)):
                raise DataError(f"{path}: dense_transform must be a kind or a mapping of column to "
                                f"kind, got {value!r}")
        elif key == "label_threshold":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise DataError(f"{path}: label_threshold must be a number, got {value!r}")
            value = float(value)
        elif not isinstance(value, str):
            raise DataError(f"{path}: {key} must be a string, got {value!r}")
        out[key] = value
    return out


class TableSource(Source):
    name = "table"
    Config = TableConfig
    # 2: dense columns transformed (dense_transform), label rules; 3: sequential split honours
    version = 3
    # unequal val and test fractions (it halved their sum)
    SCHEMA_FILE_KEYS = (
        ("", "schema_file (YAML) keys, the same as the options above (lists as YAML lists):"),
        ("label: COLUMN", "the label column"),
        ("label_threshold: NUMBER", "label = value >= NUMBER"),
        ("label_equals: VALUE", "label = value equals VALUE (text trimmed, or a number)"),
        ("label_in: [VALUE, ...]", "label = value is one of these; no rule: 0/1 or true/false"),
        ("dense: [COLUMN, ...]", "numeric columns"),
        ("dense_transform: KIND", "auto | none | log1p | standardize | log1p_standardize, or "
                                  "{COLUMN: KIND}"),
        ("categorical: [COLUMN, ...]", "single-valued id columns (integers kept, strings hashed)"),
        ("multi_valued: [COLUMN, ...]", "bags: separator-joined text or Parquet lists"),
        ("separator: TEXT", "separator of a multi-valued text column (default |)"),
    )

    def __init__(self, config: TableConfig):
        super().__init__(config)
        self.spec = config.resolved()
        self.delimiter = FORMATS[config.format] if config.format else \
            SUFFIXES[config.path.suffix.lower()]

    def input_files(self) -> list[Path]:
        return [self.config.path] + ([self.config.schema_file] if self.config.schema_file else [])

    def schema(self) -> Schema:
        s = self.spec
        features = ([FeatureSchema(c) for c in s["categorical"]]
                    + [FeatureSchema(c, True) for c in s["multi_valued"]])
        return Schema(dense=tuple(s["dense"]), features=tuple(features))

    def params(self) -> dict:
        """The config minus chunk_rows, which cannot change the output (so it does not rebuild a
        cache)."""
        return {k: v for k, v in super().params().items() if k != "chunk_rows"}

    def split_spec(self) -> SplitSpec:
        c = self.config
        return SplitSpec(c.split, c.val_fraction, c.test_fraction, c.seed)

    def report(self) -> dict:
        return {"rows": len(self._data["labels"]), "blank_lines": self._data["blank"]}

    def dense_transforms(self) -> dict[str, str]:
        return parse_dense_transform(self.spec["dense_transform"], self.spec["dense"])

    def encodings(self) -> dict[str, dict]:
        """What reading found: CSV text of integers only is int64, other text is hashed, Parquet
        integers are int64; a bag of text is split by the separator, a list keeps its values."""
        return dict(self._data["encodings"])

    def chunks(self) -> Iterator[Chunk]:
        data = self._data
        n = len(data["labels"])
        offsets = {name: np.concatenate([[0], np.cumsum(col[1])])
                   for name, col in data["sparse"].items() if isinstance(col, tuple)}
        for a in range(0, n, self.config.chunk_rows):
            b = min(a + self.config.chunk_rows, n)
            sparse = {name: (col[0][offsets[name][a]:offsets[name][b]], col[1][a:b])
                      if isinstance(col, tuple)
                      else col[a:b] for name, col in data["sparse"].items()}
            yield Chunk(labels=data["labels"][a:b], dense=data["dense"][a:b], sparse=sparse)

    def _where(self, row: int, lines: np.ndarray | None) -> str:
        if lines is None:
            return f"{self.config.path}: row {row + 1}"
        return f"{self.config.path}:{lines[row]}"

    def _read(self) -> tuple[pa.Table, np.ndarray | None, int]:
        """(table of the needed columns, line of each row for CSV or None, blank lines)."""
        s, path = self.spec, self.config.path
        needed = {"label": [s["label"]], "dense": s["dense"], "categorical": s["categorical"],
                  "multi_valued": s["multi_valued"]}
        if self.delimiter:
            present = read_header(path, self.delimiter, quoting=True)
        else:
            present = _parquet(path, lambda: pq.read_schema(path).names)
        for role, names in needed.items():
            for name in names:
                if name not in present:
                    raise DataError(f"{path}: {role} column {name!r} not found; columns present: "
                                    f"{list(present)}")
        columns = [c for names in needed.values() for c in names]
        if self.delimiter is None:
            table, lines, blank = _parquet(path,
                                           lambda: pq.read_table(path, columns=columns)), None, 0
        else:
            text = read_text_table(path, self.delimiter, quoting=True)
            table, lines, blank = text.table.select(columns), text.lines, text.blank
        if table.num_rows == 0:
            what = "no rows" if lines is None else \
                f"no data rows after the header ({blank} blank lines)"
            raise DataError(f"{path}: {what}; expected at least one row")
        return table, lines, blank

    @cached_property
    def _data(self) -> dict:
        s = self.spec
        table, lines, blank = self._read()
        n = table.num_rows
        labels = self._labels(table.column(s["label"]).combine_chunks(), lines)
        dense = np.zeros((n, len(s["dense"])), dtype=np.float32)
        for j, name in enumerate(s["dense"]):
            dense[:, j] = dense_float32(self._numbers(table.column(name), lines, name), name,
                                        partial(self._where, lines=lines))
        sparse: dict[str, np.ndarray | tuple[np.ndarray, np.ndarray]] = {}
        encodings: dict[str, dict] = {}
        for name in s["categorical"]:
            sparse[name], kind = self._ids(table.column(name).combine_chunks(), lines, name)
            encodings[name] = id_encoding(kind)
        for name in s["multi_valued"]:
            column = table.column(name).combine_chunks()
            if pa.types.is_dictionary(column.type):
                column = column.dictionary_decode()
            if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
                try:
                    sparse[name] = bags_from_lists(column)
                except TypeError as exc:  # elements that are neither strings nor integers
                    raise DataError(f"{self.config.path}: multi_valued column {name!r}: "
                                    f"{exc}") from None
                text = pa.types.is_string(column.type.value_type) or pa.types.is_large_string(
                    column.type.value_type)
                encodings[name] = id_encoding("text" if text else "int64", True)
            elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
                sparse[name] = split_bags(column, s["separator"])
                encodings[name] = id_encoding("text", True, s["separator"])
            else:
                raise DataError(f"{self.config.path}: multi_valued column {name!r} has type "
                                f"{column.type}; expected separator-joined text or a list")
        return {"labels": labels, "dense": dense, "sparse": sparse, "blank": blank,
                "encodings": encodings}

    def _labels(self, column: pa.Array, lines: np.ndarray | None) -> np.ndarray:
        """float32 [n] in {0, 1} by the schema's label rule (see the module docstring)."""
        s, name = self.spec, self.spec["label"]
        where = partial(self._where, lines=lines)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        wanted = [s["label_equals"]] if s["label_equals"] is not None else list(s["label_in"])
        text_rule = bool(wanted) and isinstance(wanted[0], str)
        is_text = pa.types.is_string(column.type) or pa.types.is_large_string(column.type)
        if text_rule:
            text = pc.utf8_trim_whitespace(column if is_text else pc.cast(column, pa.string()))
            empty = pc.or_(pc.is_null(text), pc.equal(text, "")).to_numpy(zero_copy_only=False)
            if empty.any():
                raise DataError(f"{where(int(np.argmax(empty)))}: label column {name!r} is missing")
            labels = pc.is_in(text, value_set=pa.array([str(v).strip() for v in wanted])).to_numpy(
                zero_copy_only=False).astype(np.float32)
            return self._check_rule(labels, text, wanted)
        if is_text and not wanted and s["label_threshold"] is None:  # text true/false, any case
            lowered = pc.utf8_lower(pc.utf8_trim_whitespace(column))
            known = pc.is_in(lowered, value_set=pa.array(TRUE_FALSE))
            column = pc.if_else(known, pc.if_else(pc.equal(lowered, "true"), "1", "0"), column)
        if is_text and not wanted and s["label_threshold"] is None:
            trimmed = pc.utf8_trim_whitespace(column)
            readable = pc.or_(pc.equal(trimmed, ""), pc.match_substring_regex(trimmed, _NUMBER))
            bad = np.flatnonzero(~readable.to_numpy(zero_copy_only=False))
            if len(bad):
                raise value_error(where(int(bad[0])), f"label column {name!r}",
                                  column[int(bad[0])].as_py(),
                                  ZERO_ONE)
        value = self._numbers(column, lines, name)
        missing = np.flatnonzero(np.isnan(value))
        if len(missing):
            raise DataError(f"{where(int(missing[0]))}: label column {name!r} is missing")
        if wanted:
            return self._check_rule(np.isin(value, np.asarray(wanted, dtype=np.float64)).astype(
                np.float32),
                                    pa.array(value), wanted)
        if s["label_threshold"] is not None:
            return (value >= s["label_threshold"]).astype(np.float32)
        bad = np.flatnonzero((value != 0) & (value != 1))
        if len(bad):
            shown = column[int(bad[0])].as_py() if is_text else float(value[bad[0]])
            raise value_error(where(int(bad[0])), f"label column {name!r}", shown, ZERO_ONE)
        return value.astype(np.float32)

    def _check_rule(self, labels: np.ndarray, values: pa.Array, wanted: list) -> np.ndarray:
        """Refuse a label_equals / label_in rule that gives every row the same label."""
        if 0.0 < labels.mean() < 1.0:
            return labels
        counts = pc.value_counts(values).to_pylist()
        seen = [c["values"] for c in sorted(counts, key=lambda c: -c["counts"])[:8]]
        rule = "label_equals" if self.spec["label_equals"] is not None else "label_in"
        every = "every row" if labels.mean() == 1.0 else "no row"
        raise DataError(f"{self.config.path}: {rule} "
                        f"{wanted if rule == 'label_in' else wanted[0]!r} matches {every} of label "
                        f"column {self.spec['label']!r}, so every label would be "
                        f"{int(labels.mean())}; values seen: {seen}")

    def _numbers(self, column: pa.ChunkedArray, lines: np.ndarray | None, name: str) -> np.ndarray:
        """float64 [n] of a column, NaN where missing; NaN or infinite values are errors."""
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        where = partial(self._where, lines=lines)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            return parse_floats(column, name, where)
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
                or pa.types.is_boolean(column.type)):
            raise DataError(f"{self.config.path}: column {name!r} has type {column.type}; expected "
                            "numbers")
        values = pc.cast(column, pa.float64(), safe=False).to_numpy(zero_copy_only=False).astype(
            np.float64)
        check_finite(values, column.is_null().to_numpy(zero_copy_only=False), f"column {name!r}",
                     where,
                     lambda row: float(values[row]))
        return values

    def _ids(self, column: pa.Array, lines: np.ndarray | None, name: str) -> tuple[np.ndarray, str]:
        """(int64 raw ids, their encoding's kind) of a categorical column (see the module
        docstring)."""
        where = partial(self._where, lines=lines)
        if pa.types.is_dictionary(column.type):
            column = column.dictionary_decode()
        if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            # CSV: integers?
            ids = parse_integer_ids(column, name, where) if lines is not None else None
            return (hash_tokens(column), "text") if ids is None else (ids, "int64")
        if pa.types.is_integer(column.type) or pa.types.is_boolean(column.type):
            return integer_ids(column), "int64"
        if pa.types.is_floating(column.type):
            values = column.to_numpy(zero_copy_only=False).astype(np.float64)
            subject = f"categorical column {name!r}"
            bad = np.flatnonzero(~np.isnan(values) & ~(
                np.isfinite(values) & (values == np.round(values))))
            if len(bad):
                raise value_error(where(int(bad[0])), subject, float(values[bad[0]]), "hold "
                                                                                      "integers or "
                                                                                      "strings")
            bad = np.flatnonzero((values < -(2.0**63)) | (values >= 2.0**63))
            if len(bad):
                raise value_error(where(int(bad[0])), subject, float(values[bad[0]]),
                                  "hold integers in [-2**63, 2**63)")
            return np.where(np.isnan(values), MISSING_ID, values).astype(np.int64), "int64"
        raise DataError(f"{self.config.path}: categorical column {name!r} has type {column.type}; "
                        "expected integers or strings")


def _parquet(path: Path, read: Callable[[], Any]) -> Any:
    """`read()`, with pyarrow's errors turned into errors that name the file."""
    try:
        return read()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot read as Parquet: {exc}") from None
