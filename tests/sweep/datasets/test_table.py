from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sweep.datasets.cache import prepare
from sweep.datasets.table import TableConfig, TableSource
from sweep.datasets.tokens import MISSING_ID
from sweep.hashing import stable_hash_strings


def h(*words: str) -> list[int]:
    return stable_hash_strings(list(words)).tolist()


def bags(ds, name: str) -> list[list[int]]:
    column = ds.sparse[name]
    offsets = np.asarray(column.offsets)
    return [np.asarray(column.values[a:b]).tolist() for a,
            b in zip(offsets[:-1], offsets[1:], strict=True)]


CSV_ROWS = [
    ["click", "price", "age", "user", "item", "tags", "mixed", "unused"],
    ["1", "1.5", "30", "alice", "7", "a|b", "7", "z"],
    ["0", "", "41", "smith, j", "", "c", "x", "z"],
    ["1", "2.25", "", "alice", "12", "", "", "z"],
    ["0", "3", "22", "", "7", "a||d", "7", "z"],
]
CSV_SCHEMA = {"label": "click", "dense": ("price", "age"), "dense_transform": "none",
              "categorical": ("user", "item", "mixed"), "multi_valued": ("tags",)}
# 4 rows: 2 train, 1 val, 1 test
TINY_SPLIT = {"split": "sequential", "val_fraction": 0.25, "test_fraction": 0.25}


def write_csv(path: Path, rows: list[list[str]], delimiter: str = ",") -> Path:
    with open(path, "w", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    return path


def check_csv_result(ds) -> None:
    assert ds.num_rows == 4
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(ds.dense),
                                  np.array([[1.5, 30], [0, 41], [2.25, 0], [3, 22]], np.float32))
    assert np.asarray(ds.sparse["user"].values).tolist() == [*h("alice", "smith, j", "alice"),
                                                             MISSING_ID]
    # integers stay integers
    assert np.asarray(ds.sparse["item"].values).tolist() == [7, MISSING_ID, 12, 7]
    # text: hashed
    assert np.asarray(ds.sparse["mixed"].values).tolist() == [*h("7", "x"), MISSING_ID, *h("7")]
    assert bags(ds, "tags") == [h("a", "b"), h("c"), [MISSING_ID], h("a", "d")]


@pytest.mark.parametrize(("suffix", "delimiter"), [(".csv", ","), (".tsv", "\t")])
def test_csv_round_trip(tmp_path, suffix, delimiter):
    path = write_csv(tmp_path / f"data{suffix}", CSV_ROWS, delimiter)
    ds = prepare(TableSource.from_params(path=path, **CSV_SCHEMA, **TINY_SPLIT), tmp_path / "p")
    check_csv_result(ds)
    assert ds.manifest["report"] == {"rows": 4, "blank_lines": 0}


def test_yaml_schema_file_gives_the_same_result(tmp_path):
    path = write_csv(tmp_path / "data.csv", CSV_ROWS)
    schema = tmp_path / "schema.yaml"
    schema.write_text("label: click\ndense: [price, age]\ndense_transform: none\ncategorical: "
                      "[user, item, mixed]\nmulti_valued: [tags]\nseparator: '|'\n")
    # agreeing twice is fine
    source = TableSource.from_params(path=path, schema_file=schema, label="click", **TINY_SPLIT)
    assert source.input_files() == [path, schema]
    check_csv_result(prepare(source, tmp_path / "p"))


def test_parquet_round_trip(tmp_path):
    table = pa.table({
        "rating": pa.array([5.0, 3.0, 4.0, 1.0]),
        "price": pa.array([1.5, None, 2.0, -0.0], pa.float32()),
        "user": pa.array(["alice", None, "bob", ""]),
        "item": pa.array([7, None, -3, 2**40], pa.int64()),
        "shop": pa.array([1.0, float("nan"), 3.0, 1.0]),  # integral floats (pandas ints with NaN)
        "genres": pa.array([["x", "y"], None, [], ["y", None, ""]], pa.list_(pa.string())),
        "ids": pa.array([[1, 2], [3], None, [2**62]], pa.list_(pa.int64())),
        "tags": pa.array(["p;q", "q", None, ""]),
    })
    path = tmp_path / "data.parquet"
    pq.write_table(table, path)
    ds = prepare(TableSource.from_params(path=path, label="rating", label_threshold=4.0,
                                         dense=("price",),
                                         dense_transform="none",
                                         categorical=("user", "item", "shop"),
                                         multi_valued=("genres", "ids", "tags"),
                                         separator=";", **TINY_SPLIT), tmp_path / "p")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0])
    np.testing.assert_array_equal(np.asarray(ds.dense)[:, 0], [1.5, 0, 2.0, 0])
    assert np.asarray(ds.sparse["user"].values).tolist() == [*h("alice"), MISSING_ID, *h("bob"),
                                                             MISSING_ID]
    assert np.asarray(ds.sparse["item"].values).tolist() == [7, MISSING_ID, -3, 2**40]
    assert np.asarray(ds.sparse["shop"].values).tolist() == [1, MISSING_ID, 3, 1]
    assert bags(ds, "genres") == [h("x", "y"), [MISSING_ID], [MISSING_ID], h("y")]
    assert bags(ds, "ids") == [[1, 2], [3], [MISSING_ID], [2**62]]
    assert bags(ds, "tags") == [h("p", "q"), h("q"), [MISSING_ID], [MISSING_ID]]
    # sequential: 2 train rows first, then (4 - 2) // 2 = 1 val
    assert np.asarray(ds.split).tolist() == [0, 0, 1, 2]


