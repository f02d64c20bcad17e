"""Every source's raw values, read from its file as a server would hold them, map through an export
to the rows its prepared ids map to: the encoding each source records is the one it applied.

The export holds a `full` map per feature (one row per training id, unseen ids on the OOV row),
so equal rows mean equal ids for every training id. Both loaders are checked: sweep.load_export
and the numpy-only mappers.portable."""

from __future__ import annotations

import csv
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mappers import FullMapper, portable, save_bundle
from mappers.bundle import read_manifest
from sweep.datasets import get_source, prepare
from sweep.serving import export_feature, export_manifest, load_export


def _export(dataset, out):
    """`out` as collide export writes it: one verified full-map bundle per feature, the
    encodings and dense transforms the prepared data recorded."""
    mappers, features = {}, []
    for index, entry in enumerate(dataset.manifest["features"]):
        name = entry["name"]
        vocab = dataset.vocab[name]
        mappers[name] = FullMapper().fit(np.asarray(vocab.ids), np.asarray(vocab.counts))
        target = f"bundles/{index:02d}-{name}"
        save_bundle(mappers[name], out / target)
        features.append(export_feature(name, target, mappers[name],
                                       read_manifest(out / target)["digest"],
                                       vocab_size=len(vocab.ids), encoding=entry["encoding"]))
    manifest = export_manifest(features, dense_transforms=dataset.manifest["dense_transforms"])
    (out / "export.json").write_text(json.dumps(manifest))
    return mappers


def _check(dataset, tmp_path, raw: dict[str, list]):
    """Each feature of `raw` (its values per row, as the source file holds them) maps to the
    rows of its prepared ids, through both loaders."""
    mappers = _export(dataset, tmp_path / "export")
    loaders = (load_export(tmp_path / "export"), portable.load_export(tmp_path / "export"))
    for name, values in raw.items():
        column = dataset.sparse[name]
        want = mappers[name].transform(np.asarray(column.values))
        # most values are training ids (the rest, val/test only, take the OOV row)
        assert np.mean(want < len(dataset.vocab[name].ids)) > 0.5, name
        for loader in loaders:
            got = loader.transform(name, values)
            if column.offsets is None:
                np.testing.assert_array_equal(got, want, err_msg=name)
            else:
                rows, offsets = got
                np.testing.assert_array_equal(offsets, np.asarray(column.offsets), err_msg=name)
                np.testing.assert_array_equal(rows, want, err_msg=name)
    return loaders


def test_criteo_hex_ids(criteo_sample, tmp_path):
    dataset = prepare(get_source("criteo", path=criteo_sample), tmp_path / "p")
    lines = [line.rstrip("\n").split("\t") for line in criteo_sample.open()]
    raw = {f"C{j + 1}": [fields[14 + j] for fields in lines] for j in range(26)}
    assert any("" in values for values in raw.values())  # empty fields: the missing id
    for loader in _check(dataset, tmp_path, raw):
        with pytest.raises(ValueError, match=r"feature 'C1' \(hex64 ids\): 'xyz' is not 1 to 16 "
                                             r"hex digits"):
            loader.transform("C1", ["05db9164", "xyz"])


def test_recbole_tokens_and_token_sequences(ml100k, tmp_path):
    dataset = prepare(get_source("recbole", path=ml100k, split="random"), tmp_path / "p")

    def table(kind):
        with (ml100k / f"ml-100k.{kind}").open() as f:
            rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        return [h.split(":")[0] for h in rows[0]], rows[1:]

    header, inter = table("inter")
    raw = {name: [r[header.index(name)] for r in inter] for name in ("user_id", "item_id")}
    item_header, items = table("item")
    by_item = {r[0]: r for r in items}
    for name in ("movie_title", "class"):  # token_seq: joined by the seq_separator, " "
        raw[name] = [by_item[i][item_header.index(name)] if i in by_item else None
                     for i in raw["item_id"]]
    assert dataset.manifest["features"][
        dataset.feature_names.index("class")]["encoding"]["separator"] == " "
    _check(dataset, tmp_path, raw)


