"""`collide prepare --out DIR` never deletes what collide did not write (issue: an input inside
DIR was deleted, and a user's `.data.backup` beside it vanished)."""

from __future__ import annotations

import json
import resource
import signal
import subprocess
import sys
import textwrap

import pytest

from sweep.cli import main
from sweep.datasets import get_source, prepare
from sweep.outputs import MARKER, OutputDirError

ROWS = ["--num-rows", "400", "--vocab-sizes", "10,50"]


def test_prepare_refuses_a_users_directory_and_leaves_it_alone(tmp_path, capsys):
    out = tmp_path / "data"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["prepare", "synthetic", *ROWS, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"collide: error: --out {out} is not empty and was not written by collide" in err
    assert "Remove it yourself or choose another --out" in err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]  # no staging left behind


def test_prepare_refuses_an_out_that_holds_its_input(tmp_path, capsys):
    data = tmp_path / "shop"
    data.mkdir()
    rows = "".join(f"{(k + 1) % 2},{user}\n" for k, user in enumerate("abcdefghij"))
    (data / "clicks.csv").write_text("label,user\n" + rows)
    argv = ["prepare", "table", "--path", str(data / "clicks.csv"), "--label", "label",
            "--categorical", "user", "--split", "sequential", "--val-fraction", "0.2",
            "--test-fraction", "0.2", "--out", str(data)]
    assert main(argv) == 2
    assert f"--out {data} contains the input file {data / 'clicks.csv'}" in capsys.readouterr().err
    assert (data / "clicks.csv").read_text().startswith("label,user")


def test_rebuild_replaces_only_collides_own_directory(tmp_path):
    out = tmp_path / "data"
    backup = tmp_path / ".data.backup"  # a user's backup right beside --out data
    backup.mkdir()
    (backup / "keep.npy").write_text("precious")
    first = prepare(get_source("synthetic", num_rows=400, vocab_sizes=(10, 50)), out)
    assert json.loads((out / MARKER).read_text())["kind"] == "prepared"
    # params changed: rebuild
    second = prepare(get_source("synthetic", num_rows=500, vocab_sizes=(10, 50)), out)
    assert second.num_rows == 500 != first.num_rows
    assert (backup / "keep.npy").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".data.backup", "data"]
    with pytest.raises(OutputDirError, match="is collide's prepared output, not export"):
        from sweep.outputs import check_replaceable

        check_replaceable(out, "export")


def test_a_killed_prepares_staging_is_removed_when_the_cache_is_reused(tmp_path):
    out = tmp_path / "data"
    prepare(get_source("synthetic", num_rows=400, vocab_sizes=(10, 50)), out)
    script = textwrap.dedent(f"""
        import os, signal
        from sweep.datasets import get_source
        from sweep.datasets.store import PreparedWriter
        original = PreparedWriter.finish
        def die(self, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        PreparedWriter.finish = die
        from sweep.datasets import prepare
        prepare(get_source("synthetic", num_rows=400, vocab_sizes=(10, 50)), {str(out)!r},
                force=True)
    """)
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert killed.returncode == -signal.SIGKILL
    # left by the dead prepare
    assert [p.name for p in tmp_path.iterdir() if ".collide-staging." in p.name]
    prepare(get_source("synthetic", num_rows=400, vocab_sizes=(10, 50)), out)  # reuse, and clean up
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_disk_full_is_a_clear_error_and_leaves_nothing(tmp_path):
    """A write that fails (here: a file-size limit, as a full disk would) ends in exit 2 naming the
    file."""
    script = textwrap.dedent(f"""
        import resource, signal, sys
        # the write fails with EFBIG instead of killing us
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))
        from sweep.cli import main
        sys.exit(main(["prepare", "synthetic", "--num-rows", "20000", "--vocab-sizes", "10,50",
                       "--out", {str(tmp_path / "data")!r}]))
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2, done.stderr
    assert "collide: error: " in done.stderr
    assert "File too large" in done.stderr
    assert "Traceback" not in done.stderr
    assert str(tmp_path) in done.stderr  # names the file it could not write
    assert list(tmp_path.iterdir()) == []
    assert resource.getrlimit(resource.RLIMIT_FSIZE)  # (the limit applied to the child only)


def test_train_out_follows_the_same_rule(tmp_path, capsys):
    out = tmp_path / "trained"
    out.mkdir()
    (out / "metrics.json").write_text("my own metrics")
    assert main(["train", "--out", str(out), "--epochs", "1"]) == 2
    assert f"--out {out} is not empty and was not written by collide" in capsys.readouterr().err
    assert (out / "metrics.json").read_text() == "my own metrics"
