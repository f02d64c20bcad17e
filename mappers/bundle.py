"""Mapping bundles: a directory with `arrays.npz` and `manifest.json`; never pickle.

    path/
      arrays.npz     learned state as plain numeric arrays (np.savez: one NAME.npy per
                     array, no object arrays, C order)
      manifest.json  {"format_version": 2, "strategy", "params", "table_sizes", "combine",
                      "nbytes", "arrays": {name: {"dtype", "shape", "sha256"}}, "digest"}

"digest" is `manifest_digest(manifest)`: the sha256 of the manifest's canonical JSON
without "digest" itself, so it covers params (seed, unseen, ...), sizes and every array's
checksum; a bundle is identified by it. The sha256 of an array is taken over its C-order
bytes; dtype and shape are recorded separately.

`read_bundle` refuses a bundle unless, in this order: the manifest is format 2 and its
digest matches; every .npy header in the zip (read without decompressing any array data)
has the manifest's dtype and shape, C order, and a declared size equal to what they imply;
the arrays, loaded with np.load(allow_pickle=False), match their checksums. A crafted
arrays.npz thus cannot make the loader allocate more than its manifest declares.
Writing lives here (`save_bundle`); reading and verifying live in `mappers/portable.py`, the
numpy-only serving loader, so that a server checks bundles exactly as collide does; `load_bundle`
is in `mappers/__init__.py` (it needs the registry).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .portable import (
    ARRAYS_FILE,
    FORMAT_VERSION,
    MANIFEST_FILE,
    TABLES_KIND,
    array_sha256,
    check_format_version,
    check_npz_members,
    manifest_digest,
    read_bundle,
    read_json_object,
    read_manifest,
    table_arrays,
    verify_arrays,
)

__all__ = ["ARRAYS_FILE", "FORMAT_VERSION", "MANIFEST_FILE", "array_sha256", "check_format_version",
           "check_npz_members", "describe_arrays", "manifest_digest", "read_bundle",
           "read_json_object", "read_manifest", "save_bundle", "save_tables",
           "verify_arrays"]


def describe_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """The manifest's "arrays" entry: dtype, shape and sha256 of each array."""
    return {
        name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": array_sha256(a)}
        for name, a in sorted(arrays.items())
    }


def save_bundle(mapper: Any, path: str | Path) -> Path:
    """Write `mapper.to_bundle()` and its manifest digest into directory `path`; returns it."""
    return _write(*mapper.to_bundle(), path)


def save_tables(tables: list[np.ndarray], precision: str, feature: str, path: str | Path,
                projections: list[np.ndarray] = ()) -> Path:
    """Write a feature's embedding tables, stored at `precision` (`portable.quantize`), as a
    bundle (the same files and checks) whose manifest also says `kind` collide-tables, the
    feature, the precision and each table's (rows, dim); a mixed-dimension feature's tables are
    its blocks, and its `projections` (fp32 (dim, D), one per block but the first) are stored as
    `p<k>_values` and listed under "projections". Returns its directory."""
    arrays = table_arrays(tables, precision, projections)
    manifest = {"format_version": FORMAT_VERSION, "kind": TABLES_KIND, "feature": feature,
                "precision": precision, "shapes": [list(t.shape) for t in tables],
                **({"projections": [list(p.shape) for p in projections]} if len(projections)
                   else {}),
                "arrays": describe_arrays(arrays)}
    return _write(manifest, arrays, path)


def _write(manifest: dict, arrays: dict[str, np.ndarray], path: str | Path) -> Path:
    manifest = {**manifest, "digest": manifest_digest(manifest)}
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ARRAYS_FILE, "wb") as f:
        np.savez(f, **arrays)
    text = json.dumps(manifest, indent=2, sort_keys=True)
    (directory / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")
    return directory
