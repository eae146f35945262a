"""The embedded broker: kombu's SQLAlchemy transport on a SQLite file, made safe for a forking worker.

Every call of the channel that touches the database runs inside ``fork_guard.sqlite_operation()``, so the
prefork pool never forks a child while the consumer (or the reaper sending a message) is inside a broker
transaction; see ``vidscene.db.fork_guard`` for what such a child suffered.

kombu's transport never deletes a message it delivered: it marks the row invisible (and stamps it with the
delivery time) and keeps it, so the broker file grew by one row per stage for ever. Unacknowledged messages
live in the consumer's memory and are put back as new rows when it goes away, so a delivered row is needed
by nothing but forensics (``bench/soak_trace.py`` reads it): the channel drops those older than
``KEEP_DELIVERED_SECONDS``, at most once per ``PRUNE_EVERY_SECONDS`` (transport options
``keep_delivered_seconds`` and ``prune_every_seconds`` change both).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import Any

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla

from vidscene.db.fork_guard import sqlite_operation

ALIAS = "vidscene-sqlite"
KEEP_DELIVERED_SECONDS = 3600.0
PRUNE_EVERY_SECONDS = 600.0

logger = logging.getLogger(__name__)


class Channel(kombu_sqla.Channel):
    # kombu sets each of these attributes from the transport option of the same name; its own tuple's inferred
    # type is a pair, which the longer tuple cannot match.
    from_transport_options = (*kombu_sqla.Channel.from_transport_options,  # type: ignore[assignment]
                              "keep_delivered_seconds", "prune_every_seconds")
    keep_delivered_seconds: float = KEEP_DELIVERED_SECONDS
    prune_every_seconds: float = PRUNE_EVERY_SECONDS
    _pruned_at: float | None = None  # monotonic time of this channel's last prune

    def _get(self, queue: Any, *args: Any, **kwargs: Any) -> Any:
        with sqlite_operation():
            try:
                return super()._get(queue, *args, **kwargs)
            finally:
                self._prune_delivered()

    def _prune_delivered(self) -> None:
        """Delete delivered rows older than ``keep_delivered_seconds`` (the consumer polls, so this runs)."""
        now = time.monotonic()
        if self._pruned_at is not None and now - self._pruned_at < self.prune_every_seconds:
            return
        self._pruned_at = now
        # kombu stamps a delivered row with datetime.now() (local, naive): compare in the same clock.
        cutoff = datetime.datetime.now() - datetime.timedelta(seconds=self.keep_delivered_seconds)
        message = self.message_cls
        deleted = (self.session.query(message).filter(message.visible == False)  # noqa: E712  # SQL, not Python
                   .filter(message.sent_at < cutoff).delete(synchronize_session=False))
        self.session.commit()
        if deleted:
            logger.info("broker: delivered messages pruned", extra={"deleted": deleted})

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
