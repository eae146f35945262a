"""The web app's hashed assets are sent precompressed and cached for a year; its page is never cached."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from tests.support.api_client import Api, ApiFactory
from vidscene.api.webapp import accepted_encodings

SCRIPT = b"console.log('viewer');\n" * 400


@pytest.fixture
def web(api_factory: ApiFactory, tmp_path: Path) -> Api:
    dist = tmp_path / "dist"
    (dist / "assets").mkdir(parents=True)
    (dist / "index.html").write_text('<!doctype html><script src="/assets/viewer-abc123.js"></script>')
    (dist / "assets" / "viewer-abc123.js").write_bytes(SCRIPT)
    (dist / "assets" / "viewer-abc123.js.gz").write_bytes(gzip.compress(SCRIPT))
    (dist / "assets" / "viewer-abc123.js.br").write_bytes(b"brotli bytes stand-in")
    (dist / "assets" / "plain-def456.css").write_text("body{}")
    return api_factory(web_dist=dist)


def test_assets_are_immutable_and_precompressed(web: Api) -> None:
    br = web.client.get("/assets/viewer-abc123.js", headers={"Accept-Encoding": "gzip, br"})
    assert br.status_code == 200
    assert br.headers["content-encoding"] == "br"
    assert br.headers["content-type"].startswith("text/javascript")
    assert br.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "Accept-Encoding" in br.headers["vary"]
    assert br.headers["x-content-type-options"] == "nosniff"

    gz = web.client.get("/assets/viewer-abc123.js", headers={"Accept-Encoding": "gzip, br;q=0"})
    assert gz.headers["content-encoding"] == "gzip"
    assert gz.content == SCRIPT  # the client decodes it
    assert int(gz.headers["content-length"]) < len(SCRIPT) / 10

    plain = web.client.get("/assets/viewer-abc123.js", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == SCRIPT
    assert plain.headers["cache-control"] == "public, max-age=31536000, immutable"

    css = web.client.get("/assets/plain-def456.css", headers={"Accept-Encoding": "br"})  # no variant built
    assert css.status_code == 200 and "content-encoding" not in css.headers


def test_the_page_is_revalidated_and_missing_assets_are_404(web: Api) -> None:
    page = web.client.get("/")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-cache"
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and policy.endswith("frame-ancestors 'none'")
    assert page.headers["x-frame-options"] == "DENY"
    missing = web.client.get("/assets/gone-000.js", headers={"Accept-Encoding": "br"})
    assert missing.status_code == 404
    assert "immutable" not in missing.headers.get("cache-control", "")


def test_accept_encoding_parsing() -> None:
    assert accepted_encodings("gzip, deflate, br") == {"gzip", "deflate", "br"}
    assert accepted_encodings("br;q=0, gzip;q=0.5") == {"gzip"}
    assert accepted_encodings("BR ; q=1.0") == {"br"}
    assert accepted_encodings("") == set()
