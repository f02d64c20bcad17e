from __future__ import annotations

import gzip
import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest

from sweep.datasets.cache import prepare
from sweep.datasets.criteo import DENSE_NAMES, MISSING_ID, SPARSE_NAMES, CriteoConfig, CriteoSource


def reference_parse(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Plain-Python DLRM preprocessing, one line at a time: (labels, dense [n, 13], ids [n, 26])."""
    labels, dense, ids = [], [], []
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        assert len(fields) == 40
        labels.append(float(fields[0]))
        dense.append([math.log1p(max(int(f), 0)) if f else 0.0 for f in fields[1:14]])
        ids.append([int(f, 16) if f else MISSING_ID for f in fields[14:]])
    return np.array(labels, np.float32), np.array(dense).astype(np.float32), np.array(ids, np.int64)


def read_all(source: CriteoSource) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    chunks = list(source.chunks())
    ids = np.stack([np.concatenate([c.sparse[name] for c in chunks]) for name in SPARSE_NAMES],
                   axis=1)
    return np.concatenate([c.labels for c in chunks]), np.concatenate(
        [c.dense for c in chunks]), ids


def source(path: Path, **params) -> CriteoSource:
    return CriteoSource.from_params(path=path, progress=False, **params)


def broken_copy(sample: Path, tmp_path: Path, line_number: int, edit) -> Path:
    lines = sample.read_text().splitlines(keepends=True)
    fields = lines[line_number - 1].rstrip("\n").split("\t")
    lines[line_number - 1] = edit(fields) + "\n"
    out = tmp_path / "broken.txt"
    out.write_text("".join(lines))
    return out


def test_sample_prepares_with_exact_values(criteo_sample, tmp_path):
    ds = prepare(source(criteo_sample, chunk_rows=37), tmp_path / "p")
    assert ds.num_rows == 200
    assert list(ds.manifest["dense"]) == list(DENSE_NAMES) and ds.feature_names == list(
        SPARSE_NAMES)
    dense, c = np.asarray(ds.dense), {name: np.asarray(ds.sparse[name].values)
                                      for name in SPARSE_NAMES}
    # line 1: "0 <empty> 3 260 <empty> 17668 ... I12=0 ... C1=05db9164 ... C19 empty ...
    # C21=0429f84b"
    assert ds.labels[0] == 0.0
    assert dense[0, 0] == 0.0  # I1 empty
    assert dense[0, 1] == np.float32(math.log1p(3)) and dense[0, 2] == np.float32(math.log1p(260))
    assert dense[0, 4] == np.float32(math.log1p(17668)) and dense[0, 11] == 0.0  # I12 = "0"
    assert c["C1"][0] == int("05db9164", 16) == 0x05DB9164
    assert c["C19"][0] == MISSING_ID and c["C26"][0] == MISSING_ID  # empty categoricals
    assert c["C21"][0] == int("0429f84b", 16)
    # line 2: I2 = -1 -> 0 -> log1p(0) = 0; I3 = 19; C1 = 68fd1e64
    assert dense[1, 1] == 0.0 and dense[1, 2] == np.float32(math.log1p(19))
    assert c["C1"][1] == int("68fd1e64", 16)
    labels, ref_dense, ref_ids = reference_parse(criteo_sample)
    np.testing.assert_array_equal(np.asarray(ds.labels), labels)
    np.testing.assert_array_equal(dense, ref_dense)
    np.testing.assert_array_equal(np.stack([c[name] for name in SPARSE_NAMES], axis=1), ref_ids)
    assert ds.manifest["report"] == {"lines": 200, "skipped_lines": 0, "skipped_examples": []}


@pytest.mark.parametrize("workers", [1, 3])
def test_chunking_and_threads_do_not_change_the_result(criteo_sample, workers):
    expected = read_all(source(criteo_sample, chunk_rows=1 << 16))
    got = read_all(source(criteo_sample, chunk_rows=7, workers=workers))
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_gzip_input_gives_the_same_arrays(criteo_sample, tmp_path):
    packed = tmp_path / "train.bin"  # detected by magic bytes, not by name
    packed.write_bytes(gzip.compress(criteo_sample.read_bytes()))
    for a, b in zip(read_all(source(criteo_sample)), read_all(source(packed, chunk_rows=11)),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_sequential_split_puts_train_first(criteo_sample, tmp_path):
    ds = prepare(source(criteo_sample, split="sequential"), tmp_path / "p")
    split = np.asarray(ds.split)
    assert (np.diff(split) >= 0).all()
    assert ds.manifest["split_sizes"] == {"train": 160, "val": 20, "test": 20}


BREAKAGES = [
    (lambda f: "\t".join(f[:-1]), r"has 39 tab-separated fields, expected 40"),
    (lambda f: "\t".join(["2", *f[1:]]), r"label must be 0 or 1, got '2'"),
    (lambda f: "\t".join([*f[:3], "1.5", *f[4:]]),
     r"I3 must be an integer of at most 16 digits, got '1.5'"),
    (lambda f: "\t".join([*f[:3], "-", *f[4:]]),
     r"I3 must be an integer of at most 16 digits, got '-'"),
    (lambda f: "\t".join([*f[:16], "05db91zz", *f[17:]]),
     r"C3 must be 1 to 16 hex digits or empty, got '05db91zz'"),
    (lambda f: "\t".join([*f[:16], "1" * 17, *f[17:]]),
     r"C3 must be 1 to 16 hex digits or empty, got '1{17}'"),
    (lambda f: "\t".join([*f[:16], "05\x01b9164", *f[17:]]),
     r"has a control character, expected 40"),
]


@pytest.mark.parametrize(("edit", "message"), BREAKAGES)
def test_malformed_line_names_file_and_line(criteo_sample, tmp_path, edit, message):
    path = broken_copy(criteo_sample, tmp_path, 57, edit)
    with pytest.raises(ValueError,
                       match=rf"^{re.escape(str(path))}:57: malformed Criteo line: {message}"):
        read_all(source(path, chunk_rows=16, workers=2))


def test_skip_malformed_counts_reports_and_warns(criteo_sample, tmp_path, caplog):
    path = broken_copy(criteo_sample, tmp_path, 5, lambda f: "\t".join(["x", *f[1:]]))
    lines = path.read_text().splitlines(keepends=True)
    lines[149] = "only\tthree\tfields\n"
    path.write_text("".join(lines))
    with caplog.at_level(logging.WARNING, logger="sweep.datasets.criteo"):
        ds = prepare(source(path, skip_malformed=True, chunk_rows=32), tmp_path / "p")
    assert ds.num_rows == 198
    report = ds.manifest["report"]
    assert report["lines"] == 200 and report["skipped_lines"] == 2
    assert report["skipped_examples"][0].startswith(f"{path}:5: label must be 0 or 1")
    assert report["skipped_examples"][1].startswith(f"{path}:150: has 3 tab-separated fields")
    assert f"{path}:150" in caplog.text and "skipped 2 malformed line(s) of 200" in caplog.text
    labels, _, ids = reference_parse(criteo_sample)
    keep = np.setdiff1d(np.arange(200), [4, 149])
    np.testing.assert_array_equal(np.asarray(ds.labels), labels[keep])
    np.testing.assert_array_equal(np.asarray(ds.sparse["C7"].values), ids[keep, 6])


def test_edge_values(tmp_path):
    def line(label="1", dense=("",) * 13, ids=("",) * 26) -> str:
        return "\t".join([label, *dense, *ids])

    ids = ["ffffffffffffffff", "7FFFFFFFFFFFFFFF", "ABCDEF12", "a", "123456789", "0", *[""] * 20]
    dense = ["9999999999999999", "-0", "-12345678901", "0000000000000042", "123456789", *[""] * 8]
    path = tmp_path / "edge.txt"
    path.write_text(line() + "\n" + line("0", dense, ids))  # no final newline
    labels, got_dense, got_ids = read_all(source(path))
    np.testing.assert_array_equal(labels, [1.0, 0.0])
    assert (got_ids[0] == MISSING_ID).all() and (got_dense[0] == 0).all()
    assert got_ids[1, :6].tolist() == [-1, 2**63 - 1, 0xABCDEF12, 10, 0x123456789, 0]
    expected = np.array([math.log1p(9999999999999999), 0, 0, math.log1p(42),
                         math.log1p(123456789)]).astype(np.float32)
    np.testing.assert_array_equal(got_dense[1, :5], expected)


def test_text_after_a_long_field_is_still_aligned(tmp_path):
    long_line = "\t".join(["1", "1" * 17, *[""] * 12, *["ab"] * 26])
    path = tmp_path / "long.txt"
    path.write_text(long_line + "\n")
    with pytest.raises(ValueError,
                       match=r"long\.txt:1: malformed Criteo line: I1 must be an integer"):
        read_all(source(path))


@pytest.mark.parametrize(("params", "message"), [
    ({"split": "daily"}, r"split must be 'random' or 'sequential', got 'daily'"),
    ({"chunk_rows": 0}, r"chunk_rows must be an int >= 1, got 0"),
    ({"workers": 0}, r"workers must be an int >= 1, got 0"),
    ({"val_fraction": 1.5}, r"val_fraction must be in \(0, 1\), got 1.5"),
])
def test_config_errors(params, message):
    with pytest.raises(ValueError, match=message):
        CriteoConfig(path=Path("train.txt"), **params)


def test_input_files_and_extra_files(criteo_sample, tmp_path):
    copy = tmp_path / "day_1"
    copy.write_bytes(criteo_sample.read_bytes())
    src = source(criteo_sample, extra_files=(str(copy),))
    assert src.input_files() == [criteo_sample, copy]
    labels, _, _ = read_all(src)
    assert len(labels) == 400 and src.report()["lines"] == 400


def test_options_that_cannot_change_the_output_keep_the_cache(criteo_sample, tmp_path):
    first = prepare(source(criteo_sample, workers=1, chunk_rows=50), tmp_path / "p")
    again = prepare(source(criteo_sample, workers=2, chunk_rows=7), tmp_path / "p")
    assert again.fingerprint == first.fingerprint
    assert prepare(source(criteo_sample, seed=1), tmp_path / "p").fingerprint != first.fingerprint


def test_crlf_line_endings_give_the_same_arrays(criteo_sample, tmp_path):
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(criteo_sample.read_bytes().replace(b"\n", b"\r\n"))
    assert b"\r\n" in crlf.read_bytes()
    for got, want in zip(read_all(source(crlf)), read_all(source(criteo_sample)), strict=True):
        np.testing.assert_array_equal(got, want)
    stray = tmp_path / "stray.txt"
    lines = criteo_sample.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b"\t", b"\r\t", 1)  # a CR inside a line is still malformed
    stray.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"stray\.txt:3: malformed Criteo line"):
        read_all(source(stray))
