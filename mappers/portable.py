"""collide's serving loader: numpy and the Python standard library only.

This one file reads a `collide export` directory, verifies it, and maps raw values, as the
user's data holds them, to embedding rows. Copy it into a serving codebase as it is (it imports
nothing else), or import it as `mappers.portable`. docs/EXPORT.md specifies the format:

    from portable import load_export          # or: from mappers.portable import load_export
    export = load_export("exported")          # verifies export.json, every bundle and digest
    rows = export.transform("occupation", ["Sales", "Tech-support", None])
    rows, offsets = export.transform("tags", ["a|b", "c"])      # a multi-valued feature
    dense = export.transform_dense(raw_dense)                    # [n, num_dense] float32

collide itself reads bundles through this module (mappers/bundle.py), hashes text ids with its
`text_ids` (sweep.hashing) and applies dense transforms with its `dense_transform`, so there is
one definition of each. The mapping of ids to rows is reimplemented here in plain numpy (the
mappers' own code is faster and needs the registry); tests check that both give the same rows
for every strategy.

Raw values become int64 ids by the feature's `encoding` (ENCODINGS), recorded when the data
was prepared:

- "int64": integers as they are (Python or numpy ints, bools as 0/1, integral floats, or
  decimal text such as "042" or "-7"); values in [2**63, 2**64) keep their 64-bit pattern;
- "text": the first 8 bytes of blake2b(UTF-8 of the exact string), little-endian, signed
  (TEXT_HASH); no trimming, no case folding;
- "hex64": 1 to 16 hex digits (Criteo's ids), their 64-bit pattern.

In every encoding None, "" and a float NaN are the missing value, id MISSING_ID (-1). A
multi-valued feature takes, per row, a list of values or one string joined by its recorded
`separator`; empty tokens are dropped and a row left empty is [MISSING_ID].
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["ENCODINGS", "EXPORT_FILE", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "MISSING_ID",
           "PRECISIONS", "TEXT_HASH", "Export", "dense_transform", "dense_values", "dequantize",
           "encode", "encode_bags", "feature_ids", "load_export", "precision_scheme", "quantize",
           "read_bundle", "rows_of", "signed_log1p", "table_bytes", "text_ids"]

# ---------------------------------------------------------------- bundles (mappers/bundle.py)

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


# ---------------------------------------------------------------- ids to rows

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL1, _MUL2 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
_LOW32 = np.uint64(0xFFFFFFFF)


def _mix(ids: np.ndarray, key: np.uint64) -> np.ndarray:
    """splitmix64's finaliser of (id + key) on uint64, as mappers/hashing.py computes it."""
    with np.errstate(over="ignore"):
        z = ids.view(np.uint64) + key
        z ^= z >> np.uint64(30)
        z *= _MUL1
        z ^= z >> np.uint64(27)
        z *= _MUL2
        z ^= z >> np.uint64(31)
    return z


def _reduce(h: np.ndarray, size: int) -> np.ndarray:
    """The 32 bits of `h` (already shifted down) mapped into [0, size): (h * size) >> 32."""
    return ((h * np.uint64(size)) >> np.uint64(32)).view(np.int64)


def rows_of(manifest: dict, arrays: dict[str, np.ndarray],
            ids: np.ndarray) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """Rows of int64 `ids` under a verified bundle (`read_bundle`): one int64 array, or a pair
    for the two-table strategies (qr, double_hash)."""
    strategy, keys = manifest.get("strategy"), arrays["hash_keys"]
    sizes = [int(n) for n in manifest["table_sizes"]]
    ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
    if strategy == "hash":
        return _reduce(_mix(ids, keys[0]) >> np.uint64(32), sizes[0])
    if strategy == "double_hash":
        return tuple(_reduce(_mix(ids, keys[t]) >> np.uint64(32), sizes[t]) for t in (0, 1))
    if strategy == "qr":
        h = _mix(ids, keys[0])
        return _reduce(h >> np.uint64(32), sizes[0]), _reduce(h & _LOW32, sizes[1])
    stored, stored_rows, layout = arrays["keys"], arrays["rows"], arrays["layout"]
    _, lo, hi, oov_row = (int(v) for v in layout)
    at = np.minimum(np.searchsorted(stored, ids), max(stored.size - 1, 0))
    found = stored[at] == ids if stored.size else np.zeros(ids.size, dtype=bool)
    rows = np.where(found, stored_rows[at] if stored.size else 0, 0).astype(np.int64)
    missing = ~found
    if missing.any():
        unseen = manifest["params"].get("unseen", "hash")
        if unseen == "error":
            shown = np.unique(ids[missing])[:5].tolist()
            raise ValueError(f"{int(missing.sum())} of {ids.size} ids are not in the fitted "
                             f"vocabulary (unseen='error'), e.g. {shown}")
        rows[missing] = oov_row if unseen == "oov_row" else \
            lo + _reduce(_mix(ids[missing], keys[0]) >> np.uint64(32), hi - lo)
    return rows