def test_missing_column_names_file_and_present_columns(tmp_path):
    path = write_csv(tmp_path / "data.csv", CSV_ROWS)
    source = TableSource.from_params(path=path, label="click", categorical=("user", "nope"))
    present = r"\['click', 'price', 'age', 'user', 'item', 'tags', 'mixed', 'unused'\]"
    with pytest.raises(ValueError,
                       match=r"data\.csv: categorical column 'nope' not found; columns present: "
                             rf"{present}"):
        prepare(source, tmp_path / "p")
    pq.write_table(pa.table({"y": [1, 0]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError,
                       match=r"d\.parquet: label column 'click' not found; columns present: "
                             r"\['y'\]"):
        prepare(TableSource.from_params(path=tmp_path / "d.parquet", label="click",
                                        categorical=("y",)), tmp_path / "q")


def csv_with(tmp_path: Path, column: str, values: list[str]) -> Path:
    rows = [row[:] for row in CSV_ROWS]
    j = rows[0].index(column)
    for row, value in zip(rows[1:], values, strict=True):
        row[j] = value
    return write_csv(tmp_path / "data.csv", rows)


@pytest.mark.parametrize(("column", "values", "message"), [
    ("click", ["1", "0", "2", "0"],
     r"data\.csv:4: label column 'click' must be 0 or 1 \(or true/false\); for other values set "
     r"label_equals, "
     r"label_in or label_threshold, got '2'"),
    ("click", ["1", "", "1", "0"], r"data\.csv:3: label column 'click' is missing"),
    ("price", ["1", "2", "cheap", "3"],
     r"data\.csv:4: column 'price' must be a number, got 'cheap'"),
])
def test_csv_value_errors_name_the_line(tmp_path, column, values, message):
    path = csv_with(tmp_path, column, values)
    with pytest.raises(ValueError, match=message):
        prepare(TableSource.from_params(path=path, **CSV_SCHEMA), tmp_path / "p")


def test_csv_field_count_and_encoding_errors(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("click,user\n1,a\n0,b,extra\n")
    with pytest.raises(ValueError,
                       match=r"data\.csv:3: expected 2 fields \(as in the header\), found 3: "
                             r"'0,b,extra'"):
        prepare(TableSource.from_params(path=path, label="click", categorical=("user",)),
                tmp_path / "p")
    path.write_bytes(b"click,user\n1,\xff\n")
    with pytest.raises(ValueError,
                       match=r"data\.csv:2: not valid UTF-8 \(invalid start byte\) at byte 3 of "
                             r"the line"):
        prepare(TableSource.from_params(path=path, label="click", categorical=("user",)),
                tmp_path / "p")
    path.write_bytes(b"cl\xffick,user\n1,a\n")
    with pytest.raises(ValueError,
                       match=r"data\.csv:1: the header is not valid UTF-8 \(invalid start byte at "
                             r"byte 2\)"):
        prepare(TableSource.from_params(path=path, label="click", categorical=("user",)),
                tmp_path / "p")
    for text, message in [("",
                           r"data\.csv:1: expected a header line of column names, found an empty "
                           r"line"),
                          ("click,user,click\n1,2,3\n",
                           r"data\.csv:1: column names must be unique, repeated: \['click'\]")]:
        path.write_text(text)
        with pytest.raises(ValueError, match=message):
            prepare(TableSource.from_params(path=path, label="click", categorical=("user",)),
                    tmp_path / "p")


@pytest.mark.parametrize(("column", "role", "message"), [
    (pa.array([1.0, 2.5]), "categorical",
     r"d\.parquet: row 2: categorical column 'c' must hold integers or strings, got 2.5"),
    (pa.array([1.0, float("inf")]), "categorical",
     r"row 2: categorical column 'c' must hold integers or strings, got inf"),
    (pa.array([[1.0], [2.0]]), "categorical",
     r"categorical column 'c' has type list<.*double>; expected integers"),
    (pa.array([1, 2]), "multi_valued",
     r"multi_valued column 'c' has type int64; expected separator-joined text or a list"),
    (pa.array([[1.5], [2.0]]), "multi_valued",
     r"d\.parquet: multi_valued column 'c': bag elements must be strings or integers, got double"),
    (pa.array([[1], [2]]), "dense",
     r"d\.parquet: column 'c' has type list<.*int64>; expected numbers"),
    (pa.array(["1", "x"]), "dense", r"d\.parquet: row 2: column 'c' must be a number, got 'x'"),
])
def test_parquet_type_errors(tmp_path, column, role, message):
    pq.write_table(pa.table({"y": [1, 0], "k": ["a", "b"], "c": column}), tmp_path / "d.parquet")
    params = ({"categorical": ("k",), role: ("c",)} if role != "categorical"
              else {"categorical": ("c",)})
    with pytest.raises(ValueError, match=message):
        prepare(TableSource.from_params(path=tmp_path / "d.parquet", label="y", **params),
                tmp_path / "p")


def test_parquet_missing_label_names_the_row(tmp_path):
    pq.write_table(pa.table({"y": [1, None, 0], "k": ["a", "b", "c"]}), tmp_path / "d.parquet")
    with pytest.raises(ValueError, match=r"d\.parquet: row 2: label column 'y' is missing"):
        prepare(TableSource.from_params(path=tmp_path / "d.parquet", label="y", categorical=("k",)),
                tmp_path / "p")


@pytest.mark.parametrize(("params", "message"), [
    ({"path": "data.xlsx"},
     r"path must end in one of \['.csv', '.parquet', '.pq', '.tsv'\], or give format \(csv, tsv, "
     r"parquet\); "
     r"got 'data.xlsx'"),
    ({"split": "time"}, r"split must be 'random' or 'sequential', got 'time'"),
    ({"chunk_rows": -1}, r"chunk_rows must be an int >= 1, got -1"),
    ({"label": None},
     r"label must name the label column \(set label, or label: in a schema_file\), got None"),
    ({"categorical": ()},
     r"categorical and multi_valued are both empty; name at least one categorical column"),
    ({"separator": ""}, r"separator must be a non-empty string, got ''"),
    ({"dense": ("user",)}, r"each column may have one role .*; repeated: \['user'\]"),
    ({"val_fraction": 0.6, "test_fraction": 0.4}, r"val_fraction \+ test_fraction must be < 1"),
])
def test_config_errors(params, message):
    full = {"path": "data.csv", "label": "click", "categorical": ("user",), **params}
    with pytest.raises(ValueError, match=message):
        TableConfig(**full)


@pytest.mark.parametrize(("text", "message"), [
    ("label: y\nlabels: [a]\n",
     r"schema\.yaml: unknown key 'labels'; allowed: label, label_threshold, label_equals"),
    ("- label\n", r"schema\.yaml: expected a mapping of label, .*, got list"),
    ("label: [y\n", r"schema\.yaml: not valid YAML"),
    ("label: y\ndense: price\n",
     r"schema\.yaml: dense must be a list of column names, got 'price'"),
    ("label: y\nlabel_threshold: high\n",
     r"schema\.yaml: label_threshold must be a number, got 'high'"),
    ("label: 3\n", r"schema\.yaml: label must be a string, got 3"),
    ("label: other\n",
     r"label is 'click' in the config but 'other' in .*schema\.yaml; set it in one place"),
])
def test_schema_file_errors(tmp_path, text, message):
    schema = tmp_path / "schema.yaml"
    schema.write_text(text)
    with pytest.raises(ValueError, match=message):
        TableConfig(path=Path("data.csv"), schema_file=schema, label="click", categorical=("user",))


def test_unreadable_schema_file(tmp_path):
    with pytest.raises(ValueError,
                       match=r"schema_file '.*nope\.yaml' cannot be read: No such file"):
        TableConfig(path=Path("data.csv"), schema_file=tmp_path / "nope.yaml")


def test_csv_with_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbfclick,user\n1,a\n0,b\n1,c\n0,d\n")
    ds = prepare(TableSource.from_params(path=path, label="click", categorical=("user",),
                                         **TINY_SPLIT), tmp_path / "p")
    assert np.asarray(ds.labels).tolist() == [1, 0, 1, 0]
    assert np.asarray(ds.sparse["user"].values).tolist() == h("a", "b", "c", "d")


LABEL_ROWS = [["income", "k"], [" >50K", "a"], [" <=50K", "b"], [">50K", "a"], ["<=50K", "c"],
              [" <=50K", "b"]]


def test_string_label_with_equals_compares_trimmed_text(tmp_path):
    path = write_csv(tmp_path / "census.csv", LABEL_ROWS)
    ds = prepare(TableSource.from_params(path=path, label="income", label_equals=">50K",
                                         categorical=("k",),
                                         **TINY_SPLIT), tmp_path / "p")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0, 0])


def test_label_in_and_a_schema_file_rule(tmp_path):
    path = write_csv(tmp_path / "census.csv", LABEL_ROWS)
    schema = tmp_path / "schema.yaml"
    schema.write_text('label: income\nlabel_in: [">50K", "<=50K."]\ncategorical: [k]\n')
    ds = prepare(TableSource.from_params(path=path, schema_file=schema, **TINY_SPLIT),
                 tmp_path / "p")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0, 0])


