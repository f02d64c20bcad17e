"""Load an exported mapping for serving (`collide export` writes it, see sweep.frontier.export).

docs/EXPORT.md specifies the format; `mappers.portable` is its numpy-only loader, which a server
can copy. An export directory holds `export.json` and one bundle per feature under `bundles/`::

    {"format": "collide-export", "format_version": 4, ...source run, metrics, sizes...,
     "precision", "precision_scheme",
     "dense_transforms": [{"column", "kind", "mean", "std", "clip_min", "reason"}, ...],
     "features": [{"name", "bundle", "strategy", "table_sizes", "combine", "nbytes",
                   "digest", "vocab_size", "encoding",
                   "tables": {"path", "shapes", "digest"}}, ...],
     "digest": manifest_digest(export.json)}

A feature's "digest" is its bundle's manifest digest (`mappers.bundle.manifest_digest`,
covering params, sizes and array checksums); the top-level "digest" covers the whole file.
"encoding" says how the source's raw values became int64 ids (mappers.portable: int64, text,
hex64; a bag's separator). `export_feature` / `export_manifest` build these entries for the
writer.

`load_export(DIR)` checks export.json's digest, loads and verifies every bundle, and
refuses any feature whose bundle digest, strategy, table_sizes, combine or nbytes differ
from what export.json records; then it maps raw values per feature:

    >>> mapping = load_export("exported")
    >>> rows = mapping.transform("occupation", ["Sales", None])   # raw values, as the data holds
    >>> rows = mapping.transform_ids("C3", raw_ids)    # int64 ids (a tuple for two-table ones)
    >>> dense = mapping.transform_dense(raw_dense)  # [n, num_dense] as the model was trained on
    >>> vectors = mapping.tables("C3").rows(rows)   # the rows' embeddings, read back (float32)
    >>> vectors = mapping.tables("C3").vectors(rows)  # the same; mixed_dim: projected to D

It gives the same rows as `mappers.portable.load_export`, with the mappers' faster lookups.
`dense_transforms` are those of the prepared data the trial trained on (train-split
statistics, see sweep.datasets.dense); an export of a run that recorded none has [].
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mappers import Mapper, load_bundle_with_manifest, portable
from mappers.base import as_id_array
from mappers.portable import EXPORT_FILE, EXPORT_FORMAT, EXPORT_FORMAT_VERSION, manifest_digest
from sweep.datasets.dense import DenseTransform, apply_dense_transforms
from sweep.errors import UserError

__all__ = ["EXPORT_FILE", "EXPORT_FORMAT", "EXPORT_FORMAT_VERSION", "ExportedMapping",
           "checked_dense_transforms", "checked_encoding", "export_feature", "export_manifest",
           "load_export", "load_verified_bundle"]


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


def checked_encoding(encoding: object, feature: str, where: str) -> dict | None:
    """A feature's encoding from an untrusted file: None (not recorded) or one the serving loader
    reads (mappers.portable.check_encoding)."""
    if encoding is None:
        return None
    try:
        return portable.check_encoding(encoding, feature)
    except ValueError as exc:
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
    stored_tables: dict  # feature name -> portable.Tables, or None where the run saved none

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

    def tables(self, feature: str) -> portable.Tables:
        """The feature's embedding tables at the export's precision: `.rows(rows, t)` reads rows
        of table t back as float32, `.table(t)` a whole table, `.vectors(rows)` the vectors the
        model used (a mixed_dim feature's block rows projected to the model's dim)."""
        self._mapper(feature)
        if self.stored_tables.get(feature) is None:
            raise UserError(portable.no_tables_message(feature))
        return self.stored_tables[feature]

    def _mapper(self, feature: str) -> Mapper:
        if feature not in self.mappers:
            raise KeyError(f"unknown feature {feature!r}; this export maps {self.features}")
        return self.mappers[feature]

    def transform_ids(self, feature: str, raw_ids: Any) -> np.ndarray | tuple[np.ndarray, ...]:
        """Rows for int64 raw ids of `feature` (a tuple of arrays for two-table strategies).

        Any integer dtype or a list of Python ints; uint64 ids are reinterpreted as int64.
        Floats, bools, strings and objects are refused, never rounded.
        """
        return self._mapper(feature).transform(as_id_array(raw_ids, name="raw ids of feature "
                                                                          f"{feature!r}"))

    def ids(self, feature: str, values: Any) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        """int64 ids of raw values as the source data holds them, by the feature's recorded
        encoding (mappers.portable.encode); (ids, offsets) for a multi-valued feature."""
        self._mapper(feature)
        entry = next(f for f in self.manifest["features"] if f["name"] == feature)
        try:
            return portable.feature_ids(entry, values)
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def transform(self, feature: str, values: Any) -> Any:
        """Rows for raw values as the source data holds them (strings, hex strings, integers; see
        `ids`): an int64 array, a tuple of arrays for two-table strategies, and for a
        multi-valued feature (rows, offsets)."""
        ids = self.ids(feature, values)
        if isinstance(ids, tuple):
            return self._mapper(feature).transform(ids[0]), ids[1]
        return self._mapper(feature).transform(ids)


def load_verified_bundle(path: Path) -> tuple[Mapper, dict[str, Any]]:
    """The mapper saved in bundle directory `path` and its verified manifest; a bundle that fails
    its checks (digest, sizes, checksums) is a UserError naming the file."""
    try:
        return load_bundle_with_manifest(path)
    except ValueError as exc:
        raise UserError(str(exc)) from exc


def load_export(path: str | Path) -> ExportedMapping:
    """Load a `collide export` directory, checking export.json against every bundle it loads."""
    path = Path(path)
    manifest_path = path / EXPORT_FILE
    try:
        manifest = portable.read_export_manifest(path)
    except ValueError as exc:
        raise UserError(str(exc)) from None
    checked_dense_transforms(manifest.get("dense_transforms", []), str(manifest_path))
    mappers, tables = {}, {}
    for feature in manifest["features"]:
        name = feature["name"]
        try:
            bundle = portable.bundle_path(path, feature, str(manifest_path))
            checked_encoding(feature.get("encoding"), name, str(manifest_path))
        except ValueError as exc:
            raise UserError(str(exc)) from None
        mapper, bundle_manifest = load_verified_bundle(bundle)  # verifies the bundle itself
        loaded = {"digest": bundle_manifest["digest"], **_mapper_fields(mapper)}
        for field, value in loaded.items():
            if feature.get(field) != value:
                raise UserError(f"{manifest_path}: feature {name!r}: {field} is "
                                f"{feature.get(field)!r} in {EXPORT_FILE} but {value!r} in its "
                                f"bundle {feature.get('bundle')}")
        mappers[name] = mapper
        try:
            tables[name] = portable.load_tables(path, feature, manifest.get("precision", "fp32"),
                                                str(manifest_path))
        except ValueError as exc:
            raise UserError(str(exc)) from None
    return ExportedMapping(manifest=manifest, mappers=mappers, stored_tables=tables)


MAP_BATCH_ROWS = 1 << 20  # values mapped at a time by `map_column`: its memory bound
MAP_OUTPUT_KIND = "map"  # the marker kind of `collide map` output files (sweep.outputs)


def _input_batches(path: Path, column: str, batch_rows: int):
    """Record batches of one column of a Parquet or CSV file, `batch_rows` rows at a time; CSV
    fields are read as text, exactly as the file holds them."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    suffix = path.suffix.lower()
    if suffix == ".parquet":
        source = pq.ParquetFile(path)
        if column not in source.schema_arrow.names:
            raise UserError(f"{path}: column {column!r} not found; columns present: "
                            f"{source.schema_arrow.names}")
        yield from source.iter_batches(batch_size=batch_rows, columns=[column])
        return
    if suffix not in (".csv", ".tsv"):
        raise UserError(f"--input {path}: expected a .parquet, .csv or .tsv file")
    reader = pcsv.open_csv(
        path, read_options=pcsv.ReadOptions(block_size=1 << 24),
        parse_options=pcsv.ParseOptions(delimiter="\t" if suffix == ".tsv" else ","),
        convert_options=pcsv.ConvertOptions(include_columns=[column],
                                            column_types={column: pa.string()},
                                            strings_can_be_null=False))
    if column not in reader.schema.names:
        raise UserError(f"{path}: column {column!r} not found")
    for batch in reader:
        for start in range(0, batch.num_rows, batch_rows):
            yield batch.slice(start, batch_rows)