_LEARNED = ("full", "frequency", "embedding", "frequency_embedding", "mixed_dim", "mch")
STRATEGIES = ("hash", "double_hash", "qr", *_LEARNED)  # the maps this loader can apply

# ---------------------------------------------------------------- raw values to ids

MISSING_ID = -1
TEXT_HASH = "blake2b-8-le"  # the "text" encoding's hash: 8-byte blake2b digest, little-endian
ENCODINGS = ("int64", "text", "hex64")
_DECIMAL = re.compile(r"[+-]?[0-9]+\Z")
_HEX = re.compile(r"[0-9a-fA-F]{1,16}\Z")
_WRAP = 1 << 64


def text_ids(values: Any) -> np.ndarray:
    """int64 ids of strings: the first 8 bytes of blake2b(UTF-8), little-endian, signed; each
    distinct string is hashed once."""
    values = np.asarray([v if isinstance(v, str) else str(v) for v in values], dtype=object)
    if len(values) == 0:
        return np.zeros(0, dtype=np.int64)
    uniques, inverse = np.unique(values, return_inverse=True)
    hashed = np.fromiter(
        (int.from_bytes(hashlib.blake2b(u.encode("utf-8"), digest_size=8).digest(), "little",
                        signed=True) for u in uniques),
        dtype=np.int64, count=len(uniques))
    return hashed[inverse.reshape(-1)]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value == "") or (
        isinstance(value, (float, np.floating)) and math.isnan(value))


def _as_int64(value: int) -> int:
    if not -(1 << 63) <= value < _WRAP:
        raise ValueError(f"{value} is outside [-2**63, 2**64)")
    return value - _WRAP if value >= 1 << 63 else value


def _int_id(value: Any) -> int:
    if isinstance(value, (bool, np.bool_)):
        return int(value)
    if isinstance(value, (int, np.integer)):
        return _as_int64(int(value))
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return _as_int64(int(value))
    if isinstance(value, str) and _DECIMAL.match(value):
        return _as_int64(int(value))
    raise ValueError(f"{value!r} is not an integer id (an int, an integral float or decimal text)")


def _hex_id(value: Any) -> int:
    if isinstance(value, str) and _HEX.match(value):
        return _as_int64(int(value, 16))
    raise ValueError(f"{value!r} is not 1 to 16 hex digits")


def check_encoding(encoding: Any, feature: str) -> dict:
    """`encoding` if it is one this loader reads; else a ValueError naming the feature."""
    if not isinstance(encoding, dict) or encoding.get("kind") not in ENCODINGS:
        raise ValueError(f"feature {feature!r}: encoding must be an object whose kind is one of "
                         f"{ENCODINGS}, got {encoding!r}")
    if encoding["kind"] == "text" and encoding.get("hash") != TEXT_HASH:
        raise ValueError(f"feature {feature!r}: text hash {encoding.get('hash')!r} is not one this "
                         f"loader knows ({TEXT_HASH!r})")
    return encoding


def encode(values: Any, encoding: dict, feature: str = "?") -> np.ndarray:
    """int64 ids of a sequence of raw values of a single-valued feature (see the module
    docstring); a value its encoding cannot read is a ValueError naming the feature."""
    kind = check_encoding(encoding, feature)["kind"]
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub" and kind == "int64":
        array = values.reshape(-1)
        return array.view(np.int64) if array.dtype == np.uint64 else array.astype(np.int64)
    values = list(values.reshape(-1) if isinstance(values, np.ndarray) else values)
    missing = [_missing(v) for v in values]
    pairs = list(zip(values, missing, strict=True))
    if kind == "text":
        bad = next((v for v, m in pairs if not m and not isinstance(v, str)), None)
        if bad is not None:
            raise ValueError(f"feature {feature!r} holds text ids: give strings, got {bad!r} "
                             f"({type(bad).__name__})")
        ids = text_ids(["" if m else v for v, m in pairs])
        ids[np.asarray(missing, dtype=bool)] = MISSING_ID
        return ids
    read = _int_id if kind == "int64" else _hex_id
    try:
        return np.fromiter((MISSING_ID if m else read(v) for v, m in pairs),
                           dtype=np.int64, count=len(values))
    except ValueError as exc:
        raise ValueError(f"feature {feature!r} ({kind} ids): {exc}") from None


