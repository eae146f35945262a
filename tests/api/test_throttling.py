"""Password guessing cannot be turned into a lock-out of the owner, registrations are limited per client,
and behind a trusted proxy the client is the one it forwarded for (issue 13.7)."""

from __future__ import annotations

import pytest

from tests.support.api_client import PASSWORD, Api, ApiFactory
from vidscene.api.ratelimit import LoginRateLimiter


def _login(api: Api, username: str, password: str, client: str) -> int:
    resp = api.client.post("/user/account/login", json={"username": username, "password": password},
                           headers={"X-Forwarded-For": client})
    if resp.status_code == 429:
        assert int(resp.headers["Retry-After"]) >= 1
    return int(resp.status_code)


@pytest.fixture
def proxied(api_factory: ApiFactory) -> Api:
    return api_factory(login_rate_limit="3/minute", login_username_rate_limit="6/hour", forwarded_allow_ips="*")


def test_guesses_from_elsewhere_do_not_lock_the_owner_out(proxied: Api) -> None:
    proxied.register("frank")
    assert _login(proxied, "frank", PASSWORD, "10.0.0.1") == 200  # the owner's usual client
    for attacker in ("203.0.113.7", "203.0.113.8"):
        for _ in range(3):
            assert _login(proxied, "frank", "bad guess!", attacker) == 401
        assert _login(proxied, "frank", PASSWORD, attacker) == 429  # that attacker is stopped
    # six failures: the per-username back-off now holds every client that never logged in to frank ...
    assert _login(proxied, "frank", PASSWORD, "198.51.100.1") == 429
    # ... but not the owner's client, whose right password still works
    assert _login(proxied, "frank", PASSWORD, "10.0.0.1") == 200


def test_usernames_are_counted_as_stored(proxied: Api) -> None:
    """Usernames are case-sensitive; the throttle must not merge 'Frank' into 'frank'."""
    proxied.register("frank")
    proxied.register("Frank")
    for _ in range(3):
        assert _login(proxied, "Frank", "bad guess!", "203.0.113.9") == 401
    assert _login(proxied, "frank", PASSWORD, "198.51.100.2") == 200


def test_forwarded_for_is_ignored_without_a_trusted_proxy(api_factory: ApiFactory) -> None:
    api = api_factory(login_rate_limit="3/minute")
    api.register("gina")
    for n in range(3):  # a client rotating X-Forwarded-For is still one client
        assert _login(api, "gina", "bad guess!", f"203.0.113.{n}") == 401
    assert _login(api, "gina", PASSWORD, "203.0.113.99") == 429


def test_registrations_are_limited_per_client(api_factory: ApiFactory) -> None:
    api = api_factory(register_rate_limit="3/hour", forwarded_allow_ips="*")
    for n in range(3):
        resp = api.client.post("/user/account/register", json={"username": f"reg{n}", "password": PASSWORD},
                               headers={"X-Forwarded-For": "203.0.113.50"})
        assert resp.status_code == 201
    resp = api.client.post("/user/account/register", json={"username": "reg9", "password": PASSWORD},
                           headers={"X-Forwarded-For": "203.0.113.50"})
    assert resp.status_code == 429
    assert resp.json() == {"error": "Too many new accounts from this address; try again later.", "success": False}
    assert int(resp.headers["Retry-After"]) >= 1
    other = api.client.post("/user/account/register", json={"username": "reg9", "password": PASSWORD},
                            headers={"X-Forwarded-For": "198.51.100.50"})
    assert other.status_code == 201


def test_limiter_remembers_the_owners_client_only_after_a_success() -> None:
    limiter = LoginRateLimiter("2/minute", username_limit="2/hour")
    for client in ("a", "b"):
        limiter.record_failure("u", client)
    assert limiter.retry_after("u", "owner") is not None  # unknown client: the username back-off applies
    limiter.record_success("u", "a")
    assert limiter.retry_after("u", "a") is None  # known now, and its own failures forgotten
    assert limiter.retry_after("u", "owner") is not None
