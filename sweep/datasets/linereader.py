"""Read a text file (plain or gzip) as blocks of complete lines, for vectorised parsing.

Each block is a fresh uint8 array: `textscan.PAD` zero bytes, then whole lines, each
ending in b"\\n" (a missing final newline is added). The bytes after the last newline of a
read are carried into the next block, so no line is ever split.

A file that does not exist raises FileNotFoundError naming it; a directory or an unreadable
file is a DataError naming it. Reading a truncated or corrupt gzip file raises one of
`READ_ERRORS` (EOFError, gzip.BadGzipFile, zlib.error) mid-stream; `read_error` turns it into
a DataError naming the file and the line reached.
"""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from sweep.datasets.textscan import PAD
from sweep.errors import DataError

__all__ = ["READ_ERRORS", "LineBlockReader", "open_maybe_gzip", "read_error"]

_GZIP_MAGIC = b"\x1f\x8b"
READ_ERRORS = (EOFError, OSError, zlib.error)  # gzip.BadGzipFile is an OSError


def read_error(path: Path, gzipped: bool, line: int, exc: BaseException) -> DataError:
    """A mid-stream read failure (see READ_ERRORS) as an error naming the file and the line
    reached."""
    what = "the gzip data is truncated or corrupt" if gzipped else "the file cannot be read"
    reason = str(exc) or type(exc).__name__
    return DataError(f"{path}: {what}: reading stopped after line {line} ({reason})")


@contextmanager
def open_maybe_gzip(path: Path) -> Iterator[tuple[io.RawIOBase | gzip.GzipFile, Callable[[], int]]]:
    """(byte stream, position) for `path`; gzip is detected by its magic bytes, not its name.

    `position()` is the offset in the file on disk (compressed bytes for gzip), for progress.
    """
    try:
        raw = open(path, "rb", buffering=0)  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot be read as a file: {exc.strerror or exc}") from None
    try:
        magic = raw.read(2)
        raw.seek(0)
        if magic == _GZIP_MAGIC:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                yield stream, raw.tell
        else:
            yield raw, raw.tell
    finally:
        raw.close()


def _last_newline(data: np.ndarray) -> int:
    """Index of the last b"\\n" in data, or -1; scans backwards in growing windows."""
    window = 1 << 16
    stop = len(data)
    while stop > 0:
        start = max(0, stop - window)
        hits = np.flatnonzero(data[start:stop] == 10)
        if len(hits):
            return start + int(hits[-1])
        stop = start
        window *= 4
    return -1


class LineBlockReader:
    """Blocks of about `lines_per_block` complete lines read from a byte stream.

    `bytes_per_line` is the running estimate that sizes the reads; a consumer that counts
    lines may refine it with `observe(num_bytes, num_lines)`.
    """

    def __init__(self, stream: io.RawIOBase | gzip.GzipFile, lines_per_block: int,
                 bytes_per_line: float = 256.0):
        self.stream = stream
        self.lines_per_block = lines_per_block
        self.bytes_per_line = bytes_per_line

    def observe(self, num_bytes: int, num_lines: int) -> None:
        if num_lines > 0:
            self.bytes_per_line = max(1.0, num_bytes / num_lines)

    def __iter__(self) -> Iterator[np.ndarray]:
        carry = np.zeros(0, dtype=np.uint8)
        eof = False
        while not eof or len(carry):
            capacity = max(int(self.lines_per_block * self.bytes_per_line * 1.02) + 64,
                           2 * len(carry), 1 << 12)
            # +1: room for a missing final newline
            buf = np.empty(PAD + capacity + 1, dtype=np.uint8)
            buf[:PAD] = 0
            filled = len(carry)
            buf[PAD:PAD + filled] = carry
            view = memoryview(buf)
            while filled < capacity and not eof:
                got = self.stream.readinto(view[PAD + filled:PAD + capacity])
                if not got:
                    eof = True
                else:
                    filled += got
            data = buf[PAD:PAD + filled]
            if eof:
                if filled == 0:
                    return
                if data[-1] != 10:
                    buf[PAD + filled] = 10
                    filled += 1
                carry = np.zeros(0, dtype=np.uint8)
                yield buf[:PAD + filled]
                return
            cut = _last_newline(data) + 1
            if cut == 0:  # one line longer than the block: read on with a bigger block
                carry = data.copy()
                continue
            carry = data[cut:].copy()
            yield buf[:PAD + cut]