def encode_bags(rows: Any, encoding: dict, feature: str = "?") -> tuple[np.ndarray, np.ndarray]:
    """(int64 ids, int64 offsets [n + 1]) of a multi-valued feature's rows: each row a list of
    values or one string joined by the encoding's separator."""
    separator = check_encoding(encoding, feature).get("separator")
    tokens, offsets = [], [0]
    for row in rows:
        if isinstance(row, str):
            if separator is None:
                raise ValueError(f"feature {feature!r} records no separator: give each row as a "
                                 f"list of values, got {row!r}")
            row = row.split(separator)
        elif row is None or (isinstance(row, float) and math.isnan(row)):
            row = []
        kept = [v for v in row if not _missing(v)]
        tokens.extend(kept if kept else [None])
        offsets.append(len(tokens))
    return encode(tokens, encoding, feature), np.asarray(offsets, dtype=np.int64)


def feature_ids(entry: dict, values: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
    """int64 ids of raw values of the export.json feature `entry`, by its encoding: `encode`, or
    `encode_bags` ((ids, offsets)) for a multi-valued feature."""
    feature, encoding = entry["name"], entry.get("encoding")
    if encoding is None:
        raise ValueError(f"feature {feature!r} records no encoding (its data was prepared by an "
                         "older collide): prepare and export it again, or give int64 ids to "
                         "transform_ids")
    if encoding.get("multi_valued"):
        return encode_bags(values, encoding, feature)
    return encode(values, encoding, feature)

# ---------------------------------------------------------------- dense values

DENSE_KINDS = ("none", "log1p", "standardize", "log1p_standardize")


def dense_transform(values: Any, kind: str, mean: float = 0.0, std: float = 1.0,
                    clip_min: float | None = None) -> np.ndarray:
    """float32 [n] of raw dense values [n], transformed as prepare did (sweep.datasets.dense):
    rounded to float32, clipped from below at clip_min, signed log1p, then (x - mean) / std."""
    if kind not in DENSE_KINDS:
        raise ValueError(f"dense transform kind must be one of {DENSE_KINDS}, got {kind!r}")
    x = np.asarray(values, dtype=np.float32).astype(np.float64)
    if clip_min is not None:
        x = np.maximum(x, clip_min)
    if kind in ("log1p", "log1p_standardize"):
        x = signed_log1p(x)
    if kind in ("standardize", "log1p_standardize"):
        x = (x - mean) / std
    return x.astype(np.float32)


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """sign(x) * log(1 + |x|): log1p for x >= 0, mirrored below 0."""
    return np.sign(x) * np.log1p(np.abs(x))


def dense_values(transforms: list[dict], raw: Any) -> np.ndarray:
    """float32 [n, num_dense] of raw dense values [n, num_dense], one `dense_transforms` entry
    ({"kind", "mean", "std", "clip_min", ...}) per column."""
    raw = np.asarray(raw)
    if raw.ndim != 2 or raw.shape[1] != len(transforms):
        raise ValueError(f"raw dense values must have shape (n, {len(transforms)}), one column per "
                         f"transform ({[t.get('column') for t in transforms]}), got {raw.shape}")
    out = np.empty(raw.shape, dtype=np.float32)
    for j, t in enumerate(transforms):
        out[:, j] = dense_transform(raw[:, j], t["kind"], t.get("mean", 0.0), t.get("std", 1.0),
                                    t.get("clip_min"))
    return out

# ---------------------------------------------------------------- table precision

# How an embedding table may be stored: fp32 as trained; fp16; int8 and int4 row-wise, each row
# with its own scale and bias (as FBGEMM's fused row-wise tables: fp32 scale and bias for 8-bit
# rows, fp16 for 4-bit rows). A row x is stored as q = round((x - bias) / scale), clipped to
# [0, 2^bits - 1], and read back as bias + scale * q, with bias = min(x) and
# scale = (max(x) - min(x)) / (2^bits - 1): the error of a value is at most scale / 2 (plus, for
# int4, the fp16 rounding of scale and bias, which the stored row already uses).
PRECISIONS = ("fp32", "fp16", "int8", "int4")
_ROWWISE = {"int8": (8, np.float32), "int4": (4, np.float16)}  # bits, dtype of scale and bias


def precision_scheme(precision: str) -> str:
    """One line saying how `precision` stores a table (export.json records it)."""
    return {"fp32": "float32 values", "fp16": "float16 values",
            "int8": "row-wise uint8, a float32 scale and bias per row",
            "int4": "row-wise 4-bit (two per byte, low nibble first), a float16 scale and bias "
                    "per row"}[_check_precision(precision)]


def _check_precision(precision: Any) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def table_bytes(rows: int, dim: int, precision: str) -> int:
    """Bytes a (rows, dim) table takes at `precision`, the per-row scale and bias included."""
    _check_precision(precision)
    if precision in ("fp32", "fp16"):
        return rows * dim * (4 if precision == "fp32" else 2)
    bits, scale_dtype = _ROWWISE[precision]
    return rows * ((dim * bits + 7) // 8 + 2 * np.dtype(scale_dtype).itemsize)


def quantize(weight: np.ndarray, precision: str) -> dict[str, np.ndarray]:
    """A float32 (rows, dim) table stored at `precision`: {"values"} for fp32 and fp16,
    {"values" (packed uint8), "scale", "bias"} for the row-wise kinds."""
    weight = np.asarray(weight, dtype=np.float32)
    if _check_precision(precision) in ("fp32", "fp16"):
        # fp32: the table itself, no copy (np.asarray above made it float32 already)
        return {"values": weight if precision == "fp32" else weight.astype(np.float16)}
    bits, scale_dtype = _ROWWISE[precision]
    levels = (1 << bits) - 1
    if weight.ndim != 2 or weight.shape[1] == 0:
        raise ValueError(f"a table must be (rows, dim >= 1), got shape {weight.shape}")
    low, high = weight.min(axis=1), weight.max(axis=1)
    bias = low.astype(scale_dtype)
    scale = ((high - low) / levels).astype(scale_dtype)
    # quantize against the stored (rounded) scale and bias, so reading back uses what was stored
    safe = np.where(scale.astype(np.float32) > 0, scale.astype(np.float32), 1.0)
    q = np.clip(np.rint((weight - bias.astype(np.float32)[:, None]) / safe[:, None]), 0, levels)
    q = q.astype(np.uint8)
    if bits == 4:
        if q.shape[1] % 2:
            q = np.pad(q, ((0, 0), (0, 1)))
        q = q[:, 0::2] | (q[:, 1::2] << 4)
    return {"values": q, "scale": scale, "bias": bias}


def dequantize(stored: dict[str, np.ndarray], precision: str, dim: int) -> np.ndarray:
    """float32 (rows, dim): the table `quantize` stored, read back."""
    values = stored["values"]
    if _check_precision(precision) in ("fp32", "fp16"):
        return values.astype(np.float32)
    if precision == "int4":
        unpacked = np.empty((values.shape[0], values.shape[1] * 2), dtype=np.uint8)
        unpacked[:, 0::2], unpacked[:, 1::2] = values & 0x0F, values >> 4
        values = unpacked[:, :dim]
    scale, bias = stored["scale"].astype(np.float32), stored["bias"].astype(np.float32)
    return (bias[:, None] + scale[:, None] * values.astype(np.float32)).astype(np.float32)


def stored_parts(rows: int, dim: int, precision: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{part: (dtype str, shape)} of a (rows, dim) table as `quantize` stores it."""
    if _check_precision(precision) in ("fp32", "fp16"):
        return {"values": (np.dtype(np.float32 if precision == "fp32" else np.float16).str,
                           (rows, dim))}
    bits, scale_dtype = _ROWWISE[precision]
    scale = (np.dtype(scale_dtype).str, (rows,))
    return {"values": (np.dtype(np.uint8).str, (rows, (dim * bits + 7) // 8)), "scale": scale,
            "bias": scale}


# ---------------------------------------------------------------- embedding tables

TABLES_KIND = "collide-tables"  # a tables bundle's manifest "kind"


def table_arrays(tables: list[np.ndarray], precision: str,
                 projections: list[np.ndarray] = ()) -> dict[str, np.ndarray]:
    """The arrays of a tables bundle: table k's stored parts (`quantize`) as `t<k>_<part>`, and
    a mixed-dimension feature's projection k as `p<k>_values` (always fp32)."""
    return {**{f"t{k}_{part}": array for k, table in enumerate(tables)
               for part, array in quantize(table, precision).items()},
            **{f"p{k}_values": np.ascontiguousarray(p, dtype=np.float32)
               for k, p in enumerate(projections)}}


class Tables:
    """A feature's embedding tables as stored at one precision; read back as float32."""

    def __init__(self, manifest: dict, arrays: dict[str, np.ndarray]):
        self.manifest, self._arrays = manifest, arrays
        self.precision: str = manifest["precision"]
        self.shapes: list[tuple[int, int]] = [tuple(s) for s in manifest["shapes"]]
        # a mixed-dimension feature's (dim, D) projections, float32, one per block but the first
        self.projections: list[np.ndarray] = [
            arrays[f"p{k}_values"] for k in range(len(manifest.get("projections", [])))]

    def _stored(self, index: int) -> dict[str, np.ndarray]:
        if not 0 <= index < len(self.shapes):
            raise IndexError(f"feature {self.manifest['feature']!r} has {len(self.shapes)} "
                             f"table(s); no table {index}")
        prefix = f"t{index}_"
        return {k.removeprefix(prefix): a for k, a in self._arrays.items()
                if k.startswith(prefix)}

    def table(self, index: int = 0) -> np.ndarray:
        """float32 (rows, dim): table `index` read back from its precision."""
        return dequantize(self._stored(index), self.precision, self.shapes[index][1])

    def _flat_rows(self, rows: Any, num_rows: int, what: str) -> tuple[tuple[int, ...],
                                                                        np.ndarray]:
        """(the shape of `rows`, its int64 values flat), each checked to be a row of `what`."""
        array = np.asarray(rows)
        if array.size and array.dtype.kind not in "iu":
            raise ValueError(f"rows must be integers, got dtype {array.dtype}")
        flat = array.astype(np.int64).reshape(-1)
        if flat.size and (flat.min() < 0 or flat.max() >= num_rows):
            raise IndexError(f"feature {self.manifest['feature']!r}: {what} {num_rows} rows; got "
                             f"rows in [{flat.min()}, {flat.max()}]")
        return array.shape, flat

    def rows(self, rows: Any, index: int = 0) -> np.ndarray:
        """float32 (..., dim): the rows `rows` (e.g. `Export.transform`'s) of table `index`, read
        back from its precision; only those rows are read back."""
        stored = self._stored(index)  # checks the index
        num_rows, dim = self.shapes[index]
        shape, flat = self._flat_rows(rows, num_rows, f"table {index} has")
        picked = {k: a[flat] for k, a in stored.items()}
        return dequantize(picked, self.precision, dim).reshape(*shape, dim)

    def vectors(self, rows: Any) -> np.ndarray:
        """float32 (..., D): the embedding vectors the model used for the rows `rows` (e.g.
        `Export.transform`'s) of a one-table feature, or of a mixed-dimension feature, whose
        rows run over its blocks in order (each block's row read back and projected to D)."""
        feature = self.manifest["feature"]
        if not self.projections:
            if len(self.shapes) != 1:
                raise ValueError(f"feature {feature!r} has {len(self.shapes)} tables, which its "
                                 "map combines (double hashing or QR): read each with "
                                 "rows(rows, t)")
            return self.rows(rows)
        starts = np.cumsum([0] + [n for n, _ in self.shapes])
        shape, flat = self._flat_rows(rows, int(starts[-1]), "its blocks have")
        block = np.searchsorted(starts, flat, side="right") - 1
        out = np.empty((flat.size, self.shapes[0][1]), dtype=np.float32)
        for k in np.unique(block):
            at = np.flatnonzero(block == k)
            vectors = self.rows(flat[at] - starts[k], int(k))
            out[at] = vectors if k == 0 else vectors @ self.projections[k - 1]
        return out.reshape(*shape, out.shape[1])


def no_tables_message(feature: str) -> str:
    """Why an export has no tables for `feature`, and what to do."""
    return (f"this export holds no embedding tables for feature {feature!r}: its trial saved "
            "none (save_tables false, or an older collide); re-run the sweep with save_tables "
            "true to export them")


def read_tables(path: Path, feature: str, precision: str, shapes: list[list[int]],
                where: str, projections: list[list[int]] | None = None) -> Tables:
    """The verified tables bundle of `feature` in directory `path`: its digest and checksums
    (read_bundle), and exactly the tables, projections, precision and stored arrays export.json
    names."""
    manifest, arrays = read_bundle(path)
    projections = projections or []
    expected = {"kind": TABLES_KIND, "feature": feature, "precision": precision,
                "shapes": shapes, "projections": projections}
    for field, value in expected.items():
        found = manifest.get(field, [] if field == "projections" else None)
        if found != value:
            raise ValueError(f"{where}: feature {feature!r}: tables {field} is {value!r} in "
                             f"{EXPORT_FILE} but {found!r} in {path}")
    layout = {f"t{k}_{part}": spec for k, (rows, dim) in enumerate(shapes)
              for part, spec in stored_parts(rows, dim, precision).items()}
    layout.update({f"p{k}_values": (np.dtype(np.float32).str, tuple(shape))
                   for k, shape in enumerate(projections)})
    found = {k: (a.dtype.str, a.shape) for k, a in arrays.items()}
    if found != layout:
        raise ValueError(f"{path}: arrays {found} are not the stored {precision} tables of "
                         f"shapes {shapes} ({layout})")
    return Tables(manifest, arrays)


# ---------------------------------------------------------------- the export

EXPORT_FORMAT = "collide-export"
EXPORT_FORMAT_VERSION = 4  # 4: embedding tables; 3: each feature's encoding; 2: digests
EXPORT_FILE = "export.json"


class Export:
    """A verified export: `transform` maps raw values, `transform_ids` int64 ids, and
    `tables(feature).rows(rows)` reads the rows back from the export's precision."""

    def __init__(self, manifest: dict, bundles: dict[str, tuple[dict, dict]],
                 tables: dict[str, Tables | None] | None = None):
        self.manifest = manifest
        self._bundles = bundles
        self._tables = tables or {}
        self._features = {f["name"]: f for f in manifest["features"]}

    @property
    def features(self) -> list[str]:
        return list(self._features)

    def feature(self, name: str) -> dict:
        if name not in self._features:
            raise KeyError(f"unknown feature {name!r}; this export maps {self.features}")
        return self._features[name]

    def ids(self, feature: str, values: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """int64 ids of raw values (see `encode`); (ids, offsets) for a multi-valued feature."""
        return feature_ids(self.feature(feature), values)

    def transform_ids(self, feature: str, ids: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """Rows of int64 ids (any integer array; uint64 keeps its bit pattern), shaped like them;
        a pair of arrays for the two-table strategies."""
        manifest, arrays = self._bundles[self.feature(feature)["name"]]
        array = np.asarray(ids)
        if array.size and array.dtype.kind not in "iu":
            raise ValueError(f"ids of feature {feature!r} must be an integer array, got dtype "
                             f"{array.dtype}")
        array = array.view(np.int64) if array.dtype == np.uint64 else array.astype(np.int64)
        rows = rows_of(manifest, arrays, array)
        if isinstance(rows, tuple):
            return tuple(r.reshape(array.shape) for r in rows)
        return rows.reshape(array.shape)

    def transform(self, feature: str, values: Any) -> Any:
        """Rows of raw values as the data holds them: an array (a pair for two-table strategies);
        for a multi-valued feature (rows, offsets)."""
        ids = self.ids(feature, values)
        if isinstance(ids, tuple):
            return self.transform_ids(feature, ids[0]), ids[1]
        return self.transform_ids(feature, ids)

    def transform_dense(self, raw: Any) -> np.ndarray:
        """float32 [n, num_dense] of raw dense values [n, num_dense], as the model trained on."""
        return dense_values(self.manifest.get("dense_transforms", []), raw)

    def tables(self, feature: str) -> Tables:
        """The feature's embedding tables at the export's precision (`Tables.rows`, `.table`)."""
        tables = self._tables.get(self.feature(feature)["name"])
        if tables is None:
            raise ValueError(no_tables_message(feature))
        return tables


def read_export_manifest(path: Path) -> dict:
    """export.json of directory `path`, of a version this loader knows, its digest matching."""
    manifest_path = Path(path) / EXPORT_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; {path} is not a collide export")
    manifest = read_json_object(manifest_path)
    version, form = manifest.get("format_version"), manifest.get("format")
    if form != EXPORT_FORMAT:
        raise ValueError(f"{manifest_path}: format {form!r}, expected {EXPORT_FORMAT!r}; not a "
                         "collide export (or one older than format_version 2)")
    if version != EXPORT_FORMAT_VERSION:
        hint = ("written by an older collide: export it again" if isinstance(version, int)
                and version < EXPORT_FORMAT_VERSION else "written by a newer collide: use its "
                "loader")
        raise ValueError(f"{manifest_path}: format_version {version!r}; this loader reads "
                         f"{EXPORT_FORMAT_VERSION} only ({hint})")
    recorded, actual = manifest.get("digest"), manifest_digest(manifest)
    if recorded != actual:
        raise ValueError(f"{manifest_path}: digest {recorded!r} does not match its contents "
                         f"({actual!r}); export.json was changed after it was written")
    features = manifest.get("features")
    if (not isinstance(features, list) or not features
            or not all(isinstance(f, dict) for f in features)):
        raise ValueError(f"{manifest_path}: features must be a non-empty list of objects, got "
                         f"{features!r}")
    names = [f.get("name") for f in features]
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise ValueError(f"{manifest_path}: feature names must be non-empty strings, got "
                         f"{bad[0]!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{manifest_path}: feature names must be unique, repeated: {repeated}")
    return manifest


def bundle_path(root: Path, feature: dict, where: str) -> Path:
    """The directory of a feature's bundle, which must lie inside the export directory `root`."""
    return _inside(root, feature.get("bundle"), feature, "bundle", where)


def _inside(root: Path, relative: Any, feature: dict, what: str, where: str) -> Path:
    path = (root / relative).resolve() if isinstance(relative, str) else None
    if path is None or root.resolve() not in path.parents:
        raise ValueError(f"{where}: feature {feature['name']!r}: {what} path {relative!r} escapes "
                         "the export directory")
    return path


def load_tables(root: Path, feature: dict, precision: str, where: str) -> Tables | None:
    """The verified tables of an export's feature at the export's `precision`; None when the
    export holds none for it (the run saved none)."""
    entry = feature.get("tables")
    if entry is None:
        return None
    if not isinstance(entry, dict) or not isinstance(entry.get("shapes"), list):
        raise ValueError(f"{where}: feature {feature['name']!r}: tables must be {{'path', "
                         f"'shapes', 'digest'}}, got {entry!r}")
    tables = read_tables(_inside(root, entry.get("path"), feature, "tables", where),
                         feature["name"], precision, entry["shapes"], where,
                         entry.get("projections"))
    if tables.manifest["digest"] != entry.get("digest"):
        raise ValueError(f"{where}: feature {feature['name']!r}: tables digest is "
                         f"{entry.get('digest')!r} in {EXPORT_FILE} but "
                         f"{tables.manifest['digest']!r} in {entry['path']}")
    return tables


def load_export(path: str | Path) -> Export:
    """Load and verify a `collide export` directory: export.json's digest, then each bundle's
    manifest digest, array headers and checksums, and that each bundle is the one export.json
    names (its digest, strategy and table sizes); likewise each feature's embedding tables."""
    root = Path(path)
    manifest = read_export_manifest(root)
    where = str(root / EXPORT_FILE)
    precision = manifest.get("precision", "fp32")
    if precision not in PRECISIONS:
        raise ValueError(f"{where}: precision {precision!r} is not one of {PRECISIONS}")
    bundles, tables = {}, {}
    for feature in manifest["features"]:
        bundle_manifest, arrays = read_bundle(bundle_path(root, feature, where))
        if bundle_manifest.get("strategy") not in STRATEGIES:
            raise ValueError(f"{where}: feature {feature['name']!r}: strategy "
                             f"{bundle_manifest.get('strategy')!r} is not one this loader knows "
                             f"({', '.join(STRATEGIES)}); use the loader of the collide that "
                             "wrote the export")
        for field in ("digest", "strategy", "table_sizes"):
            if feature.get(field) != bundle_manifest.get(field):
                raise ValueError(f"{where}: feature {feature['name']!r}: {field} is "
                                 f"{feature.get(field)!r} in {EXPORT_FILE} but "
                                 f"{bundle_manifest.get(field)!r} in its bundle")
        if feature.get("encoding") is not None:
            check_encoding(feature["encoding"], feature["name"])
        bundles[feature["name"]] = (bundle_manifest, arrays)
        tables[feature["name"]] = load_tables(root, feature, precision, where)
    return Export(manifest, bundles, tables)
