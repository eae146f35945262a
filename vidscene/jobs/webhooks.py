"""Send the webhook deliveries that are due (``jobs.outbox`` wrote them); a thread in every worker process.

Only workers send: the API process never makes an outgoing request. Any number of workers may run this at
once: each delivery is claimed before it is sent, by one conditional ``UPDATE`` that pushes its
``next_attempt_at`` forward by ``CLAIM_SECONDS``, so two workers never send the same one; a worker that dies
mid-send leaves it to be sent again once the claim runs out.

A delivery is a POST of its JSON body with ``Vidscene-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" keyed with the webhook's secret>``, a 10 s timeout and no redirects followed. A 2xx answer
delivers it, and it is never sent again. Anything else (another status, a timeout, no connection, an address
refused) is retried after 30 s, then 1, 2, 4 ... minutes, at most an hour apart, until 24 h after the event;
then it is given up (``failed``). Each attempt resolves the host again, checks every address
(``webhook_targets``) and connects to the address it checked, keeping the host name in ``Host`` and in TLS
(SNI and certificate check): a name re-pointed at an inside address after the webhook was created (DNS
rebinding) is refused, not followed.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime, timedelta

import httpx
from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from vidscene import webhook_targets
from vidscene.config import Settings
from vidscene.db.fork_guard import sqlite_operation
from vidscene.db.models import DeliveryState, Webhook, WebhookDelivery, utcnow
from vidscene.db.session import write_session

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "Vidscene-Signature"
TIMEOUT_SECONDS = 10.0
CLAIM_SECONDS = 60  # longer than any one send (timeout plus name lookup)
FIRST_RETRY_SECONDS = 30
MAX_RETRY_SECONDS = 3600
GIVE_UP_AFTER = timedelta(hours=24)
BATCH = 20
KEEP_FINISHED = timedelta(days=30)  # delivered and given-up rows are removed after this
PRUNE_EVERY_SECONDS = 3600.0
PENDING = DeliveryState.pending.value

Clock = Callable[[], datetime]
DbGuard = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class Claimed:
    """A delivery this worker may send now, with what sending it needs."""

    id: str
    url: str
    secret: str
    payload: str
    attempts: int  # including this one
    created_at: datetime


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def sign(secret: str, body: str, timestamp: int) -> str:
    """The ``Vidscene-Signature`` value: the timestamp is signed with the body, so a captured request cannot
    be replayed later with a fresh time (receivers reject old ``t``)."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def retry_delay(attempts: int) -> timedelta:
    """How long after its ``attempts``-th failed attempt a delivery is tried again."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(0, attempts - 1), MAX_RETRY_SECONDS))


def due(factory: sessionmaker[Session], now: datetime, limit: int = BATCH) -> list[str]:
    """Ids of pending deliveries whose time has come, the longest waiting first."""
    with factory() as session:
        return list(session.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.state == PENDING, WebhookDelivery.next_attempt_at <= now,
        ).order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id).limit(limit)))


def claim(factory: sessionmaker[Session], delivery_id: str, now: datetime) -> Claimed | None:
    """Take the delivery for this worker (None when another one took it, or it is no longer due)."""
    with write_session(factory) as session:
        result = session.execute(update(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.state == PENDING,
            WebhookDelivery.next_attempt_at <= now,
        ).values(next_attempt_at=now + timedelta(seconds=CLAIM_SECONDS), attempts=WebhookDelivery.attempts + 1))
        if not result.rowcount:  # type: ignore[attr-defined]  # CursorResult has rowcount
            return None
        row = session.execute(select(WebhookDelivery.id, Webhook.url, Webhook.secret, WebhookDelivery.payload,
                                     WebhookDelivery.attempts, WebhookDelivery.created_at)
                              .join(Webhook, Webhook.id == WebhookDelivery.webhook_id)
                              .where(WebhookDelivery.id == delivery_id)).one()
        return Claimed(id=row.id, url=row.url, secret=row.secret, payload=row.payload, attempts=row.attempts,
                       created_at=row.created_at)


def post(http: httpx.Client, claimed: Claimed, *, allow_private: bool, now: datetime) -> Outcome:
    """Send one delivery to the address its host resolves to now, once that address is checked."""
    try:
        target = webhook_targets.parse(claimed.url)
        address = webhook_targets.checked_addresses(target, allow_private=allow_private)[0]
    except webhook_targets.TargetError as exc:
        return Outcome(None, f"Refused: {exc}.")
    url = httpx.URL(claimed.url)
    headers = {"Host": url.netloc.decode("ascii"), "Content-Type": "application/json",
               "User-Agent": "vidscene-webhooks", SIGNATURE_HEADER: sign(claimed.secret, claimed.payload,
                                                                        int(now.timestamp()))}
    extensions = {"sni_hostname": url.raw_host.decode("ascii")} if target.scheme == "https" else {}
    try:
        response = http.post(url.copy_with(host=address), content=claimed.payload.encode("utf-8"), headers=headers,
                             extensions=extensions)
    except httpx.TimeoutException:
        return Outcome(None, f"No answer within {TIMEOUT_SECONDS:g} s.")
    except httpx.HTTPError as exc:
        return Outcome(None, f"Could not deliver: {exc or type(exc).__name__}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(response.status_code, None)
    moved = " (redirects are not followed)" if 300 <= response.status_code < 400 else ""
    return Outcome(response.status_code, f"The receiver answered {response.status_code}{moved}.")


def record(factory: sessionmaker[Session], claimed: Claimed, outcome: Outcome, now: datetime) -> str:
    """Store the attempt's outcome: delivered, retried later, or given up; returns the state it leaves."""
    values: dict[str, object] = {"status_code": outcome.status_code, "last_error": outcome.error}
    if outcome.delivered:
        values.update(state=DeliveryState.delivered.value, delivered_at=now, next_attempt_at=None)
    else:
        retry_at = now + retry_delay(claimed.attempts)
        if retry_at > claimed.created_at + GIVE_UP_AFTER:
            values.update(state=DeliveryState.failed.value, next_attempt_at=None)
        else:
            values.update(next_attempt_at=retry_at)
    with write_session(factory) as session:
        session.execute(update(WebhookDelivery).where(
            WebhookDelivery.id == claimed.id, WebhookDelivery.state == PENDING,
            WebhookDelivery.attempts == claimed.attempts,
        ).values(**values))
    return str(values.get("state", PENDING))


