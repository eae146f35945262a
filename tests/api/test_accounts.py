"""Accounts: register, login, rename, password change, deletion; both body encodings and field spellings."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from tests.support.api_client import PASSWORD, Api, ApiFactory
from tests.support.scenes import files_under
from vidscene.db.models import Job, Scene, User

JSON = "json"
FORM = "form"


def send(api: Api, method: str, url: str, body: dict[str, str], encoding: str,
         headers: dict[str, str] | None = None) -> Any:
    if encoding == JSON:
        return api.client.request(method, url, json=body, headers=headers)
    return api.client.request(method, url, data=body, headers=headers)


def count(url: str, model: type[Any]) -> int:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(model)) or 0)
    finally:
        engine.dispose()


@pytest.mark.parametrize("encoding", [JSON, FORM])
def test_register_and_login(api: Api, encoding: str) -> None:
    resp = send(api, "POST", "/user/account/register", {"username": "alice.b-1", "password": PASSWORD}, encoding)
    assert resp.status_code == 201
    assert resp.json() == {"success": True}
    resp = send(api, "POST", "/user/account/login", {"username": "alice.b-1", "password": PASSWORD}, encoding)
    assert resp.status_code == 200
    token = resp.json()["jwtToken"]
    assert api.client.get("/user/scene/history", headers={"Authorization": f"Bearer {token}"}).json() == {
        "resources": []}


@pytest.mark.parametrize(("body", "fragment"), [
    ({"username": "ab", "password": PASSWORD}, "username"),
    ({"username": "a" * 65, "password": PASSWORD}, "username"),
    ({"username": "bad name", "password": PASSWORD}, "username"),
    ({"username": "émile", "password": PASSWORD}, "username"),
    ({"username": "carol", "password": "short"}, "password"),
    ({"username": "carol", "password": "x" * 1025}, "password"),
    ({"password": PASSWORD}, "username"),
    ({"username": "carol"}, "password"),
])
def test_register_rejects_bad_fields(api: Api, body: dict[str, str], fragment: str) -> None:
    resp = api.client.post("/user/account/register", json=body)
    assert resp.status_code == 400
    payload = resp.json()
    assert payload["success"] is False
    assert fragment in payload["error"]


def test_register_accepts_limits(api: Api) -> None:
    assert api.client.post("/user/account/register",
                           json={"username": "a" * 64, "password": "p" * 1024}).status_code == 201
    assert api.client.post("/user/account/register",
                           json={"username": "abc", "password": "p" * 8}).status_code == 201


def test_register_duplicate_is_409(api: Api) -> None:
    api.register("dave")
    resp = api.client.post("/user/account/register", data={"username": "dave", "password": "another password"})
    assert resp.status_code == 409
    assert resp.json() == {"error": "That username is taken.", "success": False}


@pytest.mark.parametrize(("content", "content_type"), [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b"", "application/json"),
    (b"username=a", "text/plain"),
    (b'{"username": 5, "password": "abcdefghij"}', "application/json"),
])
def test_register_malformed_bodies(api: Api, content: bytes, content_type: str) -> None:
    resp = api.client.post("/user/account/register", content=content, headers={"Content-Type": content_type})
    assert resp.status_code == 400
    assert resp.json()["success"] is False
    assert resp.json()["error"]


def test_register_body_too_large(api: Api) -> None:
    resp = api.client.post("/user/account/register", content=b"x" * (65 * 1024),
                           headers={"Content-Type": "application/json"})
    assert resp.status_code == 413
    assert resp.json()["success"] is False


def test_login_failures_do_not_reveal_usernames(api: Api) -> None:
    api.register("erin")
    wrong_password = api.client.post("/user/account/login", json={"username": "erin", "password": "wrong pass"})
    unknown_user = api.client.post("/user/account/login", json={"username": "nobody", "password": "wrong pass"})
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert wrong_password.json() == unknown_user.json() == {"error": "Invalid username or password."}
    assert "success" not in wrong_password.json()


def test_login_rate_limit_per_username(api_factory: ApiFactory) -> None:
    api = api_factory(login_rate_limit="3/minute")
    api.register("frank")
    for _ in range(3):
        assert api.client.post("/user/account/login",
                               json={"username": "frank", "password": "bad guess!"}).status_code == 401
    blocked = api.client.post("/user/account/login", json={"username": "frank", "password": PASSWORD})
    assert blocked.status_code == 429
    assert "error" in blocked.json()
    assert int(blocked.headers["Retry-After"]) >= 1


def test_login_rate_limit_per_client(api_factory: ApiFactory) -> None:
    api = api_factory(login_rate_limit="3/minute")
    api.register("grace")
    for name in ("u1x", "u2x", "u3x"):  # spraying different usernames from one address
        assert api.client.post("/user/account/login",
                               json={"username": name, "password": "bad guess!"}).status_code == 401
    resp = api.client.post("/user/account/login", json={"username": "grace", "password": PASSWORD})
    assert resp.status_code == 429


def test_successful_logins_are_not_limited(api_factory: ApiFactory) -> None:
    api = api_factory(login_rate_limit="2/minute")
    name = api.register()
    for _ in range(4):
        api.login(name)


@pytest.mark.parametrize(("encoding", "field"), [(JSON, "new_username"), (FORM, "newUsername")])
def test_update_username(api: Api, encoding: str, field: str) -> None:
    old, headers = api.user()
    resp = send(api, "PATCH", "/user/account/update/username", {"password": PASSWORD, field: "renamed_user"},
                encoding, headers)
    assert resp.status_code == 200
    assert resp.json() == {"message": "Username updated"}
    api.login("renamed_user")
    assert api.client.post("/user/account/login", json={"username": old, "password": PASSWORD}).status_code == 401
    # the token names the user by id, so it keeps working after a rename
    assert api.client.get("/user/scene/history", headers=headers).status_code == 200


def test_update_username_failures(api: Api) -> None:
    api.register("taken_name")
    _, headers = api.user()
    url = "/user/account/update/username"
    assert api.client.patch(url, json={"password": PASSWORD, "new_username": "taken_name"},
                            headers=headers).status_code == 409
    resp = api.client.patch(url, json={"password": "not my password", "new_username": "free_name"}, headers=headers)
    assert resp.status_code == 401
    assert resp.json() == {"error": "Wrong password."}
    resp = api.client.patch(url, json={"password": PASSWORD, "new_username": "x"}, headers=headers)
    assert resp.status_code == 400
    assert "new_username" in resp.json()["error"]
    resp = api.client.patch(url, json={"password": PASSWORD}, headers=headers)
    assert resp.status_code == 400
    assert "new_username" in resp.json()["error"]
    assert api.client.patch(url, json={"password": PASSWORD, "new_username": "free_name"}).status_code == 401


@pytest.mark.parametrize(("encoding", "old_field", "new_field"), [
    (JSON, "old_password", "new_password"), (FORM, "oldPassword", "newPassword"), (JSON, "oldPassword", "new_password"),
])
def test_update_password(api: Api, encoding: str, old_field: str, new_field: str) -> None:
    name, headers = api.user()
    resp = send(api, "PATCH", "/user/account/update/password",
                {old_field: PASSWORD, new_field: "a brand new secret"}, encoding, headers)
    assert resp.status_code == 200
    assert resp.json() == {"message": "Password updated"}
    # old token revoked, new password really stored, old password refused
    assert api.client.get("/user/scene/history", headers=headers).status_code == 401
    token = api.login(name, "a brand new secret")
    assert api.client.get("/user/scene/history", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert api.client.post("/user/account/login", json={"username": name, "password": PASSWORD}).status_code == 401


def test_update_password_failures(api: Api) -> None:
    _, headers = api.user()
    url = "/user/account/update/password"
    resp = api.client.patch(url, json={"old_password": "wrong one!", "new_password": "whatever123"}, headers=headers)
    assert resp.status_code == 401
    resp = api.client.patch(url, json={"old_password": PASSWORD, "new_password": "short"}, headers=headers)
    assert resp.status_code == 400
    assert "new_password" in resp.json()["error"]
    resp = api.client.patch(url, json={"new_password": "long enough"}, headers=headers)
    assert resp.status_code == 400
    assert "old_password" in resp.json()["error"]
    # nothing changed: the token still works
    assert api.client.get("/user/scene/history", headers=headers).status_code == 200


def test_password_guessing_with_a_token_is_rate_limited(api_factory: ApiFactory) -> None:
    api = api_factory(login_rate_limit="3/minute")
    _, headers = api.user()
    for _ in range(3):
        assert api.client.request("DELETE", "/user/account/delete", json={"password": "guess guess"},
                                  headers=headers).status_code == 401
    assert api.client.request("DELETE", "/user/account/delete", json={"password": PASSWORD},
                              headers=headers).status_code == 429


@pytest.mark.parametrize("encoding", [JSON, FORM])
def test_delete_account_removes_scenes_and_files(api: Api, mp4_bytes: bytes, db_url: str, encoding: str) -> None:
    name, headers = api.user()
    other, other_headers = api.user()
    mine = [api.scene_id(headers, mp4_bytes) for _ in range(2)]
    kept = api.scene_id(other_headers, mp4_bytes)
    scenes_dir = api.settings.data_dir / "scenes"
    assert {p.name for p in scenes_dir.iterdir()} == {*mine, kept}

    assert send(api, "DELETE", "/user/account/delete", {"password": "wrong password"}, encoding,
                headers).status_code == 401
    resp = send(api, "DELETE", "/user/account/delete", {"password": PASSWORD}, encoding, headers)
    assert resp.status_code == 200
    assert resp.json() == {"message": "User deleted"}

    assert {p.name for p in scenes_dir.iterdir()} == {kept}
    assert count(db_url, User) == 1
    assert count(db_url, Scene) == 1
    assert count(db_url, Job) == 1
    assert api.client.get("/user/scene/history", headers=headers).status_code == 401
    assert api.client.post("/user/account/login", json={"username": name, "password": PASSWORD}).status_code == 401
    assert api.client.get("/user/scene/history", headers=other_headers).json() == {"resources": [kept]}
    assert all(kept in str(p) for p in files_under(scenes_dir))
    # the name is free again
    api.register(name)
    assert other


def test_register_crash_is_json_with_success_false(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    from vidscene.api.accounts import service as accounts

    def broken_hash(password: str) -> str:
        raise RuntimeError("hasher exploded")

    monkeypatch.setattr(accounts, "hash_password", broken_hash)
    resp = api.client.post("/user/account/register", json={"username": "henry", "password": PASSWORD})
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal server error.", "success": False}
