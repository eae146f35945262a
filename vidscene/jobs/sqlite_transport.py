"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, made safe for a forking worker.

Every call of the channel that touches the database runs inside ``fork_guard.sqlite_operation()``, so the
prefork pool never forks a child while the consumer (or the reaper sending a message) is inside a broker
transaction; see ``vidscene.db.fork_guard`` for what such a child suffered.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla

from vidscene.db.fork_guard import sqlite_operation

ALIAS = "vidscene-sqlite"


class Channel(kombu_sqla.Channel):
    def _get(self, queue: Any, *args: Any, **kwargs: Any) -> Any:
        with sqlite_operation():
            return super()._get(queue, *args, **kwargs)

    def _put(self, queue: Any, *args: Any, **kwargs: Any) -> Any:
        with sqlite_operation():
            return super()._put(queue, *args, **kwargs)

    def _new_queue(self, queue: str, **kwargs: Any) -> None:
        with sqlite_operation():
            super()._new_queue(queue, **kwargs)

    def _purge(self, queue: str) -> int:
        with sqlite_operation():
            return int(super()._purge(queue))

    def _size(self, queue: str) -> int:
        with sqlite_operation():
            return int(super()._size(queue))


class Transport(kombu_sqla.Transport):
    Channel = Channel


TRANSPORT_ALIASES[ALIAS] = f"{__name__}:Transport"