def new_client() -> httpx.Client:
    """No redirects, no proxies from the environment (the connection must go to the checked address)."""
    return httpx.Client(timeout=TIMEOUT_SECONDS, follow_redirects=False, trust_env=False)


def deliver_due(factory: sessionmaker[Session], *, allow_private: bool, http: httpx.Client | None = None,
                clock: Clock = utcnow, db_guard: DbGuard = nullcontext, limit: int = BATCH) -> int:
    """One pass: claim, send and record every due delivery (up to ``limit``); returns how many were sent.

    ``clock`` is the time everywhere (due, claim, signature, retry), so tests can move it; ``db_guard``
    wraps each database step (``fork_guard.sqlite_operation`` in a worker on SQLite), never a request.
    """
    with db_guard():
        ids = due(factory, clock(), limit)
    sent = 0
    with nullcontext(http) if http is not None else new_client() as client:
        for delivery_id in ids:
            with db_guard():
                claimed = claim(factory, delivery_id, clock())
            if claimed is None:
                continue
            outcome = post(client, claimed, allow_private=allow_private, now=clock())
            with db_guard():
                left = record(factory, claimed, outcome, clock())
            sent += 1
            log.info("webhook delivery %s", left if left != PENDING else "will be retried",
                     extra={"delivery": claimed.id, "attempt": claimed.attempts, "status": outcome.status_code,
                            "error": outcome.error})
    return sent


def prune(factory: sessionmaker[Session], now: datetime) -> int:
    """Remove delivered and given-up deliveries older than ``KEEP_FINISHED``."""
    with write_session(factory) as session:
        result = session.execute(delete(WebhookDelivery).where(
            WebhookDelivery.state != PENDING, WebhookDelivery.created_at < now - KEEP_FINISHED))
        return int(result.rowcount)  # type: ignore[attr-defined]  # CursorResult has rowcount


class WebhookSender(threading.Thread):
    """Every ``webhook_poll_seconds``, ``deliver_due``; once an hour, ``prune``. Started by ``vidscene worker``."""

    def __init__(self, factory: sessionmaker[Session], settings: Settings) -> None:
        super().__init__(name="vidscene-webhooks", daemon=True)
        self.factory = factory
        self.settings = settings
        self._stop_event = threading.Event()
        sqlite = settings.resolved_database_url.startswith("sqlite")
        # A worker forks stage processes while this thread runs (see ``vidscene.db.fork_guard``).
        self._guard: DbGuard = sqlite_operation if sqlite else nullcontext

    def run(self) -> None:
        # A client per pass (``deliver_due`` makes one): no idle keep-alive socket for a forked stage process
        # to inherit.
        last_prune = float("-inf")
        while not self._stop_event.is_set():
            try:
                deliver_due(self.factory, allow_private=self.settings.webhook_allow_private, db_guard=self._guard)
                now = utcnow()
                if now.timestamp() - last_prune >= PRUNE_EVERY_SECONDS:
                    with self._guard():
                        prune(self.factory, now)
                    last_prune = now.timestamp()
            except Exception:
                log.warning("webhook pass failed", exc_info=True)
            self._stop_event.wait(self.settings.webhook_poll_seconds)

    def stop(self) -> None:
        self._stop_event.set()
