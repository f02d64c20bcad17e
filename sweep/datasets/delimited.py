"""Delimited text files (CSV, TSV, RecBole atomic files) read as string columns, with errors
that name the file and the 1-based line; and the rules for the numbers in them.

Every column is read as text (pyarrow.csv, no type guessing) and converted by the caller,
so "007" stays "007" and a bad value is reported where it is. A line ends in "\\n" or
"\\r\\n"; the header is line 1 and data row i is line i + 2, which holds because a quoted
value may not span lines (a quote left open is an error naming its line). A blank line
(no bytes, or only "\\r") is dropped and counted in `blank`; a line of delimiters only
(",,,") is a row of empty fields, not a blank line. Refused with an error naming the line:
a NUL byte, a "\\r" that does not end a line, bytes that are not UTF-8, a field count unlike
the header's. A file that does not exist raises FileNotFoundError; a directory or an
unreadable file is a DataError naming it.

Numbers (`parse_floats`, `check_finite`, `dense_float32`): an empty field is a missing
value (NaN here; callers document what it becomes). "nan", "inf", "-Infinity" or a number
beyond float64 ("1e400") is an error, and so is a dense value beyond float32 (|x| >
3.4028234663852886e+38). Integer ids: see `parse_integer_ids`.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from sweep.datasets.tokens import MISSING_ID
from sweep.errors import DataError

__all__ = ["FLOAT32_MAX", "TextTable", "check_finite", "dense_float32", "parse_floats",
           "parse_integer_ids",
           "read_header", "read_text_table", "value_error"]

FLOAT32_MAX = float(np.finfo(np.float32).max)
FINITE = "be a finite number (a missing value is an empty field, or a null in Parquet)"
_SCAN_BYTES = 1 << 20  # bytes compared at once while scanning for line ends (cache-sized)
_INTEGER = r"^[+-]?[0-9]+$"
_NUL = "a NUL byte (expected UTF-8 text, not a binary or UTF-16 file)"
_CR = 'a carriage return ("\\r") that does not end the line'


def value_error(where: str, subject: str, value: object, expected: str) -> DataError:
    """The one message for a bad value: "<file>:<line>: <subject> must <expected>, got <value>"."""
    return DataError(f"{where}: {subject} must {expected}, got {value!r}")


@dataclass(frozen=True)
class TextTable:
    path: Path
    table: pa.Table  # string columns, blank lines removed
    lines: np.ndarray  # int64 [rows]: the 1-based line of each row
    blank: int  # blank lines dropped


def _unreadable(path: Path, exc: OSError) -> OSError | DataError:
    if isinstance(exc, FileNotFoundError):
        return FileNotFoundError(f"{path}: no such file")
    return DataError(f"{path}: cannot be read as a file: {exc.strerror or exc}")


def _parse_header(path: Path, raw: bytes, delimiter: str, quoting: bool) -> list[str]:
    raw = raw.rstrip(b"\r").removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark is not a name
    try:
        first = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}:1: the header is not valid UTF-8 ({exc.reason} at byte "
                        f"{exc.start})") from exc
    if not first:
        raise DataError(f"{path}:1: expected a header line of column names, found an empty line")
    quote = csv.QUOTE_MINIMAL if quoting else csv.QUOTE_NONE
    try:
        return next(csv.reader([first], delimiter=delimiter, quoting=quote, strict=quoting))
    except csv.Error as exc:
        raise DataError(f"{path}:1: cannot parse the header line: {exc}") from None


def read_header(path: Path, delimiter: str, quoting: bool) -> list[str]:
    """The column names on the first line of `path`."""
    try:
        with open(path, "rb") as f:
            raw = f.readline().rstrip(b"\n")
    except OSError as exc:
        raise _unreadable(Path(path), exc) from None
    return _parse_header(Path(path), raw, delimiter, quoting)


@contextmanager
def _mapped(path: Path) -> Iterator[np.ndarray]:
    """The bytes of `path` as a uint8 array (memory-mapped, valid inside the block)."""
    try:
        mapped = pa.memory_map(str(path))
    except OSError as exc:
        raise _unreadable(path, exc) from None
    with mapped:
        yield np.frombuffer(mapped.read_buffer(), dtype=np.uint8)


def _byte_error(path: Path, newlines: np.ndarray, offset: int, what: str) -> DataError:
    """An error about the byte at `offset`, located as line and byte within the line."""
    index = int(np.searchsorted(newlines, offset))
    start = int(newlines[index - 1]) + 1 if index else 0
    return DataError(f"{path}:{index + 1}: {what} at byte {offset - start + 1} of the line")


def _newlines(path: Path, data: np.ndarray) -> np.ndarray:
    """int64 offsets of every b"\\n"; a NUL byte or a b"\\r" that does not end a line is an
    error."""
    found, bad = [], []
    for start in range(0, len(data), _SCAN_BYTES):
        block = data[start:start + _SCAN_BYTES]
        found.append(np.flatnonzero(block == 10) + start)
        if not bad:
            nul = np.flatnonzero(block == 0) + start
            cr = np.flatnonzero(block == 13) + start
            cr = cr[cr + 1 < len(data)]  # a final CR ends the last line
            cr = cr[data[cr + 1] != 10]
            bad = sorted([(int(at[0]), what) for at, what in ((nul, _NUL), (cr, _CR)) if len(at)])
    newlines = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
    if bad:
        raise _byte_error(path, newlines, *bad[0])
    return newlines


def read_text_table(path: Path, delimiter: str, *, quoting: bool) -> TextTable:
    """Read `path` (header on line 1) with every column as a string column."""
    path = Path(path)
    with _mapped(path) as data:
        newlines = _newlines(path, data)
        start = int(newlines[0]) + 1 if len(newlines) else len(data)
        names = _parse_header(path, bytes(data[:start]).rstrip(b"\n"), delimiter, quoting)
        duplicated = sorted({n for n in names if names.count(n) > 1})
        if duplicated:
            raise DataError(f"{path}:1: column names must be unique, repeated: {duplicated}")
        ends = newlines[1:]
        if start < len(data) and data[-1] != 10:
            ends = np.append(ends, len(data))  # a last line without "\n"
        starts = np.concatenate([[start], ends[:-1] + 1]).astype(np.int64)[:len(ends)]
        lengths = ends - starts
        blank = (lengths == 0) | ((lengths == 1) & (data[np.minimum(starts, len(data) - 1)] == 13))
        parse = {"delimiter": delimiter, "quote_char": '"' if quoting else False,
                 "ignore_empty_lines": False}
        body = _Body(path, data, newlines, start, names, parse, int(lengths.max(initial=0)))
        table = body.read(num_lines=len(ends))
    lines = np.arange(2, table.num_rows + 2, dtype=np.int64)
    if blank.any():
        table = table.filter(pa.array(~blank))
        lines = lines[~blank]
    return TextTable(path=path, table=table, lines=lines, blank=int(blank.sum()))


@dataclass(frozen=True)
class _Body:
    """The lines after the header, parsed with pyarrow.csv; a failure is located by `_diagnose`."""

    path: Path
    data: np.ndarray  # uint8: the whole file
    newlines: np.ndarray  # int64 offsets of every b"\n"
    start: int  # offset of line 2
    names: list[str]
    parse: dict  # pyarrow.csv.ParseOptions
    longest: int  # bytes in the longest line

    def read(self, num_lines: int) -> pa.Table:
        """One row of strings per line; any other outcome is a DataError naming the line."""
        if self.start >= len(self.data):
            return pa.table({n: pa.array([], pa.string()) for n in self.names})
        try:
            table = self._read(use_threads=True, block_size=max(1 << 20, self.longest + 2))
        except pa.ArrowInvalid as exc:
            raise self._diagnose(str(exc)) from None
        if table.num_rows != num_lines:
            raise self._diagnose(f"found {table.num_rows} rows on {num_lines} lines")
        return table

    def _read(self, use_threads: bool, block_size: int, **parse: object) -> pa.Table:
        return pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(self.data[self.start:])),
            read_options=pacsv.ReadOptions(column_names=self.names, use_threads=use_threads,
                                           block_size=block_size),
            parse_options=pacsv.ParseOptions(**self.parse, **parse),
            convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in self.names},
                                                 strings_can_be_null=False))

    def _diagnose(self, problem: str) -> DataError:
        """Locate a failed or inconsistent read: bad UTF-8, a quote left open, or a wrong field
        count."""
        data, newlines = self.data, self.newlines
        start = 0
        while start < len(data):  # decode line-aligned pieces to find the first invalid byte
            index = int(np.searchsorted(newlines, start + _SCAN_BYTES))
            stop = int(newlines[index]) + 1 if index < len(newlines) else len(data)
            try:
                bytes(data[start:stop]).decode("utf-8")
            except UnicodeDecodeError as bad:
                return _byte_error(self.path, newlines, start + bad.start, "not valid UTF-8 "
                                                                           f"({bad.reason})")
            start = stop
        found: list[pacsv.InvalidRow] = []

        def skip(row: pacsv.InvalidRow) -> str:
            found.append(row)
            return "skip"

        try:  # one thread, one block, quote-aware: rows are numbered and a spanning value is whole
            good = self._read(use_threads=False, block_size=min(len(data) + 1, 1 << 30),
                              newlines_in_values=True, invalid_row_handler=skip)
        except pa.ArrowInvalid as exc:
            return DataError(f"{self.path}: cannot read as delimited text: {exc}")
        first_bad = found[0] if found and found[0].number is not None else None
        # the valid rows before `first_bad` are rows 0, 1, ...
        spans = np.zeros(good.num_rows, dtype=bool)
        for column in good.columns:
            spans |= pc.match_substring_regex(column, "[\r\n]").to_numpy(zero_copy_only=False)
        if spans.any() and (first_bad is None or int(np.argmax(spans)) < first_bad.number - 1):
            return _open_quote(self.path, int(np.argmax(spans)) + 2)
        if first_bad is None:
            return DataError(f"{self.path}: cannot read as delimited text: {problem}")
        if "\n" in first_bad.text or "\r" in first_bad.text:
            return _open_quote(self.path, first_bad.number + 1)
        text = first_bad.text if len(first_bad.text) <= 80 else first_bad.text[:80] + "..."
        return DataError(f"{self.path}:{first_bad.number + 1}: expected "
                         f"{first_bad.expected_columns} fields (as in the header), found "
                         f"{first_bad.actual_columns}: {text!r}")


def _open_quote(path: Path, line: int) -> DataError:
    return DataError(f"{path}:{line}: a quoted value runs past the end of the line "
                     "(a missing closing quote?); values may not span lines")


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
    assert pa.types.is_string(values.type) or pa.types.is_large_string(values.type), values.type
    return values


def _first_failure(values: pa.Array, convert: Callable[[pa.Array], object]) -> int:
    """Index of the first value that `convert` rejects (ArrowInvalid), by bisection."""
    lo, hi = 0, len(values)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        try:
            convert(values.slice(lo, mid - lo))
            lo = mid
        except pa.ArrowInvalid:
            hi = mid
    return lo


def check_finite(values: np.ndarray, missing: np.ndarray, subject: str, where: Callable[[int], str],
                 shown: Callable[[int], object]) -> None:
    """Refuse a NaN or infinite value that is not `missing`; `shown(row)` is the value to print."""
    bad = np.flatnonzero(~np.isfinite(values) & ~missing)
    if len(bad):
        raise value_error(where(int(bad[0])), subject, shown(int(bad[0])), FINITE)


def parse_floats(values: pa.Array | pa.ChunkedArray, column: str,
                 where: Callable[[int], str]) -> np.ndarray:
    """float64 [n] of text numbers; "" -> NaN. A value that is not a finite number is an error
    that starts with `where(row)`, e.g. "data.csv:17"."""
    values = _plain(values)
    nulled = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    try:
        numbers = pc.cast(nulled, pa.float64()).to_numpy(zero_copy_only=False).astype(np.float64)
    except pa.ArrowInvalid:
        row = _first_failure(nulled, lambda part: pc.cast(part, pa.float64()))
        raise value_error(where(row), f"column {column!r}", nulled[row].as_py(),
                          "be a number") from None
    missing = nulled.is_null().to_numpy(zero_copy_only=False)
    check_finite(numbers, missing, f"column {column!r}", where, lambda row: values[row].as_py())
    return numbers


def dense_float32(values: np.ndarray, column: str, where: Callable[[int], str]) -> np.ndarray:
    """float32 [n] of finite float64 values (NaN: missing -> 0.0); |x| > FLOAT32_MAX is an error."""
    big = np.flatnonzero(np.abs(values) > FLOAT32_MAX)  # NaN compares False
    if len(big):
        raise value_error(where(int(big[0])), f"dense column {column!r}", float(values[big[0]]),
                          f"fit float32 (|x| <= {FLOAT32_MAX!r})")
    return np.nan_to_num(values, nan=0.0).astype(np.float32)


def parse_integer_ids(values: pa.Array | pa.ChunkedArray, column: str,
                      where: Callable[[int], str]) -> np.ndarray | None:
    """int64 [n] ids of a text column whose non-empty values all look like integers (an optional
    sign, then ASCII digits), or None when one does not (the caller hashes such a column).

    "" -> MISSING_ID; [-2**63, 2**63) keep their value; [2**63, 2**64) keep their 64-bit
    pattern (two's complement: 2**64 - 1 -> -1, as the criteo source does with 16 hex
    digits); anything else is an error that starts with `where(row)`.
    """
    values = _plain(values)
    text = pc.if_else(pc.equal(values, ""), pa.scalar(None, values.type), values)
    try:  # the common case in one cast; Arrow also reads "0x1f", which is not an integer here
        ids = pc.cast(text, pa.int64())
        chars = values.buffers()[2]  # the UTF-8 bytes of every value: no "x" or "X" in them, no hex
        if chars is None or not ((np.frombuffer(chars, dtype=np.uint8) | 0x20) == ord("x")).any():
            return pc.fill_null(ids, MISSING_ID).to_numpy(zero_copy_only=False).astype(np.int64)
    except pa.ArrowInvalid:
        pass
    if pc.any(pc.invert(pc.match_substring_regex(text, _INTEGER))).as_py() is True:
        return None
    text = pc.utf8_ltrim(text, characters="+")
    none = pa.scalar(None, text.type)

    def convert(part: pa.Array) -> pa.Array:
        negative = pc.starts_with(part, "-")
        signed = pc.cast(pc.if_else(negative, part, none), pa.int64())
        unsigned = pc.cast(pc.cast(pc.if_else(negative, none, part), pa.uint64()), pa.int64(),
                           safe=False)
        return pc.coalesce(signed, unsigned)

    try:
        ids = convert(text)
    except pa.ArrowInvalid:
        row = _first_failure(text, convert)
        raise value_error(where(row), f"categorical column {column!r}", values[row].as_py(),
                          "be an integer in [-2**63, 2**64) when all its values are "
                          "integers") from None
    return pc.fill_null(ids, MISSING_ID).to_numpy(zero_copy_only=False).astype(np.int64)
