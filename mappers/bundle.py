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
`save_bundle` lives here; `load_bundle` is in `mappers/__init__.py` (it needs the registry).
"""

from __future__ import annotations

import hashlib
import json
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

FORMAT_VERSION = 2  # 2: manifest "digest"; 1 (no digest) is refused
MANIFEST_FILE = "manifest.json"
ARRAYS_FILE = "arrays.npz"
_NUMERIC_KINDS = "biuf"  # bool, int, uint, float
_NPY_SUFFIX = ".npy"
# what reading a damaged zip or .npy raises (zlib.error: corrupt deflate data)
_BAD_ARCHIVE = (ValueError, EOFError, RuntimeError, NotImplementedError, zipfile.BadZipFile,
                zlib.error)


def array_sha256(array: np.ndarray) -> str:
    """Hex sha256 of the array's C-order bytes."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def manifest_digest(manifest: dict[str, Any]) -> str:
    """Hex sha256 of a manifest's canonical JSON (sorted keys), its own "digest" left out.

    Used for bundle manifests and for export.json alike."""
    body = {k: v for k, v in manifest.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode(
        )).hexdigest()


def describe_arrays(arrays: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
    """The manifest's "arrays" entry: dtype, shape and sha256 of each array."""
    return {
        name: {"dtype": a.dtype.str, "shape": list(a.shape), "sha256": array_sha256(a)}
        for name, a in sorted(arrays.items())
    }


def check_format_version(manifest: dict, source: str) -> None:
    """Refuse a manifest of another bundle format; `source` names it in the message."""
    version = manifest.get("format_version")
    if version == 1:
        raise ValueError(
            f"{source}: bundle format_version 1 was written by an older collide (its manifest "
            f"has no digest); re-run the trial or re-export to write format {FORMAT_VERSION}"
        )
    if version != FORMAT_VERSION:
        raise ValueError(
            f"{source}: bundle format_version must be {FORMAT_VERSION}, got {version!r} "
            f"(written by an incompatible collide version?)"
        )


def _described_arrays(manifest: dict, source: str) -> dict[str, dict[str, Any]]:
    """The manifest's "arrays" table, each entry with a string dtype and a list-of-ints shape."""
    described = manifest.get("arrays")
    if not isinstance(described, dict):
        raise ValueError(f"{source}: bundle manifest has no 'arrays' table")
    for name, info in described.items():
        shape = info.get("shape") if isinstance(info, dict) else None
        ok = (isinstance(info, dict) and isinstance(info.get("dtype"), str)
              and isinstance(shape, list))
        if not ok or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0
                             for n in shape):
            raise ValueError(
                f"{source}: manifest entry for array {name!r} must be "
                f"{{'dtype': str, 'shape': [int >= 0, ...], 'sha256': str}}, got {info!r}"
            )
    return described


def _refuse_non_numeric(dtype: np.dtype, name: str, source: str) -> None:
    if dtype.hasobject:
        raise ValueError(
            f"{source}: array {name!r} is a pickled object array; bundles hold plain numeric "
            f"arrays only and are loaded with allow_pickle=False"
        )
    if dtype.kind not in _NUMERIC_KINDS:
        raise ValueError(f"{source}: array {name!r} has dtype {dtype}, not numeric (bool, int or "
                         "float)")


def verify_arrays(manifest: dict, arrays: dict[str, np.ndarray], source: str) -> None:
    """Check that `arrays` are exactly the numeric arrays the manifest describes.

    `source` names where the arrays came from (a file path) for the error messages.
    """
    check_format_version(manifest, source)
    described = _described_arrays(manifest, source)
    if set(described) != set(arrays):
        raise ValueError(
            f"{source}: arrays {sorted(arrays)} do not match the manifest's {sorted(described)}"
        )
    for name, array in arrays.items():
        info = described[name]
        _refuse_non_numeric(array.dtype, name, source)
        if array.dtype.str != info["dtype"] or list(array.shape) != info["shape"]:
            raise ValueError(
                f"{source}: array {name!r} is {array.dtype.str}{list(array.shape)}, "
                f"manifest says {info['dtype']}{info['shape']}"
            )
        if array_sha256(array) != info.get("sha256"):
            raise ValueError(f"{source}: checksum mismatch for array {name!r} (sha256)")


def _read_npy_header(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, source: str
) -> tuple[np.dtype, tuple[int, ...], bool, int]:
    """(dtype, shape, fortran_order, header bytes) of one .npy member; reads only its header."""
    try:
        with archive.open(info) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(member)
            elif version == (2, 0):
                shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(member)
            else:
                raise ValueError(f"npy format version {version}, expected (1, 0) or (2, 0)")
            return dtype, tuple(shape), fortran_order, member.tell()
    except _BAD_ARCHIVE as err:
        raise ValueError(f"{source}: array {name!r} has no valid .npy header ({err})") from err


