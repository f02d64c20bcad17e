"""Delimited text files (CSV, TSV, RecBole atomic files) read as string columns, with errors
that name the file and the 1-based line.

Every column is read as text (pyarrow.csv, no type guessing) and converted by the caller,
so "007" stays "007" and a bad value is reported where it is. The header is line 1 and
row i is line i + 2: blank lines are kept while reading (they would shift the numbers)
and dropped afterwards as rows whose fields are all empty; `blank` counts them. Quoted
values may not span lines.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

__all__ = ["TextTable", "parse_floats", "read_header", "read_text_table"]


@dataclass(frozen=True)
class TextTable:
    path: Path
    table: pa.Table  # string columns, blank lines removed
    lines: np.ndarray  # int64 [rows]: the 1-based line of each row
    blank: int  # blank lines dropped


def read_header(path: Path, delimiter: str, quoting: bool) -> list[str]:
    """The column names on the first line of `path`."""
    with open(path, "rb") as f:
        raw = f.readline().rstrip(b"\r\n").removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not a name
    try:
        first = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}:1: the header is not valid UTF-8 ({exc.reason} at byte {exc.start})") from exc
    if not first:
        raise ValueError(f"{path}:1: expected a header line of column names, found an empty line")
    quote = csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE
    return next(csv.reader([first], delimiter=delimiter, quoting=quote))


def read_text_table(path: Path, delimiter: str, *, quoting: bool) -> TextTable:
    """Read `path` (header on line 1) with every column as a string column."""
    names = read_header(path, delimiter, quoting)
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"{path}:1: column names must be unique, repeated: {duplicated}")
    parse = {"delimiter": delimiter, "quote_char": '"' if quoting else False, "ignore_empty_lines": False}
    convert = pacsv.ConvertOptions(column_types={n: pa.string() for n in names}, strings_can_be_null=False)
    try:
        table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=names, skip_rows=1),
                               parse_options=pacsv.ParseOptions(**parse), convert_options=convert)
    except pa.ArrowInvalid as exc:
        raise _located_error(path, names, parse, exc) from exc
    lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    blank = np.ones(table.num_rows, dtype=bool)
    for column in table.columns:
        blank &= pc.equal(column, "").to_numpy(zero_copy_only=False)
    if blank.any():
        table = table.filter(pa.array(~blank))
        lines = lines[~blank]
    return TextTable(path=Path(path), table=table, lines=lines, blank=int(blank.sum()))


def _located_error(path: Path, names: list[str], parse: dict, exc: Exception) -> ValueError:
    """Re-read single-threaded (which numbers rows) to find the line of a parse error."""
    found = []

    def handler(row: pacsv.InvalidRow) -> str:
        found.append(row)
        return "error"

    try:
        pacsv.read_csv(path, read_options=pacsv.ReadOptions(column_names=names, skip_rows=1, use_threads=False),
                       parse_options=pacsv.ParseOptions(**parse, invalid_row_handler=handler),
                       convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names}))
    except pa.ArrowInvalid:
        pass
    if found and found[0].number is not None:
        row = found[0]
        text = row.text if len(row.text) <= 80 else row.text[:80] + "..."
        return ValueError(f"{path}:{row.number}: expected {row.expected_columns} fields (as in the header), "
                          f"found {row.actual_columns}: {text!r}")
    return ValueError(f"{path}: cannot read as delimited text: {exc}")


def parse_floats(values: pa.Array | pa.ChunkedArray, column: str, where: Callable[[int], str]) -> np.ndarray:
    """float64 [n] of text numbers; "" -> NaN. A value that is not a number is an error that
    starts with `where(row)`, e.g. "data.csv:17"."""
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    assert pa.types.is_string(values.type) or pa.types.is_large_string(values.type), values.type
    nulled = pc.if_else(pc.equal(values, ""), pa.scalar(None, pa.string()), values)
    try:
        return pc.cast(nulled, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    except pa.ArrowInvalid:
        lo, hi = 0, len(nulled)  # bisect for the first value that does not convert
        while hi - lo > 1:
            mid = (lo + hi) // 2
            try:
                pc.cast(nulled.slice(lo, mid - lo), pa.float64())
                lo = mid
            except pa.ArrowInvalid:
                hi = mid
        text = nulled[lo].as_py()
        raise ValueError(f"{where(lo)}: column {column!r} must be a number, got {text!r}") from None
