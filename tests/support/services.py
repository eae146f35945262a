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
    """Empties a migrated PostgreSQL database between tests: every row deleted child tables first, every
    sequence back at 1 (what ``TRUNCATE ... RESTART IDENTITY CASCADE`` did). On these tiny tables DELETE costs
    about 10 ms where TRUNCATE, which replaces each table's and index's files, cost 0.1-0.5 s on the shared CI
    machine, and the API suite empties the database for some 360 tests."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_engine(url)
        metadata = MetaData()
        metadata.reflect(self.engine)
        self.tables = [t for t in reversed(metadata.sorted_tables) if t.name != "alembic_version"]
        with self.engine.connect() as conn:
            self.sequences = list(conn.scalars(text("SELECT schemaname || '.' || sequencename FROM pg_sequences")))

    def empty(self) -> None:
        with self.engine.begin() as conn:
            for table in self.tables:
                conn.execute(table.delete())
            for sequence in self.sequences:
                conn.execute(text("SELECT setval(:seq, 1, false)"), {"seq": sequence})

    def dispose(self) -> None:
        self.engine.dispose()
