"""Tokens: forged, tampered, expired, ``alg: none``, wrong secret, revoked; password hashing parameters."""

from __future__ import annotations

import base64
import json
import time

import jwt
import pytest

from tests.support.api_client import PASSWORD, Api
from vidscene.api import security
from vidscene.api.security import TokenCodec

PROTECTED = "/user/scene/history"


def _b64(data: dict[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(token, options={"verify_signature": False})
    return claims


def _status(api: Api, token: str) -> tuple[int, dict[str, str]]:
    resp = api.client.get(PROTECTED, headers={"Authorization": f"Bearer {token}"})
    return resp.status_code, resp.json()


def test_token_claims(api: Api) -> None:
    name = api.register()
    claims = _claims(api.login(name))
    assert set(claims) >= {"sub", "iat", "exp", "ver"}
    assert isinstance(claims["exp"], int)
    assert isinstance(claims["iat"], int)
    assert claims["exp"] - claims["iat"] == api.settings.jwt_lifetime_seconds
    assert jwt.get_unverified_header(api.login(name))["alg"] == "HS256"


def test_missing_and_malformed_authorization(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer"}, {"Authorization": "Basic dXNlcjpwYXNz"},
                    {"Authorization": "Bearer not.a.jwt"}, {"Authorization": "Bearer "}):
        resp = api.client.get(PROTECTED, headers=headers)
        assert resp.status_code == 401, headers
        assert set(resp.json()) == {"error"}
        assert resp.headers["WWW-Authenticate"] == "Bearer"


def test_forged_tokens_are_refused(api: Api) -> None:
    name = api.register()
    token = api.login(name)
    claims = _claims(token)
    header, payload, signature = token.split(".")
    secret = api.settings.jwt_secret

    tampered_payload = _b64({**claims, "sub": str(int(str(claims["sub"])) + 1)})
    tampered = f"{header}.{tampered_payload}.{signature}"
    flipped_sig = f"{header}.{payload}.{signature[:-2]}{'A' if signature[-2] != 'A' else 'B'}{signature[-1]}"
    alg_none = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}."
    wrong_secret = jwt.encode(claims, "another-secret-" + "y" * 60, algorithm="HS256")
    hs512 = jwt.encode(claims, secret, algorithm="HS512")
    expired = jwt.encode({**claims, "iat": int(time.time()) - 100, "exp": int(time.time()) - 10}, secret,
                         algorithm="HS256")
    no_version = jwt.encode({k: v for k, v in claims.items() if k != "ver"}, secret, algorithm="HS256")
    bad_sub = jwt.encode({**claims, "sub": "admin"}, secret, algorithm="HS256")
    old_version = jwt.encode({**claims, "ver": 7}, secret, algorithm="HS256")

    assert _status(api, token)[0] == 200
    for forged in (tampered, flipped_sig, alg_none, wrong_secret, hs512, expired, no_version, bad_sub, old_version):
        code, body = _status(api, forged)
        assert code == 401, forged
        assert set(body) == {"error"}
    assert "expired" in _status(api, expired)[1]["error"]


def test_token_dies_with_password_change_and_account_deletion(api: Api) -> None:
    name, headers = api.user()
    first = headers["Authorization"].split()[1]
    second = api.login(name)
    assert api.client.patch("/user/account/update/password", headers=headers,
                            json={"old_password": PASSWORD, "new_password": "changed password"}).status_code == 200
    assert _status(api, first)[0] == 401
    assert _status(api, second)[0] == 401  # every token issued before the change, not only the one used
    fresh = api.login(name, "changed password")
    assert _status(api, fresh)[0] == 200
    assert api.client.request("DELETE", "/user/account/delete", json={"password": "changed password"},
                              headers={"Authorization": f"Bearer {fresh}"}).status_code == 200
    assert _status(api, fresh)[0] == 401


@pytest.mark.parametrize("route", ["name", "progress", "metadata", "thumbnail", "output/video"])
def test_revoked_token_is_401_on_scene_reads_not_404(api: Api, mp4_bytes: bytes, route: str) -> None:
    """The read routes check revocation inside the scene query: a miss must still tell 401 from 404."""
    name, headers = api.user()
    scene = api.scene_id(headers, mp4_bytes, output_types="video")
    assert api.client.get(f"/user/scene/{route}/{scene}", headers=headers).status_code in (200, 404)
    assert api.client.patch("/user/account/update/password", headers=headers,
                            json={"old_password": PASSWORD, "new_password": "changed password"}).status_code == 200
    resp = api.client.get(f"/user/scene/{route}/{scene}", headers=headers)
    assert resp.status_code == 401
    assert "revoked" in resp.json()["error"]
    fresh = {"Authorization": f"Bearer {api.login(name, 'changed password')}"}
    assert api.client.get(f"/user/scene/{route}/not-a-scene", headers=fresh).status_code == 404


def test_deleted_users_token_does_not_work_for_a_new_account(api: Api) -> None:
    name, headers = api.user()
    token = headers["Authorization"].split()[1]
    assert api.client.request("DELETE", "/user/account/delete", json={"password": PASSWORD},
                              headers=headers).status_code == 200
    # SQLite reuses the highest deleted rowid: the new account very likely gets the same id (same "sub")
    api.register(name)
    new_token = api.login(name)
    assert _status(api, new_token)[0] == 200
    assert _status(api, token)[0] == 401


def test_token_codec_round_trip_and_expiry() -> None:
    codec = TokenCodec(secret="s" * 48, lifetime_seconds=60)
    token = codec.issue(user_id=42, token_version=3)
    claims = codec.decode(token)
    assert (claims.user_id, claims.token_version) == (42, 3)
    old = codec.issue(user_id=42, token_version=3, now=time.time() - 61)
    with pytest.raises(security.InvalidTokenError, match="expired"):
        codec.decode(old)


def test_a_remembered_token_still_expires() -> None:
    codec = TokenCodec(secret="s" * 48, lifetime_seconds=60)
    token = codec.issue(user_id=7, token_version=1, now=time.time() - 59)  # about a second left
    assert codec.decode(token).user_id == 7  # verified once, now remembered
    time.sleep(2.0)
    with pytest.raises(security.InvalidTokenError, match="expired"):
        codec.decode(token)


def test_token_memory_is_bounded_and_keeps_no_failures() -> None:
    codec = TokenCodec(secret="s" * 48, lifetime_seconds=60, remember_at_most=3)
    tokens = [codec.issue(user_id=i, token_version=1) for i in range(5)]
    assert [codec.decode(t).user_id for t in tokens] == list(range(5))
    assert codec.remembered() == frozenset(tokens[2:])  # the oldest went first
    forged = TokenCodec(secret="x" * 48, lifetime_seconds=60).issue(user_id=1, token_version=1)
    for _ in range(2):  # refused every time, not only before it could have been remembered
        with pytest.raises(security.InvalidTokenError):
            codec.decode(forged)
    assert forged not in codec.remembered()


def test_production_password_hash_is_argon2id() -> None:
    security.use_password_hasher(security.production_hasher())  # not the cheap one conftest installs
    digest = security.hash_password(PASSWORD)
    assert digest.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert security.verify_password(PASSWORD, digest)
    assert not security.verify_password("wrong password", digest)
    assert not security.verify_password(PASSWORD, None)
    assert not security.verify_password(PASSWORD, "not-a-hash")


def test_login_counters_shared_through_redis(redis_url: str) -> None:
    """With ``VIDSCENE_RATE_LIMIT_STORAGE=redis://...`` every API process sees the same failed-login counts."""
    import redis as redis_client

    from vidscene.api.ratelimit import LoginRateLimiter

    url = redis_url.rsplit("/", 1)[0] + "/6"
    redis_client.Redis.from_url(url).flushdb()
    first, second = (LoginRateLimiter("3/minute", storage_uri=url) for _ in range(2))
    for _ in range(3):
        first.record_failure("mallory", "10.0.0.1")
    assert second.retry_after("mallory", "10.0.0.1") is not None  # same username and client, other process
    assert second.retry_after("alice", "10.0.0.1") is not None  # that client, spraying another username
    # Since issue 13.7 failures from one client no longer lock the account for everyone: another client
    # meets only the slower per-username back-off (100/hour by default).
    assert second.retry_after("mallory", "10.0.0.9") is None
    assert second.retry_after("alice", "10.0.0.9") is None
    redis_client.Redis.from_url(url).flushdb()
