"""The browser app at ``/``: hashed assets sent precompressed and cached for a year, the page never cached.

Vite names every asset after its content hash (``assets/viewer-0ePbdL1t.js``), so an asset URL never
changes meaning: browsers may keep it forever (``immutable``) and a new release simply links new names.
The HTML that links them must always be revalidated. ``scripts/compress-web.mjs`` writes ``.br`` and
``.gz`` beside each asset at build time; the 3 MB viewer script then crosses the wire as ~0.7 MB without
compressing per request.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

import anyio
from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.routing import Match, Mount, Router
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
ASSETS_PREFIX = "assets/"
# Preference order of the encodings written at build time, with their file suffixes.
_ENCODINGS = (("br", ".br"), ("gzip", ".gz"))


def accepted_encodings(accept_encoding: str) -> set[str]:
    """The content codings a client accepts (``q=0`` means refused), lower-cased."""
    accepted: set[str] = set()
    for item in accept_encoding.split(","):
        name, _, params = item.strip().partition(";")
        q = params.strip()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    continue
            except ValueError:
                continue
        if name.strip():
            accepted.add(name.strip().lower())
    return accepted


class WebAppFiles(StaticFiles):
    """``StaticFiles`` with the caching and precompressed variants described in the module docstring."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        asset = path.replace("\\", "/").startswith(ASSETS_PREFIX)
        if asset:
            encoded = await self._encoded(path, scope)
            if encoded is not None:
                return encoded
        response = await super().get_response(path, scope)
        if response.status_code < 400:
            response.headers["Cache-Control"] = IMMUTABLE if asset else REVALIDATE
            if asset:
                response.headers["Vary"] = "Accept-Encoding"
        return response

    async def _encoded(self, path: str, scope: Scope) -> Response | None:
        accepted = accepted_encodings(Headers(scope=scope).get("accept-encoding", ""))
        for coding, suffix in _ENCODINGS:
            if coding not in accepted:
                continue
            full_path, stat_result = await anyio.to_thread.run_sync(self.lookup_path, path + suffix)
            if stat_result is None:
                continue
            media_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return FileResponse(full_path, stat_result=stat_result, media_type=media_type,
                                headers={"Content-Encoding": coding, "Vary": "Accept-Encoding",
                                         "Cache-Control": IMMUTABLE})
        return None


class WebAppMount(Mount):
    """The browser app at ``/``, except for paths an API route owns.

    A mount at ``/`` fully matches every path, which would turn an API path called with the wrong method
    into the web app's 404 instead of the API's JSON 405; it steps aside whenever another route of the app
    matches the path at all.
    """

    def __init__(self, directory: Path, router: Router) -> None:
        super().__init__("/", app=WebAppFiles(directory=directory, html=True), name="web")
        self._router = router

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        for route in self._router.routes:
            if route is not self and route.matches(scope)[0] != Match.NONE:
                return Match.NONE, {}
        return super().matches(scope)
