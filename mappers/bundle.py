"""Mapping bundles: a directory with `arrays.npz` and `manifest.json`; never pickle.

    path/
      arrays.npz     learned state as plain numeric arrays (np.savez, no object arrays)
      manifest.json  {"format_version", "strategy", "params", "table_sizes", "combine",
                      "nbytes", "arrays": {name: {"dtype", "shape", "sha256"}}}

The sha256 of an array is taken over its C-order bytes; dtype and shape are checked
separately. Loading uses np.load(allow_pickle=False) and verifies every array before any
mapper is built. `save_bundle` lives here; `load_bundle` is in `mappers/__init__.py`
because it needs the registry.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"
_NUMERIC_KINDS = "biuf"  # bool, int, uint, float


def array_sha256(array: np.ndarray) -> str:
    """Hex sha256 of the array's C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def describe_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """The manifest's "arrays" entry: dtype, shape and sha256 of each array."""
    return {
        name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": array_sha256(a)}
        for name, a in sorted(arrays.items())
    }


def verify_arrays(manifest: dict, arrays: dict[str, np.ndarray], source: str) -> None:
    """Check that `arrays` are exactly the numeric arrays the manifest describes.

    `source` names where the arrays came from (a file path) for the error messages.
    """
    if manifest.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"bundle format_version must be {FORMAT_VERSION}, got "
            f"{manifest.get('format_version')!r} (written by an incompatible collide version?)"
        )
    described = manifest.get("arrays")
    if not isinstance(described, dict):
        raise ValueError(f"bundle manifest has no 'arrays' table describing {source}")
    if set(described) != set(arrays):
        raise ValueError(
            f"{source}: arrays {sorted(arrays)} do not match the manifest's {sorted(described)}"
        )
    for name, array in arrays.items():
        info = described[name]
        if array.dtype.kind not in _NUMERIC_KINDS:
            raise ValueError(f"{source}: array {name!r} has dtype {array.dtype}, not numeric")
        if array.dtype.str != info.get("dtype") or list(array.shape) != info.get("shape"):
            raise ValueError(
                f"{source}: array {name!r} is {array.dtype.str}{list(array.shape)}, "
                f"manifest says {info.get('dtype')}{info.get('shape')}"
            )
        if array_sha256(array) != info.get("sha256"):
            raise ValueError(f"{source}: checksum mismatch for array {name!r} (sha256)")


def save_bundle(mapper: Any, path: str | Path) -> Path:
    """Write `mapper.to_bundle()` into directory `path` (created if needed); returns it."""
    manifest, arrays = mapper.to_bundle()
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ARRAYS_FILE, "wb") as f:
        np.savez(f, **arrays)
    text = json.dumps(manifest, indent=2, sort_keys=True)
    (directory / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")
    return directory


def read_bundle(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a bundle directory; returns (manifest, arrays). Builds no mapper."""
    directory = Path(path)
    manifest_path, arrays_path = directory / MANIFEST_FILE, directory / ARRAYS_FILE
    for required in (manifest_path, arrays_path):
        if not required.is_file():
            raise FileNotFoundError(f"bundle file missing: {required}")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{manifest_path}: not valid JSON ({err})") from err
    if not isinstance(manifest, dict):
        raise ValueError(f"{manifest_path}: expected a JSON object, got {type(manifest).__name__}")
    arrays: dict[str, np.ndarray] = {}
    with np.load(arrays_path, allow_pickle=False) as npz:
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except ValueError as err:  # object arrays need pickle, which we refuse
                raise ValueError(
                    f"{arrays_path}: array {name!r} is a pickled object array; bundles hold "
                    f"plain numeric arrays only and are loaded with allow_pickle=False"
                ) from err
    verify_arrays(manifest, arrays, source=str(arrays_path))
    return manifest, arrays
