"""A database tracking store read before MLflow opens it: collide writes only into a store that
is MLflow's, and a reading command opens only one that exists, complete and current.

MLflow creates its ~65 tables in any database it is pointed at, and migrates an old schema when
some of its tables are missing. So before any MLflow client touches a sqlite file or an SQL
database, `check_sql_store(uri, create=...)` looks at it read-only:

- a store that does not exist (or an empty database): only a sweep may create it (`create`),
  and for a sqlite file only where its directory is writable; a reading command is refused;
- a database holding any table that is not MLflow's is refused: it is someone else's data;
- a reading command refuses a store whose schema is not this MLflow's (it would have to be
  migrated: `mlflow db upgrade` is the user's call).

Two sweeps that create the same new sqlite store at once would race in MLflow's migrations;
`creating_sqlite_store` serialises the creation with a lock on the store's directory.
"""

from __future__ import annotations

import fcntl
import functools
import os
import re
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from sweep.errors import UserError
from sweep.tracking.uri import redact

__all__ = ["SQL_SCHEMES", "check_sql_store", "creating_sqlite_store", "sqlite_path"]

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mssql")
CREATE_TABLE = re.compile(r"create_table\(\s*[\"']([A-Za-z_0-9]+)[\"']")


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///PATH` URI, None for another scheme; a sqlite URI that
    names no file (`sqlite:///`, or the in-memory `sqlite://`) is a UserError."""
    if urlsplit(uri).scheme.split("+", 1)[0] != "sqlite":
        return None
    path = uri.split(":///", 1)[1] if ":///" in uri else ""
    if not path:
        raise UserError(f"MLflow tracking URI {uri} names no database file (an in-memory store "
                        "keeps nothing); give a file, e.g. sqlite:///mlflow.db")
    return Path(path)


@functools.cache
def _mlflow_tables() -> frozenset[str]:
    """Every table this MLflow's stores are made of: its models' (tracking, model registry, the
    initial schema) and every table a migration of its creates."""
    import mlflow.store.db_migrations
    import mlflow.store.model_registry.dbmodels.models  # noqa: F401 - registers its tables
    import mlflow.store.tracking.dbmodels.models  # noqa: F401
    from mlflow.store.db.base_sql_model import Base
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    tables = set(Base.metadata.tables) | set(InitialBase.metadata.tables)
    for script in (Path(mlflow.store.db_migrations.__file__).parent / "versions").glob("*.py"):
        tables |= set(CREATE_TABLE.findall(script.read_text(encoding="utf-8")))
    return frozenset(tables)


def _current_revision() -> str | None:
    """This MLflow's schema revision (None when this MLflow does not say)."""
    try:
        from mlflow.store.db.utils import _get_latest_schema_revision

        return str(_get_latest_schema_revision())
    except (ImportError, AttributeError):
        return None


def _sqlite_tables(db: Path) -> tuple[set[str], str | None]:
    """(table names, alembic revision) of sqlite file `db`, opened read-only."""
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
            tables = {name for (name,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table'")}
            revision = None
            if "alembic_version" in tables:
                row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
                revision = row[0] if row else None
    except sqlite3.DatabaseError as exc:
        raise UserError(f"{db} is not a SQLite database ({exc}); collide keeps its MLflow store "
                        "in a file of its own") from None
    return tables, revision


def _database_tables(uri: str) -> tuple[set[str], str | None]:
    """(table names, alembic revision) of the SQL database at `uri`, read through SQLAlchemy."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(uri)
    try:
        with engine.connect() as conn:
            tables = set(sqlalchemy.inspect(conn).get_table_names())
            revision = None
            if "alembic_version" in tables:
                row = conn.execute(sqlalchemy.text(
                    "SELECT version_num FROM alembic_version")).first()
                revision = row[0] if row else None
    finally:
        engine.dispose()
    return tables, revision


def check_sql_store(uri: str, *, create: bool) -> None:
    """Refuse (UserError) a database store collide must not open: see the module docstring.
    Other schemes (a tracking server) pass unchecked."""
    scheme = urlsplit(uri).scheme.split("+", 1)[0]
    if scheme not in SQL_SCHEMES:
        return
    db = sqlite_path(uri)
    where = str(db) if db is not None else redact(uri)
    if db is not None and not db.exists():
        tables, revision = set(), None
        if create:
            _check_writable(db.parent, db)
    elif db is not None:
        if not db.is_file():
            raise UserError(f"{db} is not a regular file; the MLflow store must be a SQLite file")
        tables, revision = _sqlite_tables(db)
    else:
        tables, revision = _database_tables(uri)
    if not tables:
        if not create:
            raise UserError(f"there is no MLflow store at {where} yet: nothing to read. Run "
                            "`collide sweep` first, or give the store with --tracking-uri or "
                            "MLFLOW_TRACKING_URI")
        return
    foreign = sorted(t for t in tables - _mlflow_tables()
                     if not t.startswith(("alembic_", "sqlite_")))
    if foreign or "alembic_version" not in tables:
        listed = ", ".join(foreign[:8]) + (", ..." if len(foreign) > 8 else "")
        raise UserError(f"{where} holds tables that are not MLflow's "
                        f"({listed or 'no alembic_version'}): it is not an MLflow store, and "
                        "collide will not add MLflow's tables to someone else's database. Give "
                        "collide a store of its own with --tracking-uri (e.g. sqlite:///mlflow.db "
                        "in another directory)")
    current = _current_revision()
    if not create and current is not None and revision != current:
        raise UserError(f"the MLflow store at {where} has schema {revision}, and this MLflow's is "
                        f"{current}; reading it would migrate it. Back it up and run `mlflow db "
                        "upgrade` yourself, or read it with the MLflow that wrote it")


def _check_writable(directory: Path, db: Path) -> None:
    if not directory.is_dir():
        raise UserError(f"cannot create the MLflow store {db}: directory {directory} does not "
                        "exist")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        raise UserError(f"cannot create the MLflow store {db}: directory {directory} is not "
                        f"writable ({exc.strerror or exc}); run from a writable directory or give "
                        "--tracking-uri") from None


@contextmanager
def creating_sqlite_store(uri: str) -> Iterator[None]:
    """Hold an exclusive lock on the directory of a sqlite store that does not exist yet, for
    the block (MLflow creating its tables); other schemes and existing stores pass through."""
    db = sqlite_path(uri)
    if db is None or (db.is_file() and db.stat().st_size > 0):
        yield
        return
    fd = os.open(db.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
