from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest

from sweep.datasets.cache import prepare
from sweep.datasets.recbole import RecBoleConfig, RecBoleSource
from sweep.datasets.tokens import MISSING_ID
from sweep.hashing import stable_hash_strings


def h(*words: str) -> list[int]:
    return stable_hash_strings(list(words)).tolist()


def bag(ds, name: str, row: int) -> list[int]:
    column = ds.sparse[name]
    return np.asarray(column.values[column.offsets[row]:column.offsets[row + 1]]).tolist()


@pytest.fixture(scope="module")
def ml(ml100k, tmp_path_factory):
    return prepare(RecBoleSource.from_params(path=ml100k), tmp_path_factory.mktemp("ml") / "p")


@pytest.fixture(scope="module")
def raw_inter(ml100k) -> dict[str, np.ndarray]:
    with open(ml100k / "ml-100k.inter", newline="") as f:
        rows = list(csv.reader(f, delimiter="\t"))[1:]
    return {"user": np.array([r[0] for r in rows]), "item": np.array([r[1] for r in rows]),
            "rating": np.array([float(r[2]) for r in rows]),
            "time": np.array([float(r[3]) for r in rows])}


def test_ml100k_counts_and_labels(ml, raw_inter):
    assert ml.num_rows == 100_000
    assert len(np.unique(np.asarray(ml.sparse["user_id"].values))) == 943
    assert len(np.unique(np.asarray(ml.sparse["item_id"].values))) == 1682
    expected_rate = float((raw_inter["rating"] >= 4).mean())  # computed from the raw file
    assert ml.manifest["label_rate"] == pytest.approx(expected_rate, abs=1e-7)
    np.testing.assert_array_equal(np.asarray(ml.labels),
                                  (raw_inter["rating"] >= 4).astype(np.float32))
    assert ml.manifest["dense"] == []  # rating is the label, timestamp the split
    assert ml.manifest["report"] == {"rows": 100_000, "blank_lines": 0, "skipped_fields": [],
                                     "rows_without_user": 0, "rows_without_item": 0}


def test_ml100k_timestamp_split(ml, raw_inter):
    split, time = np.asarray(ml.split), raw_inter["time"]
    assert ml.manifest["split_sizes"] == {"train": 80_000, "val": 10_000, "test": 10_000}
    assert time[split == 0].max() <= time[split == 1].min()
    assert time[split == 1].max() <= time[split == 2].min()
    # no training row is newer than a test row
    assert time[split == 0].max() <= time[split == 2].min()
    # the rows stay in file order, with their time
    np.testing.assert_array_equal(np.asarray(ml.extras["time"]), time)
    test = ml.split_indices("test")
    windows = ml.test_windows(4)
    assert sorted(np.concatenate(windows).tolist()) == list(range(len(test)))
    # each window is wholly older than the next
    for earlier, later in zip(windows[:-1], windows[1:], strict=True):
        assert time[test[earlier]].max() <= time[test[later]].min()


def test_ml100k_vocabularies_come_from_train_only(ml, raw_inter):
    train = np.asarray(ml.split) == 0
    items = np.asarray(ml.sparse["item_id"].values)
    vocab = ml.vocab["item_id"]
    assert int(np.asarray(vocab.counts).sum()) == int(train.sum())
    # items first rated after the train period
    only_later = np.setdiff1d(items[~train], items[train])
    assert len(only_later) > 0
    assert not np.isin(only_later, np.asarray(vocab.ids)).any()
    raw_only_later = np.setdiff1d(raw_inter["item"][~train], raw_inter["item"][train])
    np.testing.assert_array_equal(np.sort(only_later), np.sort(stable_hash_strings(raw_only_later)))
    lengths = np.diff(np.asarray(ml.sparse["class"].offsets))
    assert int(np.asarray(ml.vocab["class"].counts).sum()) == int(lengths[train].sum())


