"""The output route's direct lane (scenes.outputs.OutputRoute) answers exactly like FastAPI's dependency
solving does, or leaves the answer to it."""

from __future__ import annotations

import os

import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from tests.support.api_client import PASSWORD, Api
from tests.support.scenes import add_output
from vidscene.api.auth import get_caller
from vidscene.api.deps import SessionReleasingRoute
from vidscene.api.errors import NotAuthenticatedError
from vidscene.api.scenes.outputs import OutputRoute

MiB = 1024 * 1024


@pytest.fixture
def chunked(api: Api, auth: dict[str, str], mp4_bytes: bytes, db_url: str) -> tuple[str, bytes]:
    scene = api.scene_id(auth, mp4_bytes, output_types="splat_cloud,video", save_iterations="100",
                         total_iterations="200")
    data = os.urandom(2 * MiB + 77)
    add_output(api, db_url, scene, "splat_cloud", 100, data)
    add_output(api, db_url, scene, "splat_cloud", 200, data[::-1])
    return scene, data


def answer(api: Api, method: str, url: str, headers: dict[str, str]) -> tuple[int, list[tuple[str, str]], bytes]:
    resp = api.client.request(method, url, headers=headers)
    body, content_type = resp.content, resp.headers.get("content-type", "")
    if content_type.startswith("multipart/byteranges; boundary="):  # random per answer
        boundary = content_type.rpartition("=")[2]
        body = body.replace(boundary.encode(), b"BOUNDARY")
        content_type = "multipart/byteranges; boundary=BOUNDARY"
    kept = sorted((k, content_type if k == "content-type" else v)
                  for k, v in resp.headers.items() if k not in ("date", "server"))
    return resp.status_code, kept, body


CASES: list[tuple[str, str, dict[str, str]]] = [
    # (path after /user/scene/output/, query, extra headers)
    ("splat_cloud/{id}", "?iteration=100", {"Range": "bytes=0-1048575"}),
    ("splat_cloud/{id}", "?iteration=100", {"Range": "bytes=2097152-"}),
    ("splat_cloud/{id}", "", {"Range": "bytes=-10"}),                       # the latest iteration
    ("splat_cloud/{id}", "?iteration=200", {"Range": "bytes=5-5"}),
    ("splat_cloud/{id}", "?iteration=300", {"Range": "bytes=0-9"}),          # no such iteration: 404
    ("splat_cloud/{id}", "?iteration=0", {"Range": "bytes=0-9"}),            # out of bounds: 400
    ("splat_cloud/{id}", "?iteration=30001", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "?iteration=0100", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "?iteration=abc", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "?iteration=", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "?iteration=100&x=1", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "?iteration=100&iteration=200", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "?x=1", {"Range": "bytes=0-9"}),
    ("video/{id}", "", {"Range": "bytes=0-9"}),                              # requested, not produced yet
    ("model/{id}", "", {"Range": "bytes=0-9"}),                              # not requested for the scene
    ("mesh/{id}", "", {"Range": "bytes=0-9"}),                               # unknown type: 400
    ("splat_cloud/not-a-scene", "", {"Range": "bytes=0-9"}),
    ("splat_cloud/{id}", "", {"Range": "bytes=0-2097151"}),                  # over one chunk
    ("splat_cloud/{id}", "", {"Range": "bytes=0-1,5-6"}),                    # multipart/byteranges
    ("splat_cloud/{id}", "", {"Range": "bytes=0-0,99999999-"}),              # one part satisfiable
    ("splat_cloud/{id}", "", {"Range": "bytes=99999999-"}),                  # 416
    ("splat_cloud/{id}", "", {"Range": "bytes=x-y"}),                        # malformed: 400
    ("splat_cloud/{id}", "", {"Range": "items=0-9"}),                        # unknown unit: whole file
    ("splat_cloud/{id}", "", {}),                                            # no range: whole file
    ("splat_cloud/{id}", "", {"Range": "bytes=0-9", "If-Range": '"nope"'}),
    ("splat_cloud/{id}", "", {"Range": "bytes=0-9", "Origin": "https://elsewhere.example"}),  # CORS headers
    ("splat_cloud/{id}", "", {"Range": "bytes=0-9", "Authorization": "Bearer not.a.token"}),
    ("splat_cloud/{id}", "", {"Range": "bytes=0-9", "Authorization": "Basic dXNlcjpwdw=="}),
    ("splat_cloud/{id}", "", {"Range": "bytes=0-9", "Authorization": ""}),
]


