"""Stores collide did not create: a reading command never creates, migrates or writes one, and a
sweep refuses a database that holds someone else's tables. Real sqlite files and real MLflow."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from sweep.cli import main


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _users_db(path: Path) -> Path:
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE mydata (id INTEGER PRIMARY KEY, value TEXT)")
        conn.execute("INSERT INTO mydata (value) VALUES ('mine')")
    return path


@pytest.mark.parametrize("command", [["pareto"], ["report", "--out", "r"],
                                     ["export", "--max-bytes", "1e9", "--out", "e"], ["ui"]])
def test_a_reading_command_leaves_a_users_sqlite_file_as_it_was(tmp_path, capsys, monkeypatch,
                                                               command):
    monkeypatch.chdir(tmp_path)
    db = _users_db(tmp_path / "mlflow.db")
    before = _digest(db)
    code = main([command[0], "--experiment", "x", *command[1:], "--tracking-uri",
                 f"sqlite:///{db}"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"{db} holds tables that are not MLflow's (mydata)" in err
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_a_reading_command_in_an_empty_directory_creates_no_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["pareto", "--experiment", "x"]) == 2
    assert f"there is no MLflow store at {tmp_path / 'mlflow.db'} yet" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_refuses_a_database_with_other_tables_before_any_work(tmp_path, capsys,
                                                                       monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = _users_db(tmp_path / "mlflow.db")
    before = _digest(db)
    assert main(["sweep", "--preset", "smoke", "--tracking-uri", f"sqlite:///{db}"]) == 2
    assert "holds tables that are not MLflow's (mydata)" in capsys.readouterr().err
    assert _digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]  # no data was prepared


def test_a_reading_command_does_not_migrate_an_older_store(tmp_path, capsys):
    db = tmp_path / "mlflow.db"
    MlflowClient(f"sqlite:///{db}").search_experiments()  # a store of this MLflow
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'an-older-one'")
    before = _digest(db)
    assert main(["pareto", "--experiment", "x", "--tracking-uri", f"sqlite:///{db}"]) == 2
    assert "has schema an-older-one" in capsys.readouterr().err
    assert _digest(db) == before


@pytest.mark.parametrize("uri", ["sqlite:///", "sqlite://"])
def test_a_sqlite_uri_without_a_file_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                                uri):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert main(["sweep", "--preset", "smoke"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"MLflow tracking URI {uri} names no database file" in err
    assert list(tmp_path.iterdir()) == []


def test_a_sweep_in_a_read_only_directory_says_so(tmp_path):
    if subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare --mount is not permitted here (needs root or user namespaces)")
    launch = tmp_path / "ro"
    launch.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    script = ('mount --bind "$0" "$0" && mount -o remount,ro,bind "$0" && cd "$0" && '
              'exec "$@"')
    done = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script,
                           str(launch), sys.executable, "-m", "sweep.cli", "sweep", "--preset",
                           "smoke"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stdout + done.stderr
    assert (f"cannot create the MLflow store {launch / 'mlflow.db'}: directory {launch} is not "
            "writable (Read-only file system)") in done.stderr
    assert "did not answer" not in done.stderr


CREATE = """
import sys
from sweep.errors import UserError
from sweep.tracking.store import check_tracking_uri
try:
    check_tracking_uri(sys.argv[1], create=True)
except UserError as exc:
    sys.exit(f"refused: {exc}")
"""


def test_first_sweeps_started_together_share_the_new_store(tmp_path):
    """Two sweeps started at once in a new directory both create "the" store: MLflow's own
    migrations would race (an alembic error for one of them) without collide's lock."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    starts = [subprocess.Popen([sys.executable, "-c", CREATE, uri], stderr=subprocess.PIPE,
                               text=True)
              for _ in range(3)]
    errors = [process.communicate(timeout=120)[1] for process in starts]
    assert [process.returncode for process in starts] == [0, 0, 0], errors
    assert MlflowClient(uri).search_experiments()  # one store, complete
