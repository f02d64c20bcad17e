"""Streaming `.npy` column files: append chunks, fix the header once the length is known.

A prepared dataset can be far larger than RAM (20M rows x 26 features of int64 is 4 GB),
so every column is written chunk by chunk. `NpyAppender` writes a fixed-size `.npy`
header for an empty array, appends raw little-endian bytes, and on `close()` rewrites the
header in place with the final shape. The result is an ordinary `.npy` file that
`np.load(path, mmap_mode="r")` memory-maps.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

__all__ = ["NpyAppender"]

_HEADER_BYTES = 256  # total header size incl. magic; a multiple of 64 as numpy recommends


def _header(dtype: np.dtype, shape: tuple[int, ...]) -> bytes:
    descr = np.lib.format.dtype_to_descr(dtype)
    text = repr({"descr": descr, "fortran_order": False, "shape": shape})
    prefix = np.lib.format.MAGIC_PREFIX + b"\x01\x00"
    body_len = _HEADER_BYTES - len(prefix) - 2
    body = text.encode("latin1")
    if len(body) + 1 > body_len:
        raise ValueError(f"npy header for shape {shape} does not fit in {_HEADER_BYTES} bytes")
    body = body + b" " * (body_len - len(body) - 1) + b"\n"
    return prefix + struct.pack("<H", body_len) + body


class NpyAppender:
    """Append rows of a fixed dtype and inner shape to a `.npy` file on disk."""

    def __init__(self, path: Path, dtype: np.dtype | type, inner_shape: tuple[int, ...] = ()):
        self.path = Path(path)
        self.dtype = (np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1
                      else np.dtype(dtype))
        self.inner_shape = tuple(inner_shape)
        self.length = 0
        self._file = open(self.path, "wb")  # noqa: SIM115 - closed in close()
        self._file.write(_header(self.dtype, (0, *self.inner_shape)))

    def append(self, array: np.ndarray) -> None:
        array = np.asarray(array)
        if array.shape[1:] != self.inner_shape:
            raise ValueError(
                f"{self.path.name}: chunk has inner shape {array.shape[1:]}, expected "
                f"{self.inner_shape}"
            )
        try:
            self._file.write(np.ascontiguousarray(array, dtype=self.dtype).tobytes())
        except OSError as exc:  # e.g. a full disk: name the file
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        self.length += array.shape[0]

    def close(self) -> None:
        if self._file.closed:
            return
        self._file.flush()
        self._file.seek(0)
        self._file.write(_header(self.dtype, (self.length, *self.inner_shape)))
        self._file.close()

    def __enter__(self) -> NpyAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