def test_same_answers_with_and_without_the_direct_lane(api: Api, auth: dict[str, str], chunked: tuple[str, bytes],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    scene, _ = chunked
    _, stranger = api.user()
    requests = [(method, f"/user/scene/output/{path.format(id=scene)}{query}", {**auth, **extra})
                for path, query, extra in CASES for method in ("GET", "HEAD")]
    requests.append(("GET", f"/user/scene/output/splat_cloud/{scene}", {**stranger, "Range": "bytes=0-9"}))
    requests.append(("POST", f"/user/scene/output/splat_cloud/{scene}", auth))  # 405
    direct = [answer(api, *request) for request in requests]
    monkeypatch.setattr(OutputRoute, "direct", False)
    solved = [answer(api, *request) for request in requests]
    for request, got, expected in zip(requests, direct, solved, strict=True):
        assert got == expected, request
    statuses = {status for status, _, _ in solved}
    assert {200, 206, 400, 401, 404, 405, 416} <= statuses  # the cases reach every kind of answer


def test_a_revoked_token_gets_the_routes_401(api: Api, mp4_bytes: bytes, db_url: str) -> None:
    _, headers = api.user()
    scene = api.scene_id(headers, mp4_bytes, output_types="splat_cloud")
    add_output(api, db_url, scene, "splat_cloud", 100, b"x" * 100)
    url = f"/user/scene/output/splat_cloud/{scene}"
    assert api.client.get(url, headers={**headers, "Range": "bytes=0-9"}).status_code == 206
    assert api.client.patch("/user/account/update/password", headers=headers,
                            json={"old_password": PASSWORD, "new_password": "changed password"}).status_code == 200
    resp = api.client.get(url, headers={**headers, "Range": "bytes=0-9"})
    assert resp.status_code == 401
    assert "revoked" in resp.json()["error"]


def test_a_plain_chunk_skips_fastapis_dependency_solving(api: Api, auth: dict[str, str], chunked: tuple[str, bytes],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    scene, data = chunked
    solved: list[bytes] = []

    async def solver(self: SessionReleasingRoute, scope: Scope, receive: Receive, send: Send) -> None:
        solved.append(scope["query_string"])
        await PlainTextResponse("solved", status_code=418)(scope, receive, send)

    monkeypatch.setattr(SessionReleasingRoute, "handle", solver, raising=False)
    for query in ("?iteration=100", ""):
        resp = api.client.get(f"/user/scene/output/splat_cloud/{scene}{query}",
                              headers={**auth, "Range": "bytes=1048576-2097151"})
        assert resp.status_code == 206
        assert resp.content == (data if query else data[::-1])[MiB:2 * MiB]
    assert solved == []
    assert api.client.get(f"/user/scene/output/splat_cloud/{scene}?iteration=abc", headers=auth).status_code == 418
    assert solved == [b"iteration=abc"]


def test_dependency_overrides_are_honoured(api: Api, auth: dict[str, str], chunked: tuple[str, bytes]) -> None:
    scene, _ = chunked

    async def nobody() -> None:
        raise NotAuthenticatedError("overridden")

    api.app.dependency_overrides[get_caller] = nobody
    try:
        resp = api.client.get(f"/user/scene/output/splat_cloud/{scene}", headers={**auth, "Range": "bytes=0-9"})
    finally:
        api.app.dependency_overrides.clear()
    assert (resp.status_code, resp.json()) == (401, {"error": "overridden"})
