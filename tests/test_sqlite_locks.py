"""Making a second engine on the SQLite file must not drop the locks a first one holds in this process.

SQLite's locks are POSIX advisory locks: closing any descriptor of the file releases all of the process's
locks on it. ``serve`` builds several engines; an earlier ``make_engine`` opened and closed the file to
set its mode, so another process could then write (or delete the WAL) under a transaction that believed
it held the write lock, and commits were lost."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text

from vidscene.db.session import make_engine

WRITER = (
    "import sqlite3, sys\n"
    "c = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
    "c.execute('INSERT INTO t VALUES (2)')\n"
    "c.close()\n"  # its last connection: SQLite deletes the WAL if it thinks nobody else has the file open
)
READER = "import sqlite3, sys; print(sorted(r[0] for r in sqlite3.connect(sys.argv[1]).execute('SELECT x FROM t')))"


def _python(code: str, db: Path) -> str:
    done = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_a_second_engine_keeps_the_first_ones_locks(tmp_path: Path) -> None:
    db = tmp_path / "vidscene.db"
    first = make_engine(f"sqlite:///{db}")
    try:
        with first.connect() as conn:  # held open all along, like the reaper's pooled connection
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
            conn.commit()
            make_engine(f"sqlite:///{db}").dispose()  # what serve does for its app after the reaper's
            _python(WRITER, db)
            assert Path(f"{db}-wal").exists(), "another process took the database for unused and dropped the WAL"
            conn.execute(text("INSERT INTO t VALUES (3)"))
            conn.commit()
        assert _python(READER, db) == "[2, 3]"
    finally:
        first.dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_an_old_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "vidscene.db"
    db.touch()
    os.chmod(db, 0o644)
    make_engine(f"sqlite:///{db}").dispose()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
