from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from sweep.datasets import (
    Chunk,
    FeatureSchema,
    PreparedDataError,
    Schema,
    Source,
    SplitSpec,
    get_source,
    load_prepared,
    prepare,
)
from sweep.datasets.columns import NpyAppender
from sweep.datasets.prepared import read_manifest


@dataclass(frozen=True)
class LinesConfig:
    path: Path = field(metadata={"help": "text file, one integer id per line"})
    fail_after_chunks: int = field(default=-1, metadata={"help": "raise after this many chunks "
                                                                 "(tests)"})


class LinesSource(Source):
    """One categorical feature read from a text file: a source whose input is a real file."""

    name = "lines"
    Config = LinesConfig

    def schema(self) -> Schema:
        return Schema(dense=(), features=(FeatureSchema("id"),))

    def split_spec(self) -> SplitSpec:
        return SplitSpec("sequential", 0.2, 0.2)

    def input_files(self) -> list[Path]:
        return [self.config.path]

    def chunks(self):
        ids = np.loadtxt(self.config.path, dtype=np.int64, ndmin=1)
        for index, start in enumerate(range(0, len(ids), 4)):
            if index == self.config.fail_after_chunks:
                raise RuntimeError("simulated crash")
            part = ids[start:start + 4]
            yield Chunk(labels=(part % 2).astype(np.float32),
                        dense=np.zeros((len(part), 0), np.float32),
                        sparse={"id": part})


@pytest.fixture
def lines_file(tmp_path):
    path = tmp_path / "ids.txt"
    path.write_text("\n".join(str(i % 7) for i in range(20)) + "\n")
    return path


def test_npy_appender_round_trip(tmp_path):
    with NpyAppender(tmp_path / "a.npy", np.float32, (3,)) as out:
        out.append(np.ones((2, 3)))
        out.append(np.arange(6).reshape(2, 3))
    loaded = np.load(tmp_path / "a.npy", mmap_mode="r")
    assert loaded.shape == (4, 3) and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded[2:], np.arange(6).reshape(2, 3))
    with pytest.raises(ValueError, match=r"b.npy: chunk has inner shape \(2,\), expected \(3,\)"):
        NpyAppender(tmp_path / "b.npy", np.float32, (3,)).append(np.ones((1, 2)))


def test_reused_when_nothing_changed(lines_file, tmp_path):
    out = tmp_path / "prepared"
    first = prepare(LinesSource(LinesConfig(lines_file)), out)
    manifest_mtime = (out / "manifest.json").stat().st_mtime_ns
    started = time.perf_counter()
    again = prepare(LinesSource(LinesConfig(lines_file)), out)
    assert time.perf_counter() - started < 1.0
    assert (out / "manifest.json").stat().st_mtime_ns == manifest_mtime
    assert again.fingerprint == first.fingerprint
    assert isinstance(again.labels, np.memmap)  # memory-mapped, not copied


def test_rebuilt_when_input_file_or_parameter_changes(lines_file, tmp_path):
    out = tmp_path / "prepared"
    first = prepare(LinesSource(LinesConfig(lines_file)), out)
    lines_file.write_text("\n".join(str(i % 5) for i in range(24)) + "\n")
    changed = prepare(LinesSource(LinesConfig(lines_file)), out)
    assert changed.fingerprint != first.fingerprint and changed.num_rows == 24
    small = prepare(get_source("synthetic", num_rows=100, vocab_sizes=(5,)), tmp_path / "syn")
    other = prepare(get_source("synthetic", num_rows=120, vocab_sizes=(5,)), tmp_path / "syn")
    assert other.num_rows == 120 and other.fingerprint != small.fingerprint


def test_failed_prepare_leaves_no_accepted_cache(lines_file, tmp_path):
    out = tmp_path / "prepared"
    with pytest.raises(RuntimeError, match="simulated crash"):
        prepare(LinesSource(LinesConfig(lines_file, fail_after_chunks=2)), out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ids.txt"]  # temporary removed
    good = prepare(LinesSource(LinesConfig(lines_file)), out)
    assert good.num_rows == 20


def test_killed_prepare_leaves_no_accepted_cache(lines_file, tmp_path):
    """SIGKILL a prepare midway: nothing at --out is accepted, and the next prepare cleans up."""
    out = tmp_path / "prepared"
    script = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_cache import LinesConfig, LinesSource
        from sweep.datasets.store import PreparedWriter
        original = PreparedWriter.append
        def slow_append(self, chunk):
            original(self, chunk)
            print("appended", flush=True)
            time.sleep(30)
        PreparedWriter.append = slow_append
        from sweep.datasets import prepare
        prepare(LinesSource(LinesConfig({str(lines_file)!r})), {str(out)!r})
    """)
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).parents[3])
    try:
        assert proc.stdout.readline().strip() == "appended"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    leftovers = [p for p in tmp_path.iterdir() if p.name.startswith(".prepared.")]
    assert leftovers, "the killed prepare should have left its temporary directory"
    assert not out.exists()
    with pytest.raises(PreparedDataError, match="manifest.json: missing"):
        read_manifest(leftovers[0])
    good = prepare(LinesSource(LinesConfig(lines_file)), out)
    assert good.num_rows == 20
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".prepared.")]


def test_damaged_cache_is_rejected_and_rebuilt(lines_file, tmp_path):
    out = tmp_path / "prepared"
    prepare(LinesSource(LinesConfig(lines_file)), out)
    labels = out / "labels.npy"
    labels.write_bytes(labels.read_bytes()[:-8])
    with pytest.raises(PreparedDataError,
                       match=r"labels.npy: expected \d+ bytes, found \d+; the cache is damaged"):
        load_prepared(out)
    rebuilt = prepare(LinesSource(LinesConfig(lines_file)), out)
    assert rebuilt.num_rows == 20


def test_manifest_errors_are_clear(tmp_path):
    with pytest.raises(PreparedDataError, match="manifest.json: missing"):
        load_prepared(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(PreparedDataError, match="manifest.json: not valid JSON"):
        load_prepared(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps({"format_version": 99}))
    with pytest.raises(PreparedDataError, match="format_version 99, expected 1 or 2; prepare"):
        load_prepared(tmp_path)


def test_missing_input_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match=r"nope.txt: input file for source 'lines' does not exist"):
        prepare(LinesSource(LinesConfig(tmp_path / "nope.txt")), tmp_path / "out")


def test_sequential_split_and_sizes(lines_file, tmp_path):
    data = prepare(LinesSource(LinesConfig(lines_file)), tmp_path / "p")
    np.testing.assert_array_equal(np.asarray(data.split), [0] * 12 + [1] * 4 + [2] * 4)
    assert data.manifest["split_sizes"] == {"train": 12, "val": 4, "test": 4}


@pytest.mark.parametrize(("val", "test", "sizes"),
                         [(0.1, 0.1, [80, 10, 10]), (0.1, 0.5, [40, 10, 50]),
                                                    (0.3, 0.1, [60, 30, 10]),
                          (0.25, 0.25, [50, 25, 25])])
def test_a_sequential_split_honours_each_fraction(val, test, sizes):
    codes = SplitSpec("sequential", val, test).assign(0, 100, 100)
    assert np.bincount(codes, minlength=3).tolist() == sizes
    assert (np.diff(codes) >= 0).all()  # train, then val, then test
