"""Ownership of output directories: collide replaces only what it wrote (sweep.outputs)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from sweep.outputs import (
    MARKER,
    OutputDirError,
    _host,
    check_replaceable,
    remove_stale_staging,
    replace_dir,
    staging_dir,
    write_marker,
    write_owned_files,
)


def _users_dir(path):
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    return path


def test_a_users_directory_is_refused_and_survives(tmp_path):
    out = _users_dir(tmp_path / "out")
    with pytest.raises(OutputDirError,
                       match=rf"--out {out} is not empty and was not written by collide"):
        check_replaceable(out, "export")
    assert (out / "notes.txt").read_text() == "mine"


def test_missing_empty_and_own_directories_are_allowed(tmp_path):
    check_replaceable(tmp_path / "new", "export")
    (tmp_path / "empty").mkdir()
    check_replaceable(tmp_path / "empty", "export")
    own = tmp_path / "own"
    own.mkdir()
    (own / "export.json").write_text("{}")
    write_marker(own, "export")
    check_replaceable(own, "export")
    with pytest.raises(OutputDirError, match="is collide's export output, not prepared"):
        check_replaceable(own, "prepared")


def test_the_working_directory_and_its_parents_are_refused(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mlflow.db").write_text("precious")
    monkeypatch.chdir(work)
    for target in (work, tmp_path):
        with pytest.raises(OutputDirError, match="is the working directory or one of its parents"):
            check_replaceable(target, "export")
    assert (work / "mlflow.db").read_text() == "precious"


def test_an_input_inside_the_output_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.csv").write_text("label\n1\n")
    write_marker(data, "prepared")  # even collide's own directory
    with pytest.raises(OutputDirError, match=r"contains the input file .*train.csv"):
        check_replaceable(data, "prepared", inputs=[data / "train.csv"])


def test_a_file_is_not_a_directory(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputDirError, match="is a file, not a directory"):
        check_replaceable(tmp_path / "f", "train")


def test_replace_is_atomic_and_leaves_no_staging(tmp_path):
    target = tmp_path / "out"
    for generation in ("one", "two"):
        staging = staging_dir(target)
        (staging / "value.txt").write_text(generation)
        replace_dir(staging, target, "train")
        assert (target / "value.txt").read_text() == generation
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / MARKER).is_file()


def test_stale_staging_is_removed_but_a_users_lookalike_is_not(tmp_path):
    target = tmp_path / "data"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = _host()
    stale = tmp_path / f".data.collide-staging.{host}-{dead.pid}.abcd1234"
    stale.mkdir()
    write_marker(stale, "collide-staging")
    # a prepare still running here
    live = tmp_path / f".data.collide-staging.{host}-{os.getpid()}.abcd1234"
    live.mkdir()
    write_marker(live, "collide-staging")
    # same name shape, no marker
    unmarked = tmp_path / f".data.collide-staging.{host}-{dead.pid}.ffff0000"
    unmarked.mkdir()
    # another host, shared disk
    elsewhere = tmp_path / f".data.collide-staging.0123abcd-{dead.pid}.abcd1234"
    elsewhere.mkdir()
    write_marker(elsewhere, "collide-staging")
    backup = tmp_path / ".data.backup"  # a user's own backup next to --out data
    backup.mkdir()
    (backup / "keep.txt").write_text("keep")
    assert remove_stale_staging(target) == [stale]
    assert live.is_dir() and unmarked.is_dir() and elsewhere.is_dir()
    assert (backup / "keep.txt").read_text() == "keep"


def test_owned_files_never_overwrite_a_users_file(tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    (results / "README.md").write_text("my notes")
    written = write_owned_files(results, "pareto", {"pareto.csv": lambda p: p.write_text("a,b\n")})
    assert written["pareto.csv"].read_text() == "a,b\n"
    # ours: replaced
    write_owned_files(results, "pareto", {"pareto.csv": lambda p: p.write_text("c,d\n")})
    assert (results / "pareto.csv").read_text() == "c,d\n"
    (results / "pareto.md").write_text("the user's own")
    with pytest.raises(OutputDirError,
                       match=r"already holds pareto.md, which collide did not write there"):
        write_owned_files(results, "pareto", {"pareto.md": lambda p: p.write_text("ours")})
    assert (results / "pareto.md").read_text() == "the user's own"
    assert (results / "README.md").read_text() == "my notes"


def test_a_failed_writer_leaves_the_old_file(tmp_path):
    write_owned_files(tmp_path, "pareto", {"pareto.csv": lambda p: p.write_text("old")})

    def broken(path):
        path.write_text("half")
        raise OSError(28, "No space left on device", str(path))

    with pytest.raises(OSError, match="No space left"):
        write_owned_files(tmp_path, "pareto", {"pareto.csv": broken})
    assert (tmp_path / "pareto.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [MARKER, "pareto.csv"]


def test_a_symlinked_output_is_refused(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    write_marker(real, "export")
    (tmp_path / "link").symlink_to(real)
    with pytest.raises(OutputDirError, match="is a symbolic link"):
        check_replaceable(tmp_path / "link", "export")
    with pytest.raises(OutputDirError, match="is not a plain directory"):
        write_owned_files(tmp_path / "link", "pareto", {"pareto.csv": lambda p: p.write_text("x")})


def test_files_put_into_the_output_while_collide_worked_are_not_deleted(tmp_path):
    target = tmp_path / "out"
    target.mkdir()  # empty when the command starts
    check_replaceable(target, "train")
    staging = staging_dir(target)
    (target / "precious.txt").write_text("added by the user meanwhile")
    with pytest.raises(OutputDirError, match="is not empty and was not written by collide"):
        replace_dir(staging, target, "train")
    assert (target / "precious.txt").read_text() == "added by the user meanwhile"


def test_owned_files_are_claimed_before_writing_and_retired_only_when_ours(tmp_path):
    results = tmp_path / "results"

    def fail(path):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        write_owned_files(results, "report", {"a.csv": lambda p: p.write_text("a"), "b.csv": fail})
    # a.csv was written before the failure, so the marker names it; b.csv was never written, so it
    # does not
    assert "a.csv" in (results / MARKER).read_text() and "b.csv" not in (
        results / MARKER).read_text()
    write_owned_files(results, "report",
                      {"a.csv": lambda p: p.write_text("a2"), "b.csv": lambda p: p.write_text("b")})
    assert (results / "a.csv").read_text() == "a2"
    (results / "mine.csv").write_text("the user's")
    write_owned_files(results, "report", {"a.csv": lambda p: p.write_text("a3")},
                      retire=("b.csv", "mine.csv"))
    assert not (results / "b.csv").exists()  # collide's, no longer written: removed
    assert (results / "mine.csv").read_text() == "the user's"  # not collide's: left alone
    assert "b.csv" not in (results / MARKER).read_text()
