"""A process forked during a SQLite transaction cannot write the file; forks wait for such work (issue 13.13)."""

from __future__ import annotations

import os
import signal
import sqlite3
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

import pytest
from kombu import Connection, Queue
from sqlalchemy.orm import Session, sessionmaker

from tests.support.scenes import add_scene
from vidscene.config import Settings
from vidscene.db.fork_guard import GUARD, sqlite_operation
from vidscene.db.models import Stage
from vidscene.jobs import state
from vidscene.jobs.celery_app import broker_url
from vidscene.jobs.reaper import Reaper


def _cpu_queue(connection: Connection) -> Queue:
    """The ``cpu`` queue on ``connection``'s channel, declared, as a worker's consumer reads it."""
    queue = Queue("cpu", routing_key="cpu")(connection.default_channel)
    queue.declare()
    return queue


def _child_writes(path: Path) -> bool:
    """Fork; the child opens a new connection and writes once (1 s busy timeout). True if it could."""
    pid = os.fork()
    if pid == 0:
        signal.alarm(10)  # a child that inherited a lock held mid-operation may hang instead of failing
        try:
            conn = sqlite3.connect(path, isolation_level=None, timeout=1)
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES ('child')")
            conn.execute("COMMIT")
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize("guarded", [False, True])
def test_a_fork_during_a_write_transaction(tmp_path: Path, guarded: bool) -> None:
    path = tmp_path / "db.sqlite"
    setup = sqlite3.connect(path, isolation_level=None)
    setup.execute("PRAGMA journal_mode=WAL")
    setup.execute("CREATE TABLE t (who TEXT)")
    setup.close()
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        guard: AbstractContextManager[Any] = sqlite_operation() if guarded else nullcontext()
        conn = sqlite3.connect(path, isolation_level=None, timeout=5, check_same_thread=False)
        with guard:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t VALUES ('parent')")
            holding.set()
            release.wait(0.3)  # the fork below is asked for while this transaction is open
            conn.execute("COMMIT")
            conn.close()  # SQLite work too: the last connection to close checkpoints the WAL under a lock

    thread = threading.Thread(target=writer)
    thread.start()
    assert holding.wait(5)
    ok = _child_writes(path)
    thread.join()
    # Unguarded, the child inherited the parent's in-memory lock state: its own new connection waits for a
    # lock that nobody holds any more and fails with "database is locked". Guarded, the fork waited.
    assert ok is guarded
    assert GUARD.active == 0


def test_children_forked_while_the_embedded_broker_is_polled_can_publish(tmp_path: Path) -> None:
    """What the worker does: its consumer polls the SQLite broker while the pool forks a child per stage,
    and each child sends the next stage's message. With kombu's own transport 17 of 30 such children could
    not publish (measured); the embedded broker's channel makes the fork wait for the poll in progress."""
    broker = broker_url(Settings(data_dir=tmp_path))
    assert broker.startswith("vidscene-sqlite+sqlite:")
    options = {"connect_args": {"timeout": 1}}
    consumer = Connection(broker, transport_options=options)
    producer = Connection(broker, transport_options=options)
    polling = _cpu_queue(consumer)
    publishing = producer.Producer()
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            try:
                if polling.get(no_ack=True) is None:
                    time.sleep(0.001)
            except Exception:  # a poll that fails only slows this loop down
                time.sleep(0.001)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    failures = 0
    try:
        for n in range(8):
            pid = os.fork()
            if pid == 0:
                signal.alarm(10)
                try:
                    publishing.publish(n, routing_key="cpu")
                    os._exit(0)
                except BaseException:
                    os._exit(1)
            _, status = os.waitpid(pid, 0)
            failures += os.waitstatus_to_exitcode(status) != 0
    finally:
        stop.set()
        thread.join(5)
        consumer.release()
        producer.release()
    assert failures == 0


def test_the_reaper_pass_holds_forks_back_on_sqlite_only(factory: sessionmaker[Session], tmp_path: Path) -> None:
    """The worker's reaper writes the job database and sends messages while the pool forks: on SQLite each pass
    is one guarded operation; on PostgreSQL a stalled server must not hold the pool's forks back."""
    job = add_scene(factory, "scene-reaped")
    assert state.claim(factory, job, Stage.frames, "gone:1", 0, max_attempts=3) is not None  # lease expires now
    url = str(factory.kw["bind"].url)
    seen: list[int] = []
    reaper = Reaper(factory, Settings(data_dir=tmp_path, database_url=url),
                    lambda _job, _stage: seen.append(GUARD.active), worker_queues=["cpu"])
    assert reaper.run_once() == 1
    assert seen == ([1] if url.startswith("sqlite") else [0])
    assert GUARD.active == 0


def test_the_embedded_broker_drops_delivered_messages_after_an_hour(tmp_path: Path) -> None:
    """kombu keeps every delivered message as an invisible row; the broker file grew by a row per stage."""
    from vidscene.jobs import sqlite_transport

    connection = Connection(broker_url(Settings(data_dir=tmp_path)))
    try:
        queue = _cpu_queue(connection)
        channel = connection.default_channel
        assert isinstance(channel, sqlite_transport.Channel)
        producer = connection.Producer()

        def next_payload() -> object:
            return queue.get(no_ack=True).payload

        for n in range(3):
            producer.publish(n, routing_key="cpu")
        assert next_payload() == 0 and next_payload() == 1
        message = channel.message_cls
        assert channel.session.query(message).filter(message.visible == False).count() == 2  # noqa: E712
        next_payload()  # within PRUNE_EVERY_SECONDS of the last prune, and the rows are new: all kept
        assert channel.session.query(message).count() == 3

        channel.keep_delivered_seconds = channel.prune_every_seconds = 0.0  # also transport options
        producer.publish(3, routing_key="cpu")
        assert next_payload() == 3  # the oldest waiting one; then the delivered ones go
        assert channel.session.query(message).count() == 0
        producer.publish(4, routing_key="cpu")
        producer.publish(5, routing_key="cpu")
        assert next_payload() == 4
        assert [m.visible for m in channel.session.query(message)] == [True]  # a waiting message is never pruned
        assert next_payload() == 5
    finally:
        connection.release()