def test_ml100k_hand_checked_rows(ml):
    # .inter line 2: user 196, item 242 "Kolya" (1996, Comedy); user 196: 49, M, writer, 55105
    user, item = ml.sparse["user_id"].values, ml.sparse["item_id"].values
    assert [user[0], item[0]] == h("196", "242")
    assert [ml.sparse[f].values[0] for f in ("age", "gender", "occupation", "zip_code")] == h(
        "49", "M", "writer", "55105")
    assert bag(ml, "movie_title", 0) == h("Kolya") and bag(ml, "class", 0) == h("Comedy")
    # line 3: user 186, item 302 "L.A. Confidential" (1997, Crime Film-Noir Mystery Thriller)
    assert bag(ml, "movie_title", 1) == h("L.A.", "Confidential")
    assert bag(ml, "class", 1) == h("Crime", "Film-Noir", "Mystery", "Thriller")
    offsets = np.asarray(ml.sparse["class"].offsets)
    assert offsets[:3].tolist() == [0, 1, 5]
    assert ml.sparse["release_year"].values[1] == h("1997")[0]


def write_atomic(directory: Path, name: str, suffix: str, header: str, rows: list[str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.{suffix}"
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    d = tmp_path / "tiny"
    write_atomic(d, "tiny", "inter",
                 "user_id:token\titem_id:token\trating:float\ttimestamp:float\tctx:float"
                 "\tw:float_seq",
                 ["u1\ti1\t5\t30\t0.5\t1 2", "u2\ti2\t1\t10\t\t", "u9\ti1\t4\t10\t2\t",
                  "u1\ti3\t3\t20\t1\t",
                  "", "u2\ti1\t4.5\t40\t3\t"])
    write_atomic(d, "tiny", "user", "user_id:token\tage:float\tgroups:token_seq\temb:float_seq",
                 ["u1\t30\ta b\t0.1 0.2", "u2\t\t\t"])
    write_atomic(d, "tiny", "item", "item_id:token\tgenre:token", ["i1\tx", "i2\t"])
    return d


def test_joins_missing_keys_floats_and_float_seq(tiny, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="sweep.datasets.recbole"):
        ds = prepare(RecBoleSource.from_params(path=tiny, val_fraction=0.2, test_fraction=0.2,
                                               dense_transform="none"),
                     tmp_path / "p")
    assert "skipping float_seq field 'emb'" in caplog.text
    assert ds.num_rows == 5
    assert ds.manifest["report"] == {"rows": 5, "blank_lines": 1,
                                     "skipped_fields": ["tiny.inter:w", "tiny.user:emb"],
                                     "rows_without_user": 1, "rows_without_item": 1}
    assert ds.manifest["dense"] == ["ctx", "age"]
    np.testing.assert_array_equal(np.asarray(ds.dense), np.array(
        [[0.5, 30], [0, 0], [2, 0], [1, 30], [3, 0]], np.float32))
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0, 1])
    assert [bag(ds, "groups", r) for r in range(5)] == [h("a", "b"), [MISSING_ID], [MISSING_ID],
                                                        h("a", "b"), [MISSING_ID]]
    assert np.asarray(ds.sparse["genre"].values).tolist() == [h("x")[0], MISSING_ID, h("x")[0],
                                                              MISSING_ID, h("x")[0]]
    # timestamps 30, 10, 10, 20, 40: ties broken by line -> order rows 1, 2, 3, 0, 4; 3 train, then
    # 1 val, 1 test
    assert ds.manifest["split_sizes"] == {"train": 3, "val": 1, "test": 1}
    assert np.asarray(ds.split).tolist() == [1, 0, 0, 0, 2]


def test_random_split_and_explicit_name(tiny, tmp_path):
    ds = prepare(RecBoleSource.from_params(path=tiny, name="tiny", split="random", seed=3,
                                           val_fraction=0.3,
                                           # 5 rows: 2 train, 2 val, 1 test
                                           test_fraction=0.3), tmp_path / "p")
    assert ds.manifest["split"]["kind"] == "random" and ds.num_rows == 5


def write_inter(tmp_path: Path, header: str, rows: list[str]) -> Path:
    write_atomic(tmp_path / "d", "d", "inter", header, rows)
    return tmp_path / "d"


GOOD_HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float"