def test_numeric_equals_and_true_false_labels(tmp_path):
    rows = [["grade", "ok", "k"], ["3", "True", "a"], ["2", "false", "b"], ["3.0", "TRUE", "a"],
            ["1", "0", "c"]]
    path = write_csv(tmp_path / "g.csv", rows)
    schema = tmp_path / "schema.yaml"
    schema.write_text("label: grade\nlabel_equals: 3\ncategorical: [k]\n")
    ds = prepare(TableSource.from_params(path=path, schema_file=schema, **TINY_SPLIT),
                 tmp_path / "p")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0])  # 3 and 3.0 are the number 3
    ds = prepare(TableSource.from_params(path=path, label="ok", categorical=("k",), **TINY_SPLIT),
                 tmp_path / "q")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0])


@pytest.mark.parametrize(("rows", "params", "message"), [
    (LABEL_ROWS, {"label_equals": ">50k"},
     r"census\.csv: label_equals '>50k' matches no row of label column 'income', so every label "
     r"would be 0; "
     r"values seen: \['<=50K', '>50K'\]"),
    (LABEL_ROWS, {},
     r"census\.csv:2: label column 'income' must be 0 or 1 \(or true/false\); for other values set "
     r"label_equals, "
     r"label_in or label_threshold, got ' >50K'"),
    (LABEL_ROWS, {"label_threshold": 1.0},
     r"census\.csv:2: column 'income' must be a number, got ' >50K'"),
    ([["income", "k"], [">50K", "a"], ["", "b"]], {"label_equals": ">50K"},
     r"census\.csv:3: label column 'income' is missing"),
])
def test_label_rule_errors_name_file_row_and_value(tmp_path, rows, params, message):
    path = write_csv(tmp_path / "census.csv", rows)
    with pytest.raises(ValueError, match=message):
        prepare(TableSource.from_params(path=path, label="income", categorical=("k",), **params),
                tmp_path / "p")