def _census_like():
    rng = np.random.default_rng(0)
    n = 3000
    jobs = np.array(["Sales", "Tech-support", "Craft-repair", "", "Adm-clerical", "Exec"])
    return {
        "income": rng.integers(0, 2, n),
        "age": rng.integers(17, 90, n),
        "occupation": jobs[rng.integers(0, len(jobs), n)],
        "zip": [f"{z:05d}" for z in rng.integers(0, 400, n)],  # leading zeros: integers
        "big": [str(2**64 - 1 - int(v)) for v in rng.integers(0, 50, n)],  # above 2**63
        "tags": ["|".join(f"t{t}" for t in rng.integers(0, 40, rng.integers(0, 4)))
                 for _ in range(n)],
    }


def _write_csv(path, columns: dict):
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(list(columns))
        writer.writerows(zip(*columns.values(), strict=True))
    return path


def test_table_csv_text_integers_and_bags(tmp_path):
    columns = _census_like()
    path = _write_csv(tmp_path / "census.csv", columns)
    dataset = prepare(get_source("table", path=path, label="income", dense=("age",),
                                 categorical=("occupation", "zip", "big"), multi_valued=("tags",)),
                      tmp_path / "p")
    kinds = {f["name"]: f["encoding"]["kind"] for f in dataset.manifest["features"]}
    assert kinds == {"occupation": "text", "zip": "int64", "big": "int64", "tags": "text"}
    raw = {name: list(columns[name]) for name in ("occupation", "zip", "big", "tags")}
    for loader in _check(dataset, tmp_path, raw):
        sales = loader.transform("occupation", ["Sales"])
        assert sales[0] == loader.transform_ids("occupation", portable.text_ids(["Sales"]))[0]
        np.testing.assert_array_equal(loader.transform("zip", ["00042", 42, 42.0]),
                                      loader.transform("zip", [42, 42, 42]))
        rows, offsets = loader.transform("tags", [["t1", "t2"], "t1|t2", "", None])
        np.testing.assert_array_equal(offsets, [0, 2, 4, 5, 6])
        np.testing.assert_array_equal(rows[:2], rows[2:4])  # a list or the joined text
        with pytest.raises(ValueError, match=r"feature 'occupation' holds text ids: give strings, "
                                             r"got 7 \(int\)"):
            loader.transform("occupation", [7])


def test_table_parquet_strings_integers_floats_and_lists(tmp_path):
    columns = _census_like()
    rng = np.random.default_rng(1)
    n = len(columns["income"])
    floats = rng.integers(0, 30, n).astype(np.float64)
    floats[::7] = np.nan
    table = pa.table({
        "income": columns["income"], "age": columns["age"],
        "occupation": pa.array(columns["occupation"]).dictionary_encode(),
        "zip": pa.array(columns["zip"]),  # digits, but Parquet text is always hashed
        "code": pa.array(rng.integers(-5, 50, n), type=pa.int32()),
        "score": pa.array(floats),
        "words": pa.array([t.split("|") if t else [] for t in columns["tags"]],
                          type=pa.list_(pa.string())),
        "numbers": pa.array([list(rng.integers(0, 9, rng.integers(0, 3))) for _ in range(n)],
                            type=pa.list_(pa.int64())),
    })
    path = tmp_path / "census.parquet"
    pq.write_table(table, path)
    dataset = prepare(get_source("table", path=path, label="income", dense=("age",),
                                 categorical=("occupation", "zip", "code", "score"),
                                 multi_valued=("words", "numbers")), tmp_path / "p")
    kinds = {f["name"]: (f["encoding"]["kind"], f["encoding"]["separator"])
             for f in dataset.manifest["features"]}
    assert kinds == {"occupation": ("text", None), "zip": ("text", None), "code": ("int64", None),
                     "score": ("int64", None), "words": ("text", None),
                     "numbers": ("int64", None)}
    raw = {name: table.column(name).to_pylist() for name in
           ("occupation", "zip", "code", "score", "words", "numbers")}
    for loader in _check(dataset, tmp_path, raw):
        with pytest.raises(ValueError, match=r"feature 'words' records no separator: give each "
                                             r"row as a list of values"):
            loader.transform("words", ["a|b"])


