"""Load an exported mapping for serving (`collide export` writes it, see sweep.frontier.export).

An export directory holds `export.json` and one bundle per feature under `bundles/`::

    {"format": "collide-export", "format_version": 2, ...source run, metrics, sizes...,
     "dense_transforms": [{"column", "kind", "mean", "std", "clip_min", "reason"}, ...],
     "features": [{"name", "bundle", "strategy", "table_sizes", "combine", "nbytes",
                   "digest", "vocab_size"}, ...],
     "digest": manifest_digest(export.json)}

A feature's "digest" is its bundle's manifest digest (`mappers.bundle.manifest_digest`,
covering params, sizes and array checksums); the top-level "digest" covers the whole file.
`export_feature` / `export_manifest` build these entries for the writer.

`load_export(DIR)` checks export.json's digest, loads and verifies every bundle, and
refuses any feature whose bundle digest, strategy, table_sizes, combine or nbytes differ
from what export.json records; then it maps raw ids per feature:

    >>> mapping = load_export("exported")
    >>> rows = mapping.transform("C3", raw_ids)   # int64 rows (a tuple for two-table strategies)
    >>> dense = mapping.transform_dense(raw_dense)  # [n, num_dense] as the model was trained on

`dense_transforms` are those of the prepared data the trial trained on (train-split
statistics, see sweep.datasets.dense); an export of a run that recorded none has [].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mappers import Mapper, load_bundle_with_manifest
from mappers.base import as_id_array
from mappers.bundle import manifest_digest, read_json_object
from sweep.datasets.dense import DenseTransform, apply_dense_transforms
from sweep.errors import UserError

__all__ = ["EXPORT_FILE", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "ExportedMapping",
           "checked_dense_transforms", "export_feature", "export_manifest", "load_export",
           "load_verified_bundle"]

EXPORT_FORMAT = "collide-export"
EXPORT_FORMAT_VERSION = 2  # 2: per-bundle manifest digests and the export's own digest
EXPORT_FILE = "export.json"


def _mapper_fields(mapper: Mapper) -> dict[str, Any]:
    """What export.json records about a feature's mapper, and load_export checks."""
    return {"strategy": mapper.name, "table_sizes": [int(n) for n in mapper.table_sizes],
            "combine": mapper.combine, "nbytes": int(mapper.nbytes)}


def export_feature(name: str, bundle: str, mapper: Mapper, digest: str,
                   **fields: Any) -> dict[str, Any]:
    """One entry of export.json's "features": `bundle` is relative to the export directory,
    `digest` the bundle's manifest digest; `fields` (e.g. vocab_size) are recorded as given."""
    return {"name": name, "bundle": bundle, **_mapper_fields(mapper), "digest": digest, **fields}


def checked_dense_transforms(entries: object, where: str) -> list[dict]:
    """Dense-transform entries of an untrusted file, each valid (DenseTransform.from_json)."""
    if not isinstance(entries, list):
        raise UserError(f"{where}: dense_transforms must be a list, got {entries!r}")
    try:
        return [DenseTransform.from_json(e).to_json() for e in entries]
    except (TypeError, ValueError) as exc:
        raise UserError(f"{where}: {exc}") from None