def _values(array) -> Any:
    """A column batch as `ExportedMapping.transform` takes it: integers as a numpy array, the
    rest as Python values (str, float, None, lists)."""
    import pyarrow as pa

    if pa.types.is_integer(array.type) and array.null_count == 0:
        return array.to_numpy()
    return array.to_pylist()


def map_column(export_dir: str | Path, input_path: str | Path, column: str, out: str | Path, *,
               feature: str | None = None, batch_rows: int = MAP_BATCH_ROWS,
               progress: Any = None) -> dict:
    """Map column `column` of a Parquet or CSV file through export `export_dir`'s map of `feature`
    (default: the column's name) into `out` (.parquet or .csv), `batch_rows` values at a time.

    `out` holds one row per input row, in order: `row` (a two-table strategy: `row_0` and
    `row_1`); for a multi-valued feature a list of rows per input row. It is written only
    where collide may (sweep.outputs: a file it wrote before, or a new one) and renamed into
    place once complete. `progress(rows_done)` is called after each batch. Returns a summary."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from sweep.outputs import write_owned_files

    input_path, out = Path(input_path), Path(out)
    if out.suffix.lower() not in (".parquet", ".csv"):
        raise UserError(f"--out {out}: expected a .parquet or .csv file name")
    if not input_path.is_file():
        raise UserError(f"--input {input_path}: no such file")
    if out.resolve() == input_path.resolve():
        raise UserError(f"--out {out} is the input file; write the rows elsewhere")
    mapping = load_export(export_dir)
    feature = feature or column
    if feature not in mapping.mappers:  # before anything is read
        raise UserError(f"export {export_dir} has no feature {feature!r} (--feature; default: the "
                        f"column's name); it maps {mapping.features}")
    multi = bool((next(f for f in mapping.manifest["features"] if f["name"] == feature)
                  .get("encoding") or {}).get("multi_valued"))
    summary = {"rows": 0, "feature": feature, "out": out}

    def table_of(rows: Any, offsets: np.ndarray | None) -> pa.Table:
        tables = rows if isinstance(rows, tuple) else (rows,)
        names = ["row"] if len(tables) == 1 else [f"row_{t}" for t in range(len(tables))]
        if offsets is None:
            return pa.table(dict(zip(names, tables, strict=True)))
        if out.suffix.lower() == ".csv":  # CSV has no lists: the rows of a bag joined by "|"
            return pa.table({n: ["|".join(map(str, t[a:b])) for a, b in zip(
                offsets[:-1], offsets[1:], strict=True)] for n, t in zip(names, tables,
                                                                           strict=True)})
        return pa.table({n: pa.ListArray.from_arrays(pa.array(offsets.astype(np.int32)), t)
                         for n, t in zip(names, tables, strict=True)})

    def write(tmp: Path) -> None:
        writer = None
        try:
            for batch in _input_batches(input_path, column, batch_rows):
                values = _values(batch.column(0))
                if multi:
                    rows, offsets = mapping.transform(feature, values)
                else:
                    rows, offsets = mapping.transform(feature, values), None
                table = table_of(rows, offsets)
                if writer is None:
                    writer = (pq.ParquetWriter(tmp, table.schema)
                              if out.suffix.lower() == ".parquet"
                              else pcsv.CSVWriter(tmp, table.schema))
                writer.write_table(table)
                summary["rows"] += batch.num_rows
                if progress is not None:
                    progress(summary["rows"])
        finally:
            if writer is not None:
                writer.close()
        if writer is None:
            raise UserError(f"--input {input_path}: no rows")

    write_owned_files(out.parent, MAP_OUTPUT_KIND, {out.name: write})
    return summary
