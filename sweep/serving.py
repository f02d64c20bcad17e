"""Export the chosen frontier point's mapping for serving, and load it back.

`export(...)` reads a sweep's trials from MLflow alone, picks a frontier point (the lowest
val loss under a byte budget, or the smallest model within a loss bound), downloads that
run's bundles through the tracking URI, verifies every checksum, and writes::

    DIR/export.json          source run, metrics, sizes, per-feature strategy and bundle
    DIR/bundles/NN-feature/  one mapper bundle per feature (arrays.npz + manifest.json)

`load_export(DIR)` verifies the bundles again and maps raw ids per feature:

    >>> mapping = load_export("exported")
    >>> rows = mapping.transform("C3", raw_ids)   # int64 rows (a tuple for two-table strategies)
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from mlflow.artifacts import download_artifacts
from mlflow.tracking import MlflowClient

from mappers import load_bundle
from sweep.frontier import frontier_table, select_point
from sweep.tracking import runs_of_sweep, trial_rows

__all__ = ["EXPORT_FORMAT_VERSION", "ExportedMapping", "export", "load_export"]

EXPORT_FORMAT_VERSION = 1
EXPORT_FILE = "export.json"


def export(experiment: str, out_dir: str | Path, *, tracking_uri: str, max_bytes: float | None = None,
           max_val_loss: float | None = None, parent_run_id: str | None = None) -> Path:
    """Write the selected frontier point's verified bundles and manifest to `out_dir`."""
    client = MlflowClient(tracking_uri)
    parent_run_id, runs = runs_of_sweep(client, experiment, parent_run_id)
    table = frontier_table(trial_rows(runs))
    point = select_point(table, max_bytes=max_bytes, max_val_loss=max_val_loss)
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = out_dir.parent / f".{out_dir.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}"
    try:
        with tempfile.TemporaryDirectory() as download:
            download_artifacts(run_id=point["run_id"], tracking_uri=tracking_uri, dst_path=download)
            details = json.loads((Path(download) / "metrics.json").read_text())
            features = []
            for name in details["feature_order"]:
                info = details["features"][name]
                bundle = Path(download) / info["bundle"]
                mapper = load_bundle(bundle)  # verifies every checksum
                shutil.copytree(bundle, staging / info["bundle"])
                features.append({"name": name, "bundle": info["bundle"], "strategy": mapper.name,
                                 "table_sizes": list(mapper.table_sizes), "combine": mapper.combine,
                                 "nbytes": int(mapper.nbytes), "vocab_size": info["vocab_size"]})
        manifest = {
            "format_version": EXPORT_FORMAT_VERSION,
            "experiment": experiment,
            "parent_run_id": parent_run_id,
            "source_run_id": point["run_id"],
            "trial": point["name"],
            "selection": {"max_bytes": max_bytes, "max_val_loss": max_val_loss},
            "metrics": {k: point.get(k) for k in ("val_logloss", "test_logloss", "test_auc", "test_ne")},
            "sizes": {k: point.get(k) for k in ("embedding_bytes", "mapping_bytes", "dense_bytes",
                                                "total_bytes", "compression_ratio")},
            "embedding_dim": point.get("dim"),
            "features": features,
        }
        (staging / EXPORT_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(staging, out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out_dir


@dataclass(frozen=True)
class ExportedMapping:
    """The exported id -> row mapping of every feature, ready to serve."""

    manifest: dict
    mappers: dict  # feature name -> fitted mapper

    @property
    def features(self) -> list[str]:
        return list(self.mappers)

    def transform(self, feature: str, raw_ids: np.ndarray) -> np.ndarray | tuple[np.ndarray, ...]:
        """Rows for int64 raw ids of `feature` (a tuple of arrays for two-table strategies)."""
        if feature not in self.mappers:
            raise KeyError(f"unknown feature {feature!r}; this export maps {self.features}")
        return self.mappers[feature].transform(np.asarray(raw_ids, dtype=np.int64))


def load_export(path: str | Path) -> ExportedMapping:
    """Load a `collide export` directory; every bundle's checksums are verified."""
    path = Path(path)
    manifest_path = path / EXPORT_FILE
    if not manifest_path.is_file():
        raise FileNotFoundError(f"{manifest_path}: missing; {path} is not a collide export")
    manifest = json.loads(manifest_path.read_text())
    if manifest.get("format_version") != EXPORT_FORMAT_VERSION:
        raise ValueError(f"{manifest_path}: format_version {manifest.get('format_version')!r}, "
                         f"expected {EXPORT_FORMAT_VERSION}")
    mappers = {}
    for feature in manifest["features"]:
        bundle = (path / feature["bundle"]).resolve()
        if path.resolve() not in bundle.parents:
            raise ValueError(f"{manifest_path}: bundle path {feature['bundle']!r} escapes the export directory")
        mappers[feature["name"]] = load_bundle(bundle)
    return ExportedMapping(manifest=manifest, mappers=mappers)
