"""System routes, the OpenAPI document, error shapes for routing failures and crashes, CORS, the web app mount."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.api_client import Api, ApiFactory
from vidscene.api import app as app_module

EXPECTED_ROUTES = {
    ("POST", "/user/account/login", False),
    ("POST", "/user/account/register", False),
    ("PATCH", "/user/account/update/username", True),
    ("PATCH", "/user/account/update/password", True),
    ("DELETE", "/user/account/delete", True),
    ("POST", "/user/scene/new", True),
    ("GET", "/user/scene/metadata/{scene_id}", True),
    ("GET", "/user/scene/thumbnail/{scene_id}", True),
    ("GET", "/user/scene/capture/{scene_id}", True),
    ("GET", "/user/scene/name/{scene_id}", True),
    ("GET", "/user/scene/progress/{scene_id}", True),
    ("GET", "/user/scene/output/{output_type}/{scene_id}", True),
    ("HEAD", "/user/scene/output/{output_type}/{scene_id}", True),
    ("GET", "/user/scene/history", True),
    ("DELETE", "/user/scene/delete/{scene_id}", True),
    ("GET", "/user/scene/options", False),
    ("GET", "/user/scene/metrics/{scene_id}", True),
    ("PATCH", "/user/scene/name/{scene_id}", True),
    ("POST", "/user/scene/retry/{scene_id}", True),
    ("OPTIONS", "/user/scene/uploads", False),
    ("POST", "/user/scene/uploads", True),
    ("HEAD", "/user/scene/uploads/{upload_id}", True),
    ("GET", "/user/scene/uploads/{upload_id}", True),
    ("PATCH", "/user/scene/uploads/{upload_id}", True),
    ("DELETE", "/user/scene/uploads/{upload_id}", True),
    ("POST", "/user/scene/share/{scene_id}", True),
    ("GET", "/user/scene/shares/{scene_id}", True),
    ("DELETE", "/user/scene/share/{scene_id}/{token}", True),
    ("GET", "/public/{token}/metadata", False),
    ("GET", "/public/{token}/output/{output_type}", False),
    ("GET", "/s/{token}", False),
    ("GET", "/routes", False),
    ("GET", "/health", False),
    ("GET", "/health/ready", False),
    ("GET", "/metrics", False),
    ("GET", "/user/account/usage", True),
    ("POST", "/user/tokens", True),
    ("GET", "/user/tokens", True),
    ("DELETE", "/user/tokens/{token_id}", True),
    ("POST", "/user/webhooks", True),
    ("GET", "/user/webhooks", True),
    ("DELETE", "/user/webhooks/{webhook_id}", True),
    ("GET", "/user/webhooks/{webhook_id}/deliveries", True),
}
# The scope a personal API token needs on each route that takes one; the other authenticated routes take only
# the login token.
SCOPED = {path: scope for scope, paths in {
    "scenes:read": ["/user/scene/metadata/{scene_id}", "/user/scene/thumbnail/{scene_id}",
                    "/user/scene/capture/{scene_id}", "/user/scene/progress/{scene_id}",
                    "/user/scene/output/{output_type}/{scene_id}", "/user/scene/history",
                    "/user/scene/metrics/{scene_id}", "/user/scene/shares/{scene_id}"],
    "scenes:write": ["/user/scene/new", "/user/scene/delete/{scene_id}", "/user/scene/retry/{scene_id}",
                     "/user/scene/uploads", "/user/scene/uploads/{upload_id}", "/user/scene/share/{scene_id}",
                     "/user/scene/share/{scene_id}/{token}"],
}.items() for path in paths}


def test_routes_lists_every_route_with_auth(api: Api) -> None:
    resp = api.client.get("/routes")
    assert resp.status_code == 200
    table = resp.json()
    assert all(set(entry) == {"method", "path", "auth"} for entry in table)
    assert {(e["method"], e["path"], e["auth"]) for e in table} == EXPECTED_ROUTES


def test_auth_flags_match_behaviour(api: Api) -> None:
    """Every route /routes marks as authenticated really answers 401 without a token, and vice versa."""
    for entry in api.client.get("/routes").json():
        path = entry["path"].replace("{scene_id}", "abc").replace("{output_type}", "video")
        resp = api.client.request(entry["method"], path)
        assert (resp.status_code == 401) == entry["auth"], entry


def test_health(api: Api) -> None:
    resp = api.client.get("/health")
    assert resp.status_code == 200
    assert resp.text == "OK"


def test_openapi_documents_bodies_and_errors(api: Api) -> None:
    schema = api.client.get("/openapi.json").json()
    paths = schema["paths"]
    for method, path, auth in EXPECTED_ROUTES:
        operation = paths[path][method.lower()]
        responses = operation["responses"]
        assert "422" not in responses
        assert "500" in responses
        if auth:
            assert "401" in responses and "403" in responses, path
            scopes = [SCOPED[path]] if path in SCOPED else []
            if path == "/user/scene/name/{scene_id}":
                scopes = ["scenes:read"] if method == "GET" else ["scenes:write"]
            assert operation["security"] == [{"HTTPBearer": scopes}], (method, path)
    for path in ("/user/account/login", "/user/account/register"):
        content = paths[path]["post"]["requestBody"]["content"]
        assert set(content) == {"application/json", "application/x-www-form-urlencoded"}
    update = paths["/user/account/update/password"]["patch"]["requestBody"]["content"]["application/json"]
    assert set(update["schema"]["required"]) == {"old_password", "new_password"}
    upload = paths["/user/scene/new"]["post"]
    form = upload["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert form["properties"]["file"]["format"] == "binary"
    assert set(upload["responses"]) >= {"202", "400", "401", "413", "415", "507"}
    assert set(paths["/user/scene/output/{output_type}/{scene_id}"]["get"]["responses"]) >= {
        "200", "206", "400", "404", "416"}
    assert paths["/user/account/register"]["post"]["responses"]["409"]["content"]["application/json"]["schema"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


def test_routing_errors_are_json(api: Api) -> None:
    resp = api.client.get("/no/such/route")
    assert resp.status_code == 404
    assert resp.json() == {"error": "Not found."}
    resp = api.client.get("/user/account/login")
    assert resp.status_code == 405
    assert resp.json() == {"error": "Method not allowed."}
    assert "POST" in resp.headers["allow"]


def test_unhandled_errors_are_json_without_traceback(api: Api) -> None:
    @api.app.get("/test-crash")
    def crash() -> None:
        raise RuntimeError("secret internals /etc/passwd")

    resp = api.client.get("/test-crash")
    assert resp.status_code == 500
    assert resp.json() == {"error": "Internal server error."}
    assert "secret" not in resp.text


def test_cors(api: Api) -> None:
    preflight = api.client.options("/user/scene/history", headers={
        "Origin": "https://viewer.example", "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization, Content-Type"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed
    assert "content-type" in allowed
    resp = api.client.get("/health", headers={"Origin": "https://viewer.example"})
    assert resp.headers["access-control-allow-origin"] == "*"


def test_cors_origins_are_configurable(api_factory: ApiFactory) -> None:
    api = api_factory(cors_origins=["https://app.example"])
    ok = api.client.get("/health", headers={"Origin": "https://app.example"})
    assert ok.headers["access-control-allow-origin"] == "https://app.example"
    other = api.client.get("/health", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_root_without_web_app(api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(app_module, "WEB_DIST", tmp_path / "no-dist")
    api = api_factory()
    resp = api.client.get("/")
    assert resp.status_code == 200
    assert resp.json()["routes"] == "/routes"


def test_web_app_is_served_without_shadowing_the_api(api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text("<!doctype html><title>vidscene</title>")
    (dist / "assets" / "app.js").write_text("console.log('hi')")
    monkeypatch.setattr(app_module, "WEB_DIST", dist)
    api = api_factory()
    assert "<title>vidscene</title>" in api.client.get("/").text
    assert api.client.get("/assets/app.js").text == "console.log('hi')"
    assert api.client.get("/health").text == "OK"
    assert api.client.get("/routes").status_code == 200
    wrong_method = api.client.get("/user/account/login")
    assert wrong_method.status_code == 405
    assert wrong_method.json() == {"error": "Method not allowed."}
    assert api.client.get("/user/scene/history").status_code == 401
    missing = api.client.get("/assets/missing.js")
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not found."}


def test_engine_is_disposed_on_shutdown(api_factory: ApiFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    api = api_factory()
    calls: list[bool] = []
    monkeypatch.setattr(api.app.state.context.engine, "dispose", lambda *a, **k: calls.append(True))
    assert api.client.get("/health").status_code == 200
    api.client.__exit__(None, None, None)
    assert calls == [True]
