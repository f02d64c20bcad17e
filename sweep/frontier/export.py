"""Export: the chosen frontier point's mapping, verified, written for serving.

`choose` picks a frontier point from a sweep's trial rows (the lowest val loss under a byte
budget, or the smallest model within a loss bound; with several seeds, a configuration by its
mean over seeds, then its median-val seed). `write_export` takes a local copy of that run's
`metrics.json` and bundles (`sweep.api.export` fetches them through the tracking URI),
verifies every bundle, and writes::

    DIR/export.json            source run, metrics, sizes, the table precision they are at
                               and its storage scheme, the dense transforms of the data,
                               per feature: strategy, table sizes, nbytes and the digest of
                               its bundle's manifest;
                               `digest` covers the whole file (see sweep.serving)
    DIR/bundles/NN-feature/    one mapper bundle per feature (arrays.npz + manifest.json)
    DIR/tables/NN-feature/     its trained embedding tables stored at the chosen precision
                               (mappers.save_tables; the same two files, kind collide-tables),
                               quantized here from the fp32 tables the trial saved, as the
                               trial's own scoring at that precision did
    DIR/.collide-output.json   collide's marker (sweep.outputs)

A run's artifacts are not trusted: feature names must be unique strings, every bundle path
must stay inside the run's `bundles/` artifacts, and export names the bundle directories it
writes itself. `DIR` is written only if it is new, empty, or an earlier collide export, and
then atomically (sweep.outputs).
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path, PurePosixPath

from mappers import Mapper
from mappers.bundle import ARRAYS_FILE, MANIFEST_FILE, read_manifest, save_tables
from mappers.portable import precision_scheme, read_tables
from sweep.errors import UserError
from sweep.frontier.configurations import precision_points, ranked_rows
from sweep.frontier.pareto import frontier_table, select_point
from sweep.outputs import check_replaceable, replace_dir, staging_dir
from sweep.serving import (
    EXPORT_FILE,
    checked_dense_transforms,
    checked_encoding,
    export_feature,
    export_manifest,
    load_verified_bundle,
)
from sweep.trial import bundle_dir_name

__all__ = ["check_export_dir", "choose", "describe_choice", "recorded_tables", "write_export"]

log = logging.getLogger(__name__)


def _legacy_export(path: Path) -> bool:
    """An export written before output markers: export.json with collide's keys."""
    try:
        manifest = json.loads((path / EXPORT_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(manifest, dict)
            and {"format_version", "source_run_id", "features"} <= set(manifest))


def _checked_features(details: object, run_id: str) -> list[tuple[str, PurePosixPath, dict]]:
    """(feature, bundle path relative to the run's artifacts, info) from an untrusted
    metrics.json."""
    where = f"run {run_id}: metrics.json"
    if not isinstance(details, dict) or not isinstance(details.get("feature_order"), list):
        raise UserError(f"{where} has no feature_order list; this run was not written by a collide "
                        "trial")
    order, infos = details["feature_order"], details.get("features")
    if not order or not all(isinstance(n, str) and n for n in order):
        raise UserError(f"{where}: feature_order must be a non-empty list of names, got {order!r}")
    duplicated = sorted({n for n in order if order.count(n) > 1})
    if duplicated:
        raise UserError(f"{where}: feature names must be unique, repeated: {duplicated}")
    if not isinstance(infos, dict) or set(infos) != set(order):
        raise UserError(f"{where}: features must describe exactly the features of feature_order "
                        f"{order}")
    features = []
    for name in order:
        info = infos[name]
        bundle = (PurePosixPath(str(info.get("bundle", ""))) if isinstance(info, dict)
                  else PurePosixPath(""))
        if (bundle.is_absolute() or ".." in bundle.parts or len(bundle.parts) != 2
            or bundle.parts[0] != "bundles"):
            raise UserError(f"{where}: feature {name!r} has bundle path {str(bundle)!r}; expected "
                            "bundles/<directory> inside the run's artifacts")
        features.append((name, bundle, info))
    return features


def recorded_tables(artifacts: str | Path) -> bool:
    """Whether a downloaded run's metrics.json names saved tables (the `tables/` artifacts to
    fetch); write_export checks every path it names."""
    try:
        details = json.loads((Path(artifacts) / "metrics.json").read_text())
        return any(isinstance(info, dict) and "tables" in info
                   for info in details["features"].values())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


def _export_tables(root: Path, name: str, info: dict, mapper: Mapper, precision: str, run_id: str,
                   staging: Path, target: str) -> dict | None:
    """Write the feature's trained tables, stored at `precision`, to `staging/target`; its
    export.json entry, or None when the run saved none."""
    if "tables" not in info:
        return None
    where = f"run {run_id}: metrics.json"
    relative = PurePosixPath(str(info["tables"]))
    source = (root / relative).resolve()
    if (relative.is_absolute() or len(relative.parts) != 2 or relative.parts[0] != "tables"
            or root / "tables" not in source.parents):
        raise UserError(f"{where}: feature {name!r} has tables path {str(relative)!r}; expected "
                        "tables/<directory> inside the run's artifacts")
    for file in (MANIFEST_FILE, ARRAYS_FILE):
        if (source / file).is_symlink():
            raise UserError(f"run {run_id}: {relative / file} is a symbolic link")
    try:
        stored = read_manifest(source)
        shapes, projections = stored.get("shapes"), stored.get("projections")
        rows = [s[0] for s in shapes] if isinstance(shapes, list) and all(
            isinstance(s, list) and len(s) == 2 for s in shapes) else None
        # a mixed-dimension map's tables are its blocks
        expected = [n for n, _ in mapper.blocks] if mapper.combine == "mixed" else \
            [int(n) for n in mapper.table_sizes]
        if rows != expected:
            raise ValueError(f"its tables hold {shapes!r} rows x dims; its map has tables of "
                             f"{expected} rows")
        trained = read_tables(source, name, "fp32", shapes, where, projections)
    except (OSError, ValueError) as exc:
        raise UserError(f"run {run_id}: tables of feature {name!r}: {exc}") from None
    written = save_tables([trained.table(k) for k in range(len(shapes))], precision, name,
                          staging / target, projections=trained.projections)
    return {"path": target, "shapes": shapes, **({"projections": projections} if projections
                                                 else {}),
            "digest": read_manifest(written)["digest"]}


def _encoding(info: dict, name: str, run_id: str) -> dict | None:
    """The feature's encoding from the run's metrics.json; None, with a warning, when its data
    was prepared before collide recorded encodings (the export then maps int64 ids only)."""
    encoding = checked_encoding(info.get("encoding"), name, f"run {run_id}: metrics.json")
    if encoding is None:
        log.warning("feature %s records no encoding (its data was prepared by an older collide): "
                    "the export maps int64 ids only (transform_ids); prepare the data again and "
                    "re-run the sweep to map raw values", name)
    return encoding


def choose(rows: list[dict], *, max_bytes: float | None = None, max_val_loss: float | None = None,
           per_trial: bool = False) -> tuple[dict, dict]:
    """(the trial row to export, how it was chosen) from a sweep's trial rows.

    With several seeds per configuration, the frontier is over configurations (mean over
    seeds): a configuration is selected, then its median-val seed (sweep.frontier.configurations),
    a typical seed rather than the luckiest. Otherwise, or with `per_trial`, a trial is selected."""
    rows = precision_points(rows)  # a point per trial and table precision
    ranked, view = ranked_rows(rows, per_trial)
    chosen = select_point(frontier_table(ranked), max_bytes=max_bytes, max_val_loss=max_val_loss)
    selection = {"max_bytes": max_bytes, "max_val_loss": max_val_loss, "ranked": view}
    if view == "trials":
        return dict(chosen), selection
    point = next(r for r in rows if r["trial_id"] == chosen["median_trial_id"])
    selection.update({
        "configuration": chosen["configuration"], "seeds": chosen["seeds"],
        "val_logloss_mean": chosen["val_logloss"], "val_logloss_ci95": chosen["val_logloss_ci"],
        "seed": chosen["median_seed"], "seed_rule": "the seed of median val_logloss among the "
                                                    "configuration's seeds",
    })
    # the bound holds for the configuration's mean; say so when the exported seed itself is past it
    if max_val_loss is not None and point["val_logloss"] > max_val_loss:
        selection["note"] = (f"--max-val-loss {max_val_loss:g} holds for the mean over seeds "
                             f"({chosen['val_logloss']:.4f}); the exported seed {point['seed']} "
                             f"has val_logloss {point['val_logloss']:.4f}")
    if max_bytes is not None and point["total_bytes"] > max_bytes:
        selection["note"] = (f"--max-bytes {max_bytes:g} holds for the mean over seeds "
                             f"({chosen['total_bytes']} B); the exported seed {point['seed']} has "
                             f"{point['total_bytes']} B")
    return dict(point), selection


def check_export_dir(out_dir: str | Path) -> None:
    """Refuse, before anything is read, an `out_dir` that is not new, empty or an earlier export."""
    check_replaceable(Path(out_dir), "export", legacy=_legacy_export)


def describe_choice(point: dict, selection: dict) -> str:
    """One line saying what `choose` picked and why."""
    if selection["ranked"] != "configurations":
        return f"chose trial {point['name']}"
    ci = selection["val_logloss_ci95"]
    spread = f" +- {ci:.4f}" if ci is not None else ""
    return (f"chose configuration {selection['configuration']} (val_logloss "
            f"{selection['val_logloss_mean']:.4f}{spread} over seeds "
            f"{','.join(map(str, selection['seeds']))}); exporting {point['name']}, its median-val "
            "seed")


def write_export(point: dict, selection: dict, artifacts: str | Path, out_dir: str | Path, *,
                 experiment: str, parent_run_id: str) -> Path:
    """Write `point`'s verified bundles and export.json to `out_dir`, from `artifacts`: a local
    copy of the point's run artifacts (metrics.json and bundles/), which are not trusted."""
    out_dir = Path(out_dir)
    check_export_dir(out_dir)
    root = Path(artifacts).resolve()
    run_id = point["run_id"]
    staging = staging_dir(out_dir)
    try:
        try:
            details = json.loads((root / "metrics.json").read_text())
        except ValueError as exc:
            raise UserError(f"run {run_id}: metrics.json is not valid JSON ({exc})") from None
        features = _checked_features(details, run_id)
        precision = point.get("precision") or "fp32"  # the tables' precision of the chosen point
        dense = checked_dense_transforms(details.get("dense_transforms", [])
                                         if isinstance(details, dict) else [],
                                         f"run {run_id}: metrics.json")
        written, missing_tables = [], 0
        for index, (name, bundle, info) in enumerate(features):
            source = (root / bundle).resolve()
            if root / "bundles" not in source.parents:
                raise UserError(f"run {run_id}: bundle of {name!r} resolves outside its artifacts")
            mapper, bundle_manifest = load_verified_bundle(source)  # verifies the digest and arrays
            target = f"bundles/{bundle_dir_name(index, name)}"
            (staging / target).mkdir(parents=True)
            for file in (MANIFEST_FILE, ARRAYS_FILE):  # the two files a bundle is, never links
                if (source / file).is_symlink():
                    raise UserError(f"run {run_id}: {bundle / file} is a symbolic link")
                shutil.copyfile(source / file, staging / target / file)
            tables = _export_tables(root, name, info, mapper, precision, run_id, staging,
                                    f"tables/{bundle_dir_name(index, name)}")
            missing_tables += tables is None
            written.append(export_feature(name, target, mapper, bundle_manifest["digest"],
                                          vocab_size=info.get("vocab_size"),
                                          encoding=_encoding(info, name, run_id),
                                          **({"tables": tables} if tables else {})))
        manifest = export_manifest(
            written, experiment=experiment, parent_run_id=parent_run_id, source_run_id=run_id,
            trial=point["name"], selection=selection,
            metrics={k: point.get(k)
                     for k in ("val_logloss", "test_logloss", "test_auc", "test_ne")},
            sizes={k: point.get(k)
                   for k in ("embedding_bytes", "mapping_bytes", "dense_bytes", "total_bytes",
                                            "compression_ratio")},
            embedding_dim=point.get("dim"), dense_transforms=dense,
            precision=precision, precision_scheme=precision_scheme(precision))
        if missing_tables:
            log.warning("run %s saved no embedding tables for %d of its %d features (its sweep "
                        "ran with save_tables false, or an older collide): the export holds "
                        "their maps only", run_id, missing_tables, len(features))
        (staging / EXPORT_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        replace_dir(staging, out_dir, "export", legacy=_legacy_export)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    log.info("exported %s (run %s of sweep %s) to %s", point["name"], run_id, parent_run_id,
             out_dir)
    return out_dir
