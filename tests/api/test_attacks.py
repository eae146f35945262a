"""What an attack pass got through (issue 13), each reproduced here first: every answer stays a JSON error
with the right status, nothing leaks, and nothing is left behind."""

from __future__ import annotations

import io
import os
import stat
from pathlib import Path

import jwt
import pytest
from PIL import Image
from sqlalchemy.engine import make_url

from tests.support.api_client import PASSWORD, Api
from tests.support.scenes import files_under
from vidscene.api.security import ALGORITHM, TOKEN_VERSION_CLAIM


def _png(size: tuple[int, int] = (1, 1)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(out, format="PNG")
    return out.getvalue()


@pytest.mark.parametrize("field", ["total_iterations", "save_iterations"])
def test_huge_numbers_are_400_and_the_connection_lives_on(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                          field: str) -> None:
    resp = api.new_scene(auth, mp4_bytes, **{field: "9" * 5000})
    assert resp.status_code == 400, resp.text
    assert f"Invalid {field}" in resp.json()["error"]
    assert files_under(api.settings.data_dir / "tmp") == []
    assert api.client.get("/health").status_code == 200


def test_huge_iteration_query_is_400(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    scene = api.scene_id(auth, mp4_bytes)
    resp = api.client.get(f"/user/scene/output/video/{scene}?iteration={'9' * 5000}", headers=auth)
    assert resp.status_code == 400
    assert "iteration" in resp.json()["error"]


@pytest.mark.parametrize("size", [(1, 1), (64, 48)])
def test_a_still_image_is_not_a_video(api: Api, auth: dict[str, str], size: tuple[int, int]) -> None:
    resp = api.new_scene(auth, _png(size), filename="photo.mp4")
    assert resp.status_code == 415, resp.text
    assert "video" in resp.json()["error"]
    assert files_under(api.settings.data_dir) == []


@pytest.mark.parametrize("claims", [{"sub": str(2**63)}, {"sub": str(-(2**63) - 1)}, {TOKEN_VERSION_CLAIM: 2**70},
                                    {TOKEN_VERSION_CLAIM: -(2**70)}, {"sub": "1" * 5000}])
def test_out_of_range_claims_signed_with_the_real_secret_are_401(api: Api, claims: dict[str, object]) -> None:
    payload: dict[str, object] = {"sub": "1", "iat": 1, "exp": 2**40, TOKEN_VERSION_CLAIM: 1, **claims}
    token = jwt.encode(payload, api.settings.jwt_secret, algorithm=ALGORITHM)
    headers = {"Authorization": f"Bearer {token}"}
    for method, path in [("GET", "/user/scene/history"), ("GET", "/user/scene/progress/x"),
                         ("PATCH", "/user/account/update/password")]:
        resp = api.client.request(method, path, headers=headers, json={"old_password": "a" * 8,
                                                                      "new_password": "b" * 8})
        assert resp.status_code == 401, (path, resp.text)
        assert resp.json()["error"]


def test_account_deleted_during_its_upload_is_401_and_leaves_nothing(api: Api, mp4_bytes: bytes) -> None:
    """The account is deleted between the upload's authentication and its insert (simulated by deleting it
    from inside the probe, which runs after the body arrived)."""
    _, auth = api.user()
    from vidscene.api.scenes import service

    real_probe = service.probe

    def probe_then_delete_account(path: Path) -> object:
        info = real_probe(path)
        resp = api.client.request("DELETE", "/user/account/delete", headers=auth, json={"password": PASSWORD})
        assert resp.status_code == 200
        return info

    service_probe = pytest.MonkeyPatch()
    service_probe.setattr(service, "probe", probe_then_delete_account)
    try:
        resp = api.new_scene(auth, mp4_bytes)
    finally:
        service_probe.undo()
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]
    assert files_under(api.settings.data_dir / "scenes") == []
    assert files_under(api.settings.data_dir / "tmp") == []


def test_refused_preflight_is_json(api: Api) -> None:
    resp = api.client.options("/user/scene/history", headers={
        "Origin": "https://app.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "X-Not-Allowed"})
    assert resp.status_code == 400
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json()["error"] == "Disallowed CORS headers."


def test_trailing_slash_redirect_does_not_trust_the_host_header(api: Api, auth: dict[str, str]) -> None:
    resp = api.client.get("/user/scene/history/", headers={**auth, "Host": "evil.example"},
                          follow_redirects=False)
    assert "evil.example" not in resp.headers.get("location", "")
    assert resp.status_code in (307, 404)
    if resp.status_code == 404:
        assert resp.json()["error"]


def test_a_multi_range_with_one_satisfiable_part_is_206(api: Api, auth: dict[str, str], mp4_bytes: bytes,
                                                        db_url: str) -> None:
    from tests.support.scenes import add_output

    scene = api.scene_id(auth, mp4_bytes, output_types="splat_cloud,video", save_iterations="100",
                         total_iterations="200")
    data = os.urandom(5000)
    add_output(api, db_url, scene, "splat_cloud", 200, data)
    resp = api.client.get(f"/user/scene/output/splat_cloud/{scene}", headers={**auth, "Range": "bytes=0-0,999999-"})
    assert resp.status_code == 206, resp.text
    assert resp.headers["content-range"] == "bytes 0-0/5000"
    assert resp.content == data[:1]


def test_head_on_an_output_answers_its_headers(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> None:
    from tests.support.scenes import add_output

    scene = api.scene_id(auth, mp4_bytes, output_types="splat_cloud,video", save_iterations="100",
                         total_iterations="200")
    add_output(api, db_url, scene, "splat_cloud", 200, b"x" * 3000)
    resp = api.client.head(f"/user/scene/output/splat_cloud/{scene}", headers=auth)
    assert resp.status_code == 200
    assert resp.headers["content-length"] == "3000"
    assert resp.headers["accept-ranges"] == "bytes"
    assert resp.content == b""
    assert api.client.head(f"/user/scene/output/splat_cloud/{scene}x", headers=auth).status_code == 404


def test_security_headers(api: Api, auth: dict[str, str]) -> None:
    for resp in (api.client.get("/health"), api.client.get("/user/scene/history", headers=auth),
                 api.client.get("/nowhere")):
        assert resp.headers["x-content-type-options"] == "nosniff"
    name = api.register()
    login = api.client.post("/user/account/login", json={"username": name, "password": PASSWORD})
    assert login.status_code == 200
    assert "no-store" in login.headers["cache-control"]


def test_data_dir_database_and_scene_folders_are_private(api: Api, auth: dict[str, str], mp4_bytes: bytes) -> None:
    """The database holds password hashes and the scenes are people's videos: nobody else on the machine may
    read them (``serve`` and ``worker`` also run with umask 077, so what they write is private too)."""
    data_dir = api.settings.data_dir
    assert stat.S_IMODE(data_dir.stat().st_mode) == 0o700
    database = make_url(api.settings.resolved_database_url).database
    if api.settings.resolved_database_url.startswith("sqlite") and database:
        assert stat.S_IMODE(Path(database).stat().st_mode) == 0o600
    scene = api.scene_id(auth, mp4_bytes)
    for folder in (data_dir / "scenes", data_dir / "scenes" / scene, data_dir / "tmp"):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    for path in (data_dir / "scenes" / scene).rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) & 0o077 == 0, path


def test_bad_fields_before_the_file_are_refused_before_the_body_is_read(api: Api, auth: dict[str, str]) -> None:
    """A real server on loopback: the headers, the fields and the start of a 'multi-GB' file are sent, and
    the 400 must come back while the client still holds the rest of the body."""
    import socket
    import threading

    import uvicorn

    from tests.support.server import free_port

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="warning",
                                           lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = 50
        while not server.started and deadline:
            threading.Event().wait(0.1)
            deadline -= 1
        boundary = "vidsceneboundary"
        fields = {"training_mode": "nerf", "output_types": "video", "total_iterations": "10", "save_iterations": ""}
        head = "".join(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n"
                       for k, v in fields.items())
        head += f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n\r\n"
        announced = 3 * 1024**3
        request = (f"POST /user/scene/new HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {auth['Authorization']}\r\n"
                   f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
                   f"Content-Length: {announced}\r\n\r\n{head}").encode()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(request + b"\0" * (64 * 1024))
            answer = sock.recv(65536).decode("latin-1")
        assert answer.startswith("HTTP/1.1 400"), answer[:200]
        assert "Invalid training_mode" in answer
        assert files_under(api.settings.data_dir / "tmp") == []
    finally:
        server.should_exit = True
        thread.join(timeout=10)
