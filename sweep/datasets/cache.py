"""`prepare`: build a prepared dataset once, reuse it while nothing changed, never half-write.

The cache key (fingerprint) is a sha256 over the source name and version, its params, the
prepared-format version, and the identity of every input file (resolved path, size,
mtime). The same call again only reads `manifest.json` and memory-maps the columns.

Atomicity: the writer fills a sibling staging directory (`sweep.outputs`); `manifest.json`
is written last; the finished directory is swapped into place. A prepare killed at any
point leaves either the old valid cache or no directory at `out_dir`, plus a stale staging
directory that the next prepare (or reuse) removes. A directory without a valid manifest
is never accepted.

Ownership: an existing `out_dir` is rebuilt only if collide wrote it (its marker, or a
manifest of a prepared dataset); any other non-empty directory, or one that holds an input
file, is refused with `OutputDirError` naming it, and nothing is deleted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import stat
import time
from pathlib import Path

from sweep.datasets.base import Source
from sweep.datasets.prepared import (
    FORMAT_VERSION,
    PreparedDataError,
    PreparedDataset,
    load_prepared,
    read_manifest,
)
from sweep.datasets.store import PreparedWriter
from sweep.errors import DataError
from sweep.outputs import check_replaceable, remove_stale_staging, replace_dir, staging_dir

__all__ = ["DEFAULT_CACHE_DIR", "default_out_dir", "fingerprint", "prepare"]

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(".collide") / "prepared"


def _kind(path: Path) -> str:
    mode = path.stat().st_mode
    kinds = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
             (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
             (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def fingerprint(source: Source) -> str:
    files = []
    for path in source.input_files():
        path = Path(path).resolve()
        if not path.exists():
            raise FileNotFoundError(f"{path}: input file for source {source.name!r} does not exist")
        if not path.is_file():
            raise DataError(f"{path}: input file for source {source.name!r} is {_kind(path)}, not "
                            "a regular file; collide reads its input more than once, so give it "
                            "the file itself")
        info = path.stat()
        files.append({"path": str(path), "size": info.st_size, "mtime_ns": info.st_mtime_ns})
    key = {
        "format_version": FORMAT_VERSION,
        "source": source.name,
        "source_version": source.version,
        "params": source.params(),
        "files": files,
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def default_out_dir(source: Source, cache_dir: Path = DEFAULT_CACHE_DIR) -> Path:
    return Path(cache_dir) / f"{source.name}-{fingerprint(source)[:12]}"


def _legacy_prepared(path: Path) -> bool:
    """A prepared dataset written before output markers: its manifest has collide's keys."""
    try:
        manifest = json.loads((path / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict)
            and {"format_version", "fingerprint", "source"} <= set(manifest))


def prepare(source: Source, out_dir: str | Path | None = None, *,
            force: bool = False) -> PreparedDataset:
    """Prepare `source` into `out_dir` (default under .collide/prepared), or reuse a valid cache."""
    key = fingerprint(source)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(source)
    check_replaceable(out_dir, "prepared", legacy=_legacy_prepared, inputs=source.input_files())
    remove_stale_staging(out_dir)
    if not force and out_dir.exists():
        try:
            manifest = read_manifest(out_dir)
        except PreparedDataError as exc:
            log.warning("rebuilding %s: %s", out_dir, exc)
        else:
            if manifest.get("fingerprint") == key:
                log.info("reusing prepared %s data at %s", source.name, out_dir)
                return load_prepared(out_dir, _manifest=manifest)
            log.info("rebuilding %s: its inputs or parameters changed", out_dir)
    staging = staging_dir(out_dir)
    started = time.perf_counter()
    try:
        writer = PreparedWriter(staging, source.schema(), source.split_spec())
        for chunk in source.chunks():
            writer.append(chunk)
        writer.finish(source=source.name, params=source.params(), fingerprint=key,
                      feature_meta=source.feature_meta(), report=source.report(),
                      dense_transforms=source.dense_transforms(), encodings=source.encodings())
        replace_dir(staging, out_dir, "prepared", legacy=_legacy_prepared)
    except OSError as exc:
        if exc.filename:
            raise
        raise OSError(exc.errno, f"{exc.strerror} (while writing the prepared data for {out_dir})",
                      str(staging)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("prepared %s data at %s in %.1f s", source.name, out_dir, time.perf_counter()
             - started)
    return load_prepared(out_dir)