@pytest.mark.parametrize(("params", "message"), [
    ({"label_equals": "a", "label_threshold": 1.0},
     r"give at most one label rule, got \['label_threshold', 'label_equals'\]"),
    ({"format": "xlsx"},
     r"format must be one of \['csv', 'parquet', 'tsv'\] \(or unset: by suffix\), got 'xlsx'"),
])
def test_label_rule_and_format_config_errors(tmp_path, params, message):
    with pytest.raises(ValueError, match=message):
        TableConfig(path=tmp_path / "d.csv", label="y", categorical=("k",), **params)


def test_format_overrides_the_suffix(tmp_path):
    table = pa.table({"y": pa.array([1, 0, 1, 0]), "k": pa.array(["a", "b", "a", "c"])})
    path = tmp_path / "data.parquet.brotli"
    pq.write_table(table, path, compression="brotli")
    with pytest.raises(ValueError,
                       match=r"path must end in one of .*or give format \(csv, tsv, parquet\)"):
        TableSource.from_params(path=path, label="y", categorical=("k",))
    ds = prepare(TableSource.from_params(path=path, format="parquet", label="y", categorical=("k",),
                                         **TINY_SPLIT),
                 tmp_path / "p")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0])
    text = write_csv(tmp_path / "export.txt",
                     [["y", "k"], ["1", "a"], ["0", "b"], ["1", "a"], ["0", "c"]])
    ds = prepare(TableSource.from_params(path=text, format="csv", label="y", categorical=("k",),
                                         **TINY_SPLIT),
                 tmp_path / "q")
    np.testing.assert_array_equal(np.asarray(ds.labels), [1, 0, 1, 0])
