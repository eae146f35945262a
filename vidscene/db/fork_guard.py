"""Forks wait until this process has no SQLite operation in progress.

SQLite keeps each process's view of its file locks in process memory (per database file, shared by every
connection to it). A child forked while any thread of the parent is inside a transaction inherits that view:
it believes a lock is held "by itself" that it does not hold and nobody will ever release for it, so every
write it tries, even on a brand-new connection, waits out the busy timeout and fails with "database is
locked" (tests/jobs/test_fork_guard.py shows it with plain sqlite3). Celery's prefork pool forks a child for
every stage from the worker process, whose consumer thread polls the SQLite broker and whose reaper thread
writes the job database: a child forked at the wrong moment could neither claim its stage nor send the next
one, and that stage's message was lost. A fork in the middle of SQLite's own code (closing the last
connection, which checkpoints the WAL, say) is worse: the child can hang on a mutex the parent's thread held.

``sqlite_operation()`` brackets each piece of SQLite work, closing included, in a process that forks (the
broker channel's calls, the worker's reaper pass on a SQLite database); ``os.fork`` (billiard's included) then
waits for those in progress to finish and holds new ones back until the child exists. Nested use in one
thread is free.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class ForkGuard:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._forks_waiting = 0
        self._depth = threading.local()

    @contextmanager
    def sqlite_operation(self) -> Iterator[None]:
        depth = getattr(self._depth, "n", 0)
        if depth:  # already counted for this thread: taking the lock again could deadlock a waiting fork
            self._depth.n = depth + 1
            try:
                yield
            finally:
                self._depth.n = depth
            return
        with self._cond:  # held by a fork in progress; a fork waiting goes first (a busy poller would starve it)
            while self._forks_waiting:
                self._cond.wait()
            self._active += 1
        self._depth.n = 1
        try:
            yield
        finally:
            self._depth.n = 0
            with self._cond:
                self._active -= 1
                if not self._active:
                    self._cond.notify_all()

    @property
    def active(self) -> int:
        """Operations in progress (for tests and diagnostics)."""
        return self._active

    def before_fork(self) -> None:
        # A thread forking from inside an operation cannot wait for itself; it forks as before.
        if getattr(self._depth, "n", 0):
            return
        self._cond.acquire()
        self._forks_waiting += 1
        while self._active:
            self._cond.wait()
        self._depth.holding = True

    def after_fork(self) -> None:
        if getattr(self._depth, "holding", False):
            self._depth.holding = False
            self._forks_waiting -= 1
            self._cond.notify_all()
            self._cond.release()

    def after_fork_in_child(self) -> None:
        # Only the forking thread lives on in the child: the others' operations and locks died with them.
        self._cond = threading.Condition(threading.Lock())
        self._active = 0
        self._forks_waiting = 0
        self._depth.holding = False


GUARD = ForkGuard()
os.register_at_fork(before=GUARD.before_fork, after_in_parent=GUARD.after_fork,
                    after_in_child=GUARD.after_fork_in_child)

sqlite_operation = GUARD.sqlite_operation
