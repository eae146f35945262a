"""Engine and session factory that behave the same on SQLite (embedded default) and PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 30_000
# As many pooled SQLite connections as the API has worker threads (anyio's default limit), so 200 polling
# clients do not open and close an overflow connection, with its PRAGMAs, on most requests. They are opened
# only when that many are in use at once, and cost little: the file is local and shared.
SQLITE_POOL_SIZE = 40


def normalise_url(url: str) -> str:
    """Use psycopg 3 for ``postgresql://`` URLs (SQLAlchemy would otherwise pick psycopg2)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str, **kwargs: Any) -> Engine:
    url = normalise_url(url)
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database not in (None, "", ":memory:"):
            _create_private(Path(database))
            if "poolclass" not in kwargs:
                kwargs.setdefault("pool_size", SQLITE_POOL_SIZE)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
                               **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _create_private(path: Path) -> None:
    """Create the SQLite file owner-only before SQLite does (it would use the umask, 0644 by default); its
    ``-wal`` and ``-shm`` files take the same mode. The file holds the password hashes, so one of ours
    found readable by others is tightened.

    An existing file is never opened here: SQLite's locks are POSIX advisory locks, and closing *any*
    descriptor of the file drops every lock this process holds on it, so an engine already connected in
    this process (``serve`` makes several) would silently lose its locks and, with them, writes.
    """
    if not path.parent.is_dir():
        return  # SQLite will say so when it connects
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | getattr(os, "O_CLOEXEC", 0), 0o600))
        return
    except FileExistsError:
        pass
    status = path.stat()
    if status.st_uid == os.geteuid() and status.st_mode & 0o077:  # made by an older version: tighten it
        path.chmod(0o600)


def _configure_sqlite(engine: Engine) -> None:
    """WAL lets the API read while a worker writes; foreign keys make deletes cascade as on PostgreSQL.

    pysqlite's own transaction handling is switched off so that ``BEGIN IMMEDIATE`` (see ``write_session``)
    really takes the write lock up front instead of failing later with "database is locked".
    """

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # ``sqlite_begin=None`` (see ``read_connection``): no BEGIN, each statement is its own transaction.
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        if mode is not None:
            conn.exec_driver_sql(f"BEGIN {mode}")


def read_connection(engine: Engine) -> Connection:
    """A connection for reads that are one statement each, used as a context manager.

    On SQLite it opens no transaction (a single statement is consistent on its own), which saves the BEGIN
    and ROLLBACK round trips of every poll; elsewhere it is a plain connection.
    """
    return engine.connect().execution_options(sqlite_begin=None)


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def write_session(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session for read-modify-write work: ``BEGIN IMMEDIATE`` on SQLite, committed on success.

    On PostgreSQL callers use ``SELECT ... FOR UPDATE`` (``with_for_update()``) for the rows they change.
    """
    session = factory()
    try:
        if session.get_bind().dialect.name == "sqlite":
            session.connection(execution_options={"sqlite_begin": "IMMEDIATE"})
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
