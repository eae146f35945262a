"""A short path through the app for the web client's 1 MiB output chunks.

Downloads go in 1 MiB ``Range`` requests (a 1 GiB checkpoint is 1024 of them), and per chunk FastAPI's
routing, dependency solving and middleware cost more CPU than finding and reading the chunk: the output
route served 0.47-0.57x nginx's throughput where a bare ASGI app on the same uvicorn reaches 0.8-1x
(bench/api.py). This middleware answers the plain case itself and hands everything else to the app
unchanged:

- ``GET /user/scene/output/{type}/{id}`` with at most an ``iteration`` query given as plain digits;
- a bearer token that verifies, one satisfiable ``bytes`` range of at most 1 MiB, no ``If-Range``;
- no ``Origin`` header (a cross-origin request needs the CORS middleware's headers).

It finds the file with the route's own ``endpoints.output_response`` and answers with the route's own
``DownloadResponse``, so the bytes and headers are the same; any error (bad token, unknown scene, no such
output) falls through to the route, which produces the documented error answer.
"""

from __future__ import annotations

from sqlalchemy import Connection
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from vidscene.api.deps import AppContext, read_in_thread
from vidscene.api.downloads import DownloadResponse
from vidscene.api.errors import APIError
from vidscene.api.scenes.endpoints import output_response
from vidscene.api.security import InvalidTokenError, TokenClaims
from vidscene.catalogue import MAX_TOTAL_ITERATIONS, OUTPUT_TYPES

PREFIX = "/user/scene/output/"


class ChunkFastPath:
    """ASGI middleware: see the module docstring for what it answers and what it leaves to the app."""

    def __init__(self, app: ASGIApp, context: AppContext) -> None:
        self.app = app
        self.context = context

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].startswith(PREFIX):
            response = await self._chunk(scope)
            if response is not None:
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _chunk(self, scope: Scope) -> DownloadResponse | None:
        """The preloaded chunk response, or None when the app must answer."""
        if scope.get("root_path"):
            return None  # behind a path-prefixing proxy: leave the routing to Starlette
        parts = scope["path"][len(PREFIX):].split("/")
        if len(parts) != 2 or parts[0] not in OUTPUT_TYPES or not parts[1]:
            return None
        output_type, scene_id = parts
        try:
            iteration = _iteration(scope["query_string"])
        except ValueError:
            return None
        headers = Headers(scope=scope)
        if "origin" in headers or "if-range" in headers or "range" not in headers:
            return None
        claims = self._claims(headers.get("authorization"))
        if claims is None:
            return None

        def read(conn: Connection) -> DownloadResponse | None:
            try:
                response = output_response(conn, self.context, claims, scene_id, output_type, iteration)
            except APIError:
                return None
            response.preload(headers)
            if not response.preloaded:
                return None
            # What the CORS middleware adds to every answer, so that caches keep answers per Origin apart.
            response.headers["vary"] = "Origin"
            return response

        return await read_in_thread(self.context, read)

    def _claims(self, authorization: str | None) -> TokenClaims | None:
        """The verified claims of a ``Bearer`` authorization, read the way ``HTTPBearer`` reads it."""
        if authorization is None:
            return None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return None
        try:
            return self.context.tokens.decode(token)
        except InvalidTokenError:
            return None


def _iteration(query: bytes) -> int | None:
    """``None`` without a query, the iteration of ``iteration=<digits>`` within the route's bounds; raises
    ``ValueError`` for anything else (the route validates it and answers)."""
    if not query:
        return None
    name, sep, value = query.partition(b"=")
    if name != b"iteration" or not sep or not value.isdigit() or value.startswith(b"0") or len(value) > 6:
        raise ValueError(query)
    number = int(value)
    if number > MAX_TOTAL_ITERATIONS:
        raise ValueError(query)
    return number
