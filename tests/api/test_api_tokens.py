"""Personal API tokens on SQLite and PostgreSQL: made, listed and revoked with the login token only; each
scene route takes a token whose scopes allow it and refuses one that lacks the scope (403 naming it);
revocation, expiry and a password change end a token at once; only a hash of the secret is stored."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest
from sqlalchemy import select, update

from tests.support.api_client import PASSWORD, Api
from tests.support.scenes import add_output, open_db
from tests.support.uploads import create as tus_create
from tests.support.uploads import patch as tus_patch
from vidscene.api.deps import LOGIN_ONLY
from vidscene.api.tokens.schemas import Scope
from vidscene.catalogue import API_SCOPES
from vidscene.db.models import ApiToken, Base, utcnow
from vidscene.storage import Storage

READ, WRITE = "scenes:read", "scenes:write"


def make_token(api: Api, auth: dict[str, str], *scopes: str, name: str = "script",
               **extra: Any) -> dict[str, Any]:
    resp = api.client.post("/user/tokens", headers=auth, json={"name": name, "scopes": list(scopes), **extra})
    assert resp.status_code == 201, resp.text
    body: dict[str, Any] = resp.json()
    return body


def bearer(token: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token['token']}"}


def lacks(resp: Any, scope: str) -> None:
    assert resp.status_code == 403, resp.text
    assert resp.json() == {"error": f"This token lacks the {scope} scope"}


def test_scopes_match_the_catalogue() -> None:
    assert list(get_args(Scope)) == list(API_SCOPES)


def test_create_list_revoke(api: Api, auth: dict[str, str]) -> None:
    made = make_token(api, auth, WRITE, READ, READ, name="  nightly backup  ", expires_in_days=30)
    assert made["token"].startswith("vst_") and len(made["token"]) >= 4 + 43
    assert made["name"] == "nightly backup" and made["scopes"] == [READ, WRITE]
    assert made["expires_at"] is not None and made["last_used_at"] is None
    lasting = make_token(api, auth, READ)
    assert lasting["expires_at"] is None and lasting["token"] != made["token"]

    listed = api.client.get("/user/tokens", headers=auth).json()["tokens"]
    assert [t["id"] for t in listed] == [made["id"], lasting["id"]]
    assert set(listed[0]) == {"id", "name", "scopes", "created_at", "expires_at", "last_used_at"}
    assert made["token"] not in json.dumps(listed)

    _, other = api.user()
    assert api.client.delete(f"/user/tokens/{made['id']}", headers=other).status_code == 404
    assert api.client.get("/user/tokens", headers=other).json() == {"tokens": []}
    assert api.client.get("/user/scene/history", headers=bearer(made)).status_code == 200
    assert api.client.delete(f"/user/tokens/{made['id']}", headers=auth).status_code == 200
    refused = api.client.get("/user/scene/history", headers=bearer(made))  # at once, no cache
    assert refused.status_code == 401 and "revoked" in refused.json()["error"]
    assert api.client.delete(f"/user/tokens/{made['id']}", headers=auth).status_code == 404
    assert [t["id"] for t in api.client.get("/user/tokens", headers=auth).json()["tokens"]] == [lasting["id"]]


@pytest.mark.parametrize(("body", "field"), [
    ({"name": "", "scopes": [READ]}, "name"),
    ({"name": "   ", "scopes": [READ]}, "name"),
    ({"name": "x" * 101, "scopes": [READ]}, "name"),
    ({"scopes": [READ]}, "name"),
    ({"name": "a", "scopes": []}, "scopes"),
    ({"name": "a", "scopes": ["admin"]}, "scopes"),
    ({"name": "a", "scopes": "scenes:read"}, "scopes"),
    ({"name": "a", "scopes": [READ], "expires_in_days": 0}, "expires_in_days"),
    ({"name": "a", "scopes": [READ], "expires_in_days": 3651}, "expires_in_days"),
])
def test_invalid_requests_name_the_field(api: Api, auth: dict[str, str], body: dict[str, Any], field: str) -> None:
    resp = api.client.post("/user/tokens", headers=auth, json=body)
    assert resp.status_code == 400
    assert field in resp.json()["error"]


def test_a_read_token_reads_everything_and_changes_nothing(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                           db_url: str) -> None:
    scene = api.scene_id(auth, mp4_bytes, output_types="splat_cloud,video", save_iterations="100",
                         total_iterations="200")
    add_output(api, db_url, scene, "splat_cloud", 200, bytes(range(256)) * 8)
    Storage(api.settings.data_dir).scene(scene).thumbnail.write_bytes(b"\xff\xd8\xff\xd9")
    token = bearer(make_token(api, auth, READ))
    for path in ("/user/scene/history", f"/user/scene/progress/{scene}", f"/user/scene/metadata/{scene}",
                 f"/user/scene/name/{scene}", f"/user/scene/metrics/{scene}", f"/user/scene/thumbnail/{scene}",
                 f"/user/scene/output/splat_cloud/{scene}", f"/user/scene/shares/{scene}"):
        assert api.client.get(path, headers=token).status_code == 200, path
    assert api.client.get(f"/user/scene/capture/{scene}", headers=token).status_code == 404  # not written yet
    part = api.client.get(f"/user/scene/output/splat_cloud/{scene}?iteration=200",
                          headers={**token, "Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == bytes(range(10))
    assert api.client.head(f"/user/scene/output/splat_cloud/{scene}", headers=token).status_code == 200

    lacks(api.new_scene(token, mp4_bytes), WRITE)
    lacks(tus_create(api, token, len(mp4_bytes)), WRITE)
    lacks(api.client.patch(f"/user/scene/name/{scene}", headers=token, json={"name": "x"}), WRITE)
    lacks(api.client.post(f"/user/scene/retry/{scene}", headers=token, json={}), WRITE)
    lacks(api.client.post(f"/user/scene/share/{scene}", headers=token), WRITE)
    lacks(api.client.delete(f"/user/scene/share/{scene}/abc", headers=token), WRITE)
    lacks(api.client.delete(f"/user/scene/delete/{scene}", headers=token), WRITE)
    assert api.client.get(f"/user/scene/name/{scene}", headers=auth).status_code == 200  # still there


def test_a_write_token_uploads_by_multipart_and_tus(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    token = bearer(make_token(api, auth, WRITE))
    first = api.new_scene(token, mp4_bytes)
    assert first.status_code == 202, first.text
    created = tus_create(api, token, len(mp4_bytes))
    assert created.status_code == 201, created.text
    url = created.headers["Location"]
    assert api.client.head(url, headers={**token, "Tus-Resumable": "1.0.0"}).status_code == 200
    done = tus_patch(api, token, url, 0, mp4_bytes)
    assert done.status_code == 204, done.text
    second = done.headers["Upload-Scene-Id"]
    history = api.client.get("/user/scene/history", headers=auth).json()["resources"]
    assert history == [first.json()["id"], second]

    lacks(api.client.get(f"/user/scene/progress/{second}", headers=token), READ)
    lacks(api.client.get(f"/user/scene/output/video/{second}", headers=token), READ)
    renamed = api.client.patch(f"/user/scene/name/{second}", headers=token, json={"name": "From a script"})
    assert renamed.status_code == 200
    assert api.client.post(f"/user/scene/share/{second}", headers=token).status_code == 201
    assert api.client.delete(f"/user/scene/delete/{second}", headers=token).status_code == 200
    assert api.client.get("/user/scene/history", headers=auth).json()["resources"] == [first.json()["id"]]


def test_no_token_reaches_the_account_tokens_or_webhooks(api: Api, auth: dict[str, str]) -> None:
    made = make_token(api, auth, READ, WRITE)
    token = bearer(made)
    calls = [
        ("GET", "/user/tokens", None), ("POST", "/user/tokens", {"name": "more", "scopes": [READ]}),
        ("DELETE", f"/user/tokens/{made['id']}", None),
        ("GET", "/user/webhooks", None), ("POST", "/user/webhooks", {"url": "http://x/", "events": ["scene.done"]}),
        ("DELETE", "/user/webhooks/abc", None), ("GET", "/user/webhooks/abc/deliveries", None),
        ("PATCH", "/user/account/update/password", {"old_password": PASSWORD, "new_password": "another password"}),
        ("PATCH", "/user/account/update/username", {"password": PASSWORD, "new_username": "renamed"}),
        ("DELETE", "/user/account/delete", {"password": PASSWORD}),
    ]
    for method, path, body in calls:
        resp = api.client.request(method, path, headers=token, json=body)
        assert resp.status_code == 403, (method, path, resp.text)
        assert resp.json() == {"error": LOGIN_ONLY}
    assert api.client.get("/user/tokens", headers=auth).json()["tokens"][0]["id"] == made["id"]
    assert api.client.get("/user/scene/history", headers=token).status_code == 200


def test_only_the_hash_is_stored(api: Api, auth: dict[str, str], db_url: str) -> None:
    made = make_token(api, auth, READ)
    secret = made["token"]
    with open_db(db_url) as session:
        stored = session.scalars(select(ApiToken)).one()
        assert stored.token_hash == hashlib.sha256(secret.encode()).hexdigest()
        dumped = [json.dumps([list(map(str, row)) for row in session.execute(select(table))])
                  for table in Base.metadata.sorted_tables]
    assert not any(secret in dump or secret[4:] in dump for dump in dumped)
    if db_url.startswith("sqlite"):  # the file itself, and its write-ahead log
        path = Path(db_url.removeprefix("sqlite:///"))
        for file in (path, path.with_name(path.name + "-wal")):
            assert not file.exists() or secret[4:].encode() not in file.read_bytes()


def test_expired_token_is_401(api: Api, auth: dict[str, str], db_url: str) -> None:
    made = make_token(api, auth, READ, expires_in_days=1)
    assert api.client.get("/user/scene/history", headers=bearer(made)).status_code == 200
    with open_db(db_url) as session:
        session.execute(update(ApiToken).values(expires_at=utcnow() - timedelta(seconds=1)))
        session.commit()
    resp = api.client.get("/user/scene/history", headers=bearer(made))
    assert resp.status_code == 401 and resp.json() == {"error": "The API token has expired."}
    assert resp.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/user/scene/history", headers={"Authorization": "Bearer vst_forged"}).status_code == 401


def test_password_change_and_account_deletion_end_tokens(api: Api, auth: dict[str, str]) -> None:
    made = make_token(api, auth, READ)
    resp = api.client.patch("/user/account/update/password", headers=auth,
                            json={"old_password": PASSWORD, "new_password": "a new password"})
    assert resp.status_code == 200
    assert api.client.get("/user/scene/history", headers=bearer(made)).status_code == 401

    name, auth2 = api.user()
    second = make_token(api, auth2, READ, WRITE)
    assert api.client.request("DELETE", "/user/account/delete", headers=auth2,
                              json={"password": PASSWORD}).status_code == 200
    assert api.client.get("/user/scene/history", headers=bearer(second)).status_code == 401
    assert name


def test_last_used_is_written_at_most_once_a_minute(api: Api, auth: dict[str, str], db_url: str) -> None:
    made = make_token(api, auth, READ)

    def last_used() -> Any:
        with open_db(db_url) as session:
            return session.scalar(select(ApiToken.last_used_at))

    assert last_used() is None
    assert api.client.get("/user/scene/history", headers=bearer(made)).status_code == 200
    first = last_used()
    assert first is not None
    for _ in range(3):
        api.client.get("/user/scene/history", headers=bearer(made))
    assert last_used() == first
    with open_db(db_url) as session:  # a minute later
        session.execute(update(ApiToken).values(last_used_at=first - timedelta(seconds=61)))
        session.commit()
    api.client.get("/user/scene/history", headers=bearer(made))
    assert last_used() >= first
    listed = api.client.get("/user/tokens", headers=auth).json()["tokens"][0]
    assert listed["last_used_at"] is not None
