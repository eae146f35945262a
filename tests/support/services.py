"""The local services tests use, and how a missing one (or another missing prerequisite) is reported."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import MetaData, create_engine, text
from sqlalchemy.engine import make_url

PG_ADMIN_URL = os.environ.get("VIDSCENE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def unavailable(message: str) -> None:
    """A missing prerequisite fails in CI (``make test`` installs it) and skips on a laptop."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def unreachable(what: str, exc: Exception) -> None:
    """In CI a missing service is a failure (``.ci/run`` starts them); on a laptop it is a skip."""
    unavailable(f"{what} is not reachable: {exc}")


@contextmanager
def temporary_postgres_database(prefix: str) -> Iterator[str]:
    """Create a randomly named PostgreSQL database, yield its URL, drop it (even with open connections)."""
    name = f"{prefix}_{secrets.token_hex(6)}"
    # pre-ping: a test may restart the server (tests/e2e/test_scaled_faults.py); the drop reconnects then.
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT", pool_pre_ping=True)
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        unreachable("PostgreSQL", exc)
    try:
        yield make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


class DatabaseEmptier:
    """Empties a migrated PostgreSQL database between tests: every row deleted, child tables first, every
    sequence back at 1 (what ``TRUNCATE ... RESTART IDENTITY CASCADE`` did), in one round trip. On these tiny
    tables that costs 0.01-0.04 s where TRUNCATE, which replaces each table's and index's files, cost 0.5-0.8 s
    on the shared CI machine, and some 370 tests of the default run take a PostgreSQL database."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        metadata = MetaData()
        metadata.reflect(self.engine)
        with self.engine.connect() as conn:
            sequences = list(conn.scalars(text("SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename)"
                                               " FROM pg_sequences")))
        # One round trip: child tables first, then every sequence (names from the database's own catalogue).
        self.statement = "; ".join(
            [f'DELETE FROM "{t.name}"'  # noqa: S608
             for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]
            + [f"SELECT setval('{sequence}', 1, false)" for sequence in sequences])

    def empty(self) -> None:
        with self.engine.begin() as conn:
            conn.exec_driver_sql(self.statement)

    def dispose(self) -> None:
        self.engine.dispose()