@pytest.mark.parametrize(("header", "rows", "message"), [
    ("user_id:token\titem_id\trating:float", [],
     r"d\.inter:1: header field 'item_id' must look like name:type"),
    ("user_id:token\titem_id:int\trating:float", [],
     r"field 'item_id' has type 'int'; allowed: token, token_seq"),
    ("user_id:token\titem_id:token\ttimestamp:float", [],
     r"label_field 'rating' is not a field; fields: \['user_id'"),
    ("user_id:token\titem_id:token\trating:token\ttimestamp:float", [],
     r"label_field 'rating' has type 'token', expected float"),
    ("user_id:token\titem_id:token\trating:float", [], r"time_field 'timestamp' is not a field"),
    (GOOD_HEADER, ["u\ti\tfive\t1"], r"d\.inter:2: column 'rating' must be a number, got 'five'"),
    (GOOD_HEADER, ["u\ti\t3\t1", "u\ti\t\t2"], r"d\.inter:3: 'rating' is missing"),
    (GOOD_HEADER, ["u\ti\t3\t1", "u\ti\t3\t"], r"d\.inter:3: 'timestamp' is missing"),
    (GOOD_HEADER, ["u\ti\t3\t1", "u\ti\t3"],
     r"d\.inter:3: expected 4 fields \(as in the header\), found 3"),
])
def test_inter_errors(tmp_path, header, rows, message):
    with pytest.raises(ValueError, match=message):
        prepare(RecBoleSource.from_params(path=write_inter(tmp_path, header, rows)), tmp_path / "p")


@pytest.mark.parametrize(("user_rows", "message"), [
    (["u1\t3", "u2\t4", "u1\t5"],
     r"d\.user: user_id 'u1' appears on lines 2 and 4; keys must be unique"),
    (["u1\t3", "\t4"], r"d\.user:3: the join field 'user_id' is empty"),
])
def test_side_file_errors(tmp_path, user_rows, message):
    d = write_inter(tmp_path, GOOD_HEADER, ["u1\ti\t3\t1"])
    write_atomic(d, "d", "user", "user_id:token\tage:token", user_rows)
    with pytest.raises(ValueError, match=message):
        prepare(RecBoleSource.from_params(path=d), tmp_path / "p")


def test_field_in_two_files_is_an_error(tmp_path):
    d = write_inter(tmp_path, GOOD_HEADER, ["u1\ti\t3\t1"])
    write_atomic(d, "d", "user", "user_id:token\tcity:token", ["u1\tx"])
    write_atomic(d, "d", "item", "item_id:token\tcity:token", ["i\ty"])
    with pytest.raises(ValueError,
                       match=r"field 'city' appears in both .*d\.user and .*d\.item; rename one"):
        prepare(RecBoleSource.from_params(path=d), tmp_path / "p")


def test_missing_inter_file_names_what_was_found(tmp_path):
    d = write_inter(tmp_path, GOOD_HEADER, ["u1\ti\t3\t1"])
    with pytest.raises(ValueError,
                       match=r"no other\.inter file \(found: \['d\.inter'\]\); set name"):
        RecBoleSource.from_params(path=d, name="other")


@pytest.mark.parametrize(("params", "message"), [
    ({"split": "user"}, r"split must be 'timestamp' or 'random', got 'user'"),
    ({"chunk_rows": 0}, r"chunk_rows must be an int >= 1, got 0"),
    ({"seq_separator": ""}, r"seq_separator must be a non-empty string, got ''"),
    ({"label_field": ""}, r"label_field must be a non-empty field name, got ''"),
    ({"name": "a/b"}, r"name must be a file stem such as 'ml-100k', got 'a/b'"),
    ({"test_fraction": 0.0}, r"test_fraction must be in \(0, 1\), got 0.0"),
])
def test_config_errors(params, message):
    with pytest.raises(ValueError, match=message):
        RecBoleConfig(path=Path("d"), **params)


def test_dense_fields_get_the_auto_transform_by_default(tiny, tmp_path):
    ds = prepare(RecBoleSource.from_params(path=tiny, val_fraction=0.2, test_fraction=0.2),
                 tmp_path / "p")
    entries = {e["column"]: e for e in ds.manifest["dense_transforms"]}
    assert sorted(entries) == ["age", "ctx"]
    assert all(e["kind"] in ("standardize", "log1p_standardize", "none") and e["reason"]
               for e in entries.values())
    train = np.asarray(ds.split) == 0
    dense = np.asarray(ds.dense)[train]
    for j, name in enumerate(ds.manifest["dense"]):
        if entries[name]["kind"] != "none":
            # standardized with the train rows' own statistics
            assert abs(dense[:, j].mean()) < 1e-5
