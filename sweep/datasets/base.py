"""The data-source contract: a frozen config, a schema, and a stream of chunks.

Each source is one module with a `Config` frozen dataclass (validated in `__post_init__`,
each field's metadata built by `option`: its help, and whether it names files) and a `Source`
subclass. `collide prepare`
builds its command-line options from the config fields, so options are written once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from mappers.portable import TEXT_HASH
from sweep.datasets.dense import DenseTransform
from sweep.datasets.store import Chunk, Schema, SplitSpec
from sweep.errors import DataError
from sweep.plain import plain

__all__ = ["Source", "config_to_params", "id_encoding", "option", "path_options"]


def option(text: str, *, path: bool = False) -> dict:
    """The metadata of an option field: its help text (what `collide prepare --help` and `collide
    datasets` show) and, with `path`, that it names files, so a sweep records it as an absolute
    path."""
    return {"help": text, "path": True} if path else {"help": text}


def path_options(config_cls: type) -> tuple[str, ...]:
    """The option fields of `config_cls` that name files (marked with `option(..., path=True)`)."""
    return tuple(f.name for f in fields(config_cls) if f.metadata.get("path"))


def id_encoding(kind: str, multi_valued: bool = False, separator: str | None = None) -> dict:
    """How a column's raw values became int64 ids, as the manifest and an export record it for
    the serving loader (mappers.portable): kind "int64", "text" (TEXT_HASH) or "hex64"; a
    multi-valued column's text is split by `separator` (None: it held lists)."""
    encoding = {"kind": kind, "multi_valued": multi_valued, "separator": separator}
    return {**encoding, "hash": TEXT_HASH} if kind == "text" else encoding


def config_to_params(config: Any) -> dict:
    """JSON-safe dict of a source config (paths as strings, tuples as lists)."""
    return plain(asdict(config))


class Source(ABC):
    """A data source: `chunks()` yields consecutive rows in the prepared form."""

    name: ClassVar[str]
    Config: ClassVar[type]
    version: ClassVar[int] = 1  # bump when preprocessing changes, so old caches rebuild
    # its `seed` option generates the rows themselves (synthetic), not only a random split of them
    seed_generates_data: ClassVar[bool] = False

    def __init__(self, config: Any):
        if not isinstance(config, self.Config):
            raise TypeError(f"{type(self).__name__} needs a {self.Config.__name__}, got "
                            f"{type(config).__name__}")
        self.config = config

    @classmethod
    def from_params(cls, **params: Any) -> Source:
        """Build from keyword params; an unknown key is an error naming the valid ones."""
        known = {f.name for f in fields(cls.Config)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise DataError(f"unknown option(s) {unknown} for source {cls.name!r}; valid: "
                            f"{sorted(known)}")
        return cls(cls.Config(**params))

    @abstractmethod
    def schema(self) -> Schema: ...

    @abstractmethod
    def split_spec(self) -> SplitSpec: ...

    @abstractmethod
    def chunks(self) -> Iterator[Chunk]: ...

    def input_files(self) -> list[Path]:
        """Files whose identity (path, size, mtime) is part of the cache fingerprint."""
        return []

    def feature_meta(self) -> Mapping[str, Mapping[str, np.ndarray]]:
        """Per-feature arrays to keep with the data; called after `chunks()` is exhausted."""
        return {}

    def dense_transforms(self) -> Mapping[str, str | DenseTransform]:
        """Per dense column: a kind or "auto" for the writer to fit on the train rows, or the
        DenseTransform this source already applied while reading; unnamed columns: "none"."""
        return {}

    def report(self) -> dict:
        """Facts about the read to keep in the manifest, e.g. skipped malformed lines."""
        return {}

    def encodings(self) -> Mapping[str, dict]:
        """Per feature, how a raw value became its int64 id (`tokens.id_encoding`), for serving;
        called after `chunks()` is exhausted. Default: the values were int64 ids already."""
        return {f.name: id_encoding("int64", f.multi_valued) for f in self.schema().features}

    def params(self) -> dict:
        return config_to_params(self.config)