def test_synthetic_ids_are_int64_already(tmp_path):
    dataset = prepare(get_source("synthetic", num_rows=2000, vocab_sizes=(30, 300), num_dense=1),
                      tmp_path / "p")
    raw = {name: np.asarray(dataset.sparse[name].values) for name in dataset.feature_names}
    _check(dataset, tmp_path, raw)


def test_collide_map_maps_a_file_column_in_batches_and_owns_its_output(tmp_path, capsys):
    from sweep.cli import main

    columns = _census_like()
    path = _write_csv(tmp_path / "census.csv", columns)
    dataset = prepare(get_source("table", path=path, label="income", dense=("age",),
                                 categorical=("occupation", "zip"), multi_valued=("tags",)),
                      tmp_path / "p")
    _export(dataset, tmp_path / "export")
    loader = load_export(tmp_path / "export")
    served = tmp_path / "served.parquet"
    pq.write_table(pa.table({"job": columns["occupation"], "zip": columns["zip"]}), served)
    out = tmp_path / "out" / "rows.parquet"

    def run(*args):
        return main(["map", str(tmp_path / "export"), "--batch-rows", "700", *args])

    # a Parquet column under another name than its feature
    assert run("--input", str(served), "--column", "job", "--feature", "occupation", "--out",
               str(out)) == 0
    assert "mapped 3,000 values" in capsys.readouterr().out
    np.testing.assert_array_equal(pq.read_table(out).column("row").to_numpy(),
                                  loader.transform("occupation", list(columns["occupation"])))
    # CSV in, CSV out: the text "00042" read as the integer the data held
    csv_out = tmp_path / "out" / "zip.csv"
    assert run("--input", str(path), "--column", "zip", "--out", str(csv_out)) == 0
    rows = [int(r["row"]) for r in csv.DictReader(csv_out.open())]
    np.testing.assert_array_equal(rows, loader.transform("zip", list(columns["zip"])))
    # a bag per row: a list of rows per input row
    bags_out = tmp_path / "out" / "tags.parquet"
    assert run("--input", str(path), "--column", "tags", "--out", str(bags_out)) == 0
    want_rows, want_offsets = loader.transform("tags", list(columns["tags"]))
    got = pq.read_table(bags_out).column("row").combine_chunks()
    np.testing.assert_array_equal(got.offsets.to_numpy(), want_offsets)
    np.testing.assert_array_equal(got.values.to_numpy(), want_rows)
    # its own output is replaced; a file collide did not write is refused and kept
    assert run("--input", str(served), "--column", "job", "--feature", "occupation", "--out",
               str(out)) == 0
    mine = tmp_path / "out" / "mine.parquet"
    mine.write_bytes(b"the user's own")
    capsys.readouterr()
    assert run("--input", str(served), "--column", "job", "--feature", "occupation", "--out",
               str(mine)) == 2
    assert "already holds mine.parquet, which collide did not write there" in \
        capsys.readouterr().err
    assert mine.read_bytes() == b"the user's own"
    assert run("--input", str(served), "--column", "nope", "--feature", "zip", "--out",
               str(out)) == 2
    assert "column 'nope' not found; columns present: ['job', 'zip']" in capsys.readouterr().err
    assert run("--input", str(served), "--column", "job", "--out", str(out)) == 2
    assert ("has no feature 'job' (--feature; default: the column's name); it maps ['occupation', "
            "'zip', 'tags']") in capsys.readouterr().err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        ".collide-output.json", "mine.parquet", "rows.parquet", "tags.parquet", "zip.csv"]