def export_manifest(features: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """The content of export.json: format, version, `fields` (source run, metrics, ...),
    `features` (from export_feature) and the digest over all of it."""
    manifest = {"format": EXPORT_FORMAT, "format_version": EXPORT_FORMAT_VERSION, **fields,
                "features": features}
    manifest["digest"] = manifest_digest(manifest)
    return manifest


@dataclass(frozen=True)
class ExportedMapping:
    """The exported id -> row mapping of every feature, ready to serve."""

    manifest: dict
    mappers: dict  # feature name -> fitted mapper

    @property
    def features(self) -> list[str]:
        return list(self.mappers)

    @property
    def dense_transforms(self) -> list[dict]:
        return list(self.manifest.get("dense_transforms", []))

    def transform_dense(self, raw_dense: Any) -> np.ndarray:
        """float32 [n, num_dense] of raw dense values [n, num_dense], transformed as in training."""
        if "dense_transforms" not in self.manifest:
            raise UserError("this export records no dense transforms (an export of an older run); "
                            "re-export it, or transform the dense values as its prepared data did")
        return apply_dense_transforms(self.dense_transforms, raw_dense)

    def transform(self, feature: str, raw_ids: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Rows for integer raw ids of `feature` (a tuple of arrays for two-table strategies).

        Any integer dtype or a list of Python ints; uint64 ids are reinterpreted as int64.
        Floats, bools, strings and objects are refused, never rounded.
        """
        if feature not in self.mappers:
            raise KeyError(f"unknown feature {feature!r}; this export maps {self.features}")
        return self.mappers[feature].transform(as_id_array(raw_ids, name="raw ids of feature "
                                                                         f"{feature!r}"))


def load_verified_bundle(path: Path) -> tuple[Mapper, dict[str, Any]]:
    """The mapper saved in bundle directory `path` and its verified manifest; a bundle that fails
    its checks (digest, sizes, checksums) is a UserError naming the file."""
    try:
        return load_bundle_with_manifest(path)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def _read_export_manifest(manifest_path: Path) -> dict:
    """export.json as a dict of the current format whose digest matches its contents."""
    try:
        manifest = read_json_object(manifest_path)
    except ValueError as exc:
        raise UserError(str(exc)) from exc
    version, form = manifest.get("format_version"), manifest.get("format")
    if version == 1 and form is None:
        raise UserError(f"{manifest_path}: format_version 1 was written by an older collide (no "
                        "digests); re-export it with `collide export` to write format "
                        f"{EXPORT_FORMAT_VERSION}")
    if form != EXPORT_FORMAT:
        raise UserError(f"{manifest_path}: format {form!r}, expected {EXPORT_FORMAT!r}; not a "
                        "collide export")
    if version != EXPORT_FORMAT_VERSION:
        raise UserError(f"{manifest_path}: format_version {version!r}, expected "
                        f"{EXPORT_FORMAT_VERSION}")
    recorded, actual = manifest.get("digest"), manifest_digest(manifest)
    if recorded != actual:
        raise UserError(f"{manifest_path}: digest {recorded!r} does not match its contents "
                        f"({actual!r}); export.json was changed after it was written")
    return manifest


def _checked_features(manifest: dict, manifest_path: Path) -> list[dict]:
    """export.json's features: a non-empty list of objects with unique non-empty names."""
    features = manifest.get("features")
    if (not isinstance(features, list) or not features
        or not all(isinstance(f, dict) for f in features)):
        raise UserError(f"{manifest_path}: features must be a non-empty list of objects, got "
                        f"{features!r}")
    names = [f.get("name") for f in features]
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise UserError(f"{manifest_path}: feature names must be non-empty strings, got {bad[0]!r}")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise UserError(f"{manifest_path}: feature names must be unique, repeated: {repeated}")
    return features


def load_export(path: str | Path) -> ExportedMapping:
    """Load a `collide export` directory, checking export.json against every bundle it loads."""
    path = Path(path)
    manifest_path = path / EXPORT_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; {path} is not a collide export")
    manifest = _read_export_manifest(manifest_path)
    checked_dense_transforms(manifest.get("dense_transforms", []), str(manifest_path))
    mappers = {}
    for feature in _checked_features(manifest, manifest_path):
        name, relative = feature["name"], feature.get("bundle")
        bundle = (path / relative).resolve() if isinstance(relative, str) else None
        if bundle is None or path.resolve() not in bundle.parents:
            raise UserError(f"{manifest_path}: feature {name!r}: bundle path {relative!r} escapes "
                            "the export directory")
        mapper, bundle_manifest = load_verified_bundle(bundle)  # verifies the bundle itself
        loaded = {"digest": bundle_manifest["digest"], **_mapper_fields(mapper)}
        for field, value in loaded.items():
            if feature.get(field) != value:
                raise UserError(f"{manifest_path}: feature {name!r}: {field} is "
                                f"{feature.get(field)!r} in {EXPORT_FILE} but {value!r} in its "
                                f"bundle {relative}")
        mappers[name] = mapper
    return ExportedMapping(manifest=manifest, mappers=mappers)
