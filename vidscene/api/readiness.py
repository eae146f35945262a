"""Whether this API process can do its work: the database, the broker and the store reachable
(``GET /health/ready``). ``/health`` stays the liveness check, true while the process answers at all.

Each check runs in a thread with a deadline, all at once: a broker that does not answer costs the probe
``CHECK_SECONDS``, not a hung request (a thread still blocked in a driver is left to finish on its own).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from functools import partial

import anyio
from sqlalchemy import Engine, text

from vidscene.config import Settings
from vidscene.storage import Storage

logger = logging.getLogger(__name__)

CHECK_SECONDS = 3.0
CHECKS = ("database", "broker", "store")


def database_reachable(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def broker_reachable(url: str) -> None:
    """Connect to the broker the way the senders do (kombu; Celery is never loaded into the API)."""
    from kombu.connection import Connection  # only here: the probe is the API's one use of it

    with Connection(url, connect_timeout=CHECK_SECONDS) as conn:
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=CHECK_SECONDS)


def store_reachable(storage: Storage) -> None:
    """The data dir's folders exist and this process may write them (a lost mount fails here), and with
    ``s3://`` the bucket answers to our credentials."""
    storage.check()
    for folder in (storage.scenes_dir, storage.tmp_dir):
        if not folder.is_dir():
            raise OSError(f"{folder} is missing")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OSError(f"{folder} is not writable")


async def _outcome(name: str, check: Callable[[], None]) -> str:
    """``"ok"`` or why not. The answer is public: it names the kind of failure, the log has the details
    (addresses, driver messages)."""
    try:
        with anyio.fail_after(CHECK_SECONDS + 1):
            await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
    except TimeoutError:
        logger.warning("readiness: %s did not answer", name)
        return f"no answer within {CHECK_SECONDS + 1:.0f} s"
    except Exception as exc:
        logger.warning("readiness: %s unreachable: %s", name, exc)
        return f"unreachable ({type(exc).__name__})"
    return "ok"


async def readiness(settings: Settings, engine: Engine, storage: Storage) -> dict[str, str]:
    """Each part's state: ``"ok"``, or why it is not."""
    checks = {
        "database": partial(database_reachable, engine),
        "broker": partial(broker_reachable, settings.resolved_broker_url),
        "store": partial(store_reachable, storage),
    }
    results: dict[str, str] = {}

    async def run(name: str) -> None:
        results[name] = await _outcome(name, checks[name])

    async with anyio.create_task_group() as group:
        for name in CHECKS:
            group.start_soon(run, name)
    return {name: results[name] for name in CHECKS}
