"""`prepare`: build a prepared dataset once, reuse it while nothing changed, never half-write.

The cache key (fingerprint) is a sha256 over the source name and version, its params, the
prepared-format version, and the identity of every input file (resolved path, size,
mtime). The same call again only reads `manifest.json` and memory-maps the columns.

Atomicity: the writer fills a sibling temporary directory; `manifest.json` is written
last; the finished directory is renamed into place. A prepare killed at any point leaves
either the old valid cache or no directory at `out_dir`, plus a stale temporary directory
that the next prepare removes. A directory without a valid manifest is never accepted.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
import uuid
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

__all__ = ["DEFAULT_CACHE_DIR", "default_out_dir", "fingerprint", "prepare"]

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(".collide") / "prepared"


def fingerprint(source: Source) -> str:
    files = []
    for path in source.input_files():
        path = Path(path).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: input file for source {source.name!r} does not exist")
        stat = path.stat()
        files.append({"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns})
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


def _remove_stale_temporaries(out_dir: Path) -> None:
    """Remove temporaries of prepares that died (their pid is gone) and leftover old copies."""
    for stale in out_dir.parent.glob(f".{out_dir.name}.*"):
        owner = stale.name.rsplit(".", 2)[-2]
        if not (owner.isdigit() and _pid_alive(int(owner))):
            shutil.rmtree(stale, ignore_errors=True)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def prepare(source: Source, out_dir: str | Path | None = None, *, force: bool = False) -> PreparedDataset:
    """Prepare `source` into `out_dir` (default under .collide/prepared), or reuse a valid cache."""
    key = fingerprint(source)
    out_dir = Path(out_dir) if out_dir is not None else default_out_dir(source)
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
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    started = time.perf_counter()
    try:
        writer = PreparedWriter(tmp, source.schema(), source.split_spec())
        for chunk in source.chunks():
            writer.append(chunk)
        writer.finish(source=source.name, params=source.params(), fingerprint=key,
                      feature_meta=source.feature_meta(), report=source.report())
        if out_dir.exists():
            old = out_dir.parent / f".{out_dir.name}.old.{uuid.uuid4().hex[:8]}"
            os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    log.info("prepared %s data at %s in %.1f s", source.name, out_dir, time.perf_counter() - started)
    return load_prepared(out_dir)