def check_npz_members(arrays_path: str | Path, manifest: dict) -> None:
    """Check arrays.npz against the manifest from its zip directory and .npy headers alone.

    No array data is decompressed: each member's header must give the manifest's dtype
    and shape in C order, and its declared uncompressed size (ZipInfo.file_size) must be
    exactly header + size * itemsize, so loading allocates only what the manifest says.
    """
    source = str(arrays_path)
    described = _described_arrays(manifest, source)
    try:
        archive = zipfile.ZipFile(arrays_path)
    except (*_BAD_ARCHIVE, OSError) as err:
        raise ValueError(f"{source}: not a zip archive of .npy arrays as np.savez writes "
                         f"({err})") from err
    with archive:
        infos = archive.infolist()
        names = [i.filename.removesuffix(_NPY_SUFFIX) for i in infos]
        if len(infos) > len(described) or len(set(names)) != len(names):
            raise ValueError(
                f"{source}: arrays {sorted(names)} do not match the manifest's {sorted(described)}"
            )
        headers = {}
        for info, name in zip(infos, names, strict=True):
            if not info.filename.endswith(_NPY_SUFFIX):
                raise ValueError(f"{source}: member {info.filename!r} is not a NAME.npy array")
            headers[name] = (info, *_read_npy_header(archive, info, name, source))
            _refuse_non_numeric(headers[name][1], name, source)
    if set(headers) != set(described):
        raise ValueError(
            f"{source}: arrays {sorted(headers)} do not match the manifest's {sorted(described)}"
        )
    for name, (info, dtype, shape, fortran_order, header_bytes) in headers.items():
        expected = described[name]
        if dtype.str != expected["dtype"] or list(shape) != expected["shape"]:
            raise ValueError(
                f"{source}: array {name!r} is {dtype.str}{list(shape)} in its .npy header, "
                f"manifest says {expected['dtype']}{expected['shape']}"
            )
        if fortran_order:
            raise ValueError(f"{source}: array {name!r} is stored in Fortran order; bundles store "
                             "C order")
        implied = header_bytes + math.prod(shape) * dtype.itemsize
        if info.file_size != implied:
            raise ValueError(
                f"{source}: array {name!r} declares {info.file_size} bytes uncompressed, but its "
                f"header and the manifest's {dtype.str}{list(shape)} imply {implied}"
            )


def save_bundle(mapper: Any, path: str | Path) -> Path:
    """Write `mapper.to_bundle()` and its manifest digest into directory `path`; returns it."""
    manifest, arrays = mapper.to_bundle()
    manifest = {**manifest, "digest": manifest_digest(manifest)}
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ARRAYS_FILE, "wb") as f:
        np.savez(f, **arrays)
    text = json.dumps(manifest, indent=2, sort_keys=True)
    (directory / MANIFEST_FILE).write_text(text + "\n", encoding="utf-8")
    return directory


def read_json_object(path: Path) -> dict:
    """The JSON object in file `path`; ValueError naming the file if it is not one."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid JSON ({err})") from err
    if not isinstance(value, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def read_manifest(path: str | Path) -> dict:
    """The verified manifest of the bundle in directory `path`: format 2, digest matching."""
    manifest_path = Path(path) / MANIFEST_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"bundle file missing: {manifest_path}")
    manifest = read_json_object(manifest_path)
    check_format_version(manifest, str(manifest_path))
    recorded, actual = manifest.get("digest"), manifest_digest(manifest)
    if recorded != actual:
        raise ValueError(
            f"{manifest_path}: manifest digest mismatch: it records {recorded!r} but its "
            f"contents give {actual!r}; the manifest was changed after the bundle was written"
        )
    return manifest


def read_bundle(path: str | Path) -> tuple[dict, dict[str, np.ndarray]]:
    """Read and verify a bundle directory; returns (manifest, arrays). Builds no mapper."""
    arrays_path = Path(path) / ARRAYS_FILE
    manifest = read_manifest(path)
    if not arrays_path.is_file():
        raise FileNotFoundError(f"bundle file missing: {arrays_path}")
    check_npz_members(arrays_path, manifest)  # before any array data is decompressed
    arrays: dict[str, np.ndarray] = {}
    with np.load(arrays_path, allow_pickle=False) as npz:
        for name in npz.files:
            try:
                arrays[name] = npz[name]
            except _BAD_ARCHIVE as err:  # short or corrupt data, bad CRC
                raise ValueError(f"{arrays_path}: array {name!r} could not be read "
                                 f"({err})") from err
    verify_arrays(manifest, arrays, source=str(arrays_path))
    return manifest, arrays
