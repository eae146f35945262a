"""Throttles for password guessing and for registrations.

Failed logins are counted per (username, client) and per client: one client guessing one account, or
spraying many, is stopped after ``limit`` failures. A guesser spread over many addresses meets a slower,
per-username back-off (``username_limit``) that applies only to clients that never logged in to that
account: the owner's own client, once it has logged in successfully, is never locked out by failures made
elsewhere (an attacker can no longer make the owner's right password 429 everywhere). Only failures count,
so successful logins are never throttled.

Usernames are counted exactly as stored (they are case-sensitive: ``Frank`` and ``frank`` are two accounts).
In-memory storage fits the single-process default; a ``limits`` storage URI (``redis://...``) lets several
API processes share the counters.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, RateLimitItemPerDay, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

# A client that logged in to an account is remembered for this long as one of the owner's.
KNOWN_CLIENT = RateLimitItemPerDay(1, 30)


class LoginRateLimiter:
    def __init__(self, limit: str, *, username_limit: str = "100/hour", storage_uri: str = "memory://") -> None:
        self.item: RateLimitItem = parse(limit)
        self.username_item: RateLimitItem = parse(username_limit)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def _known(self, username: str, client: str) -> bool:
        return not self._limiter.test(KNOWN_CLIENT, "login-known", username, client)

    def _checks(self, username: str, client: str) -> list[tuple[RateLimitItem, tuple[str, ...]]]:
        checks: list[tuple[RateLimitItem, tuple[str, ...]]] = [
            (self.item, ("login-pair", username, client)),
            (self.item, ("login-client", client)),
        ]
        if not self._known(username, client):
            checks.append((self.username_item, ("login-user", username)))
        return checks

    def _wait(self, item: RateLimitItem, key: tuple[str, ...]) -> int | None:
        if self._limiter.test(item, *key):
            return None
        stats = self._limiter.get_window_stats(item, *key)
        return max(1, math.ceil(stats.reset_time - time.time()))

    def retry_after(self, username: str, client: str) -> int | None:
        """Seconds until this client may try this username again, or ``None`` when it may now."""
        waits = [w for item, key in self._checks(username, client) if (w := self._wait(item, key)) is not None]
        return max(waits) if waits else None

    def record_failure(self, username: str, client: str) -> None:
        self._limiter.hit(self.item, "login-pair", username, client)
        self._limiter.hit(self.item, "login-client", client)
        self._limiter.hit(self.username_item, "login-user", username)

    def record_success(self, username: str, client: str) -> None:
        """The owner proved the password from ``client``: forget this pair's failures and remember the client
        (the per-client and per-username counts stay: they guard other accounts and other clients)."""
        self._limiter.clear(self.item, "login-pair", username, client)
        if not self._known(username, client):
            self._limiter.hit(KNOWN_CLIENT, "login-known", username, client)


class RegistrationRateLimiter:
    """Registrations per client: each costs an Argon2id hash (64 MiB, tens of ms of CPU), so an open
    register route would be a memory and CPU drain."""

    def __init__(self, limit: str, *, storage_uri: str = "memory://") -> None:
        self.item: RateLimitItem = parse(limit)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    def acquire(self, client: str) -> int | None:
        """Count one registration attempt; the seconds to wait when the client is over its limit."""
        if self._limiter.hit(self.item, "register-client", client):
            return None
        stats = self._limiter.get_window_stats(self.item, "register-client", client)
        return max(1, math.ceil(stats.reset_time - time.time()))
