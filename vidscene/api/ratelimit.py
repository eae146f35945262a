"""Failed-login throttling, counted per username and per client address.

Per username stops guessing one account from many addresses; per address stops one client spraying many
usernames. Only failures count, so a user who types the right password is never locked out by their own
successful logins. In-memory storage fits the single-process default; pass a ``limits`` storage URI (for
example ``redis://...``) when several API processes must share the counters.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter


class LoginRateLimiter:
    def __init__(self, limit: str, *, storage_uri: str = "memory://") -> None:
        self.item: RateLimitItem = parse(limit)
        self._limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))

    @staticmethod
    def _keys(username: str, client: str) -> tuple[tuple[str, str], tuple[str, str]]:
        return ("login-user", username.casefold()), ("login-client", client)

    def retry_after(self, username: str, client: str) -> int | None:
        """Seconds until another attempt is allowed, or ``None`` when neither counter is exhausted."""
        waits = []
        for key in self._keys(username, client):
            if not self._limiter.test(self.item, *key):
                stats = self._limiter.get_window_stats(self.item, *key)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    def record_failure(self, username: str, client: str) -> None:
        for key in self._keys(username, client):
            self._limiter.hit(self.item, *key)

    def record_success(self, username: str) -> None:
        """Forget the username's failures (the owner proved the password); the client counter stays."""
        user_key, _ = self._keys(username, "")
        self._limiter.clear(self.item, *user_key)
