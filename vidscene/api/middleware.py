"""The app's own ASGI middleware: CORS whose refusals are JSON, and the headers every answer carries."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class JsonCORSMiddleware(CORSMiddleware):
    """Starlette's CORS handling, with a refused preflight answered ``{"error": ...}`` like every other error
    (Starlette answers it in plain text, which clients that parse ``error`` cannot read)."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        return JSONResponse({"error": f"{bytes(response.body).decode('latin-1')}."}, status_code=response.status_code,
                            headers=headers)


# What the web app's pages may load: only this origin's scripts, plus what the splat viewer needs (Spark
# compiles WebAssembly and runs workers from blob: URLs; downloaded splats become blob: URLs too).
PAGE_POLICY = ("default-src 'self'; script-src 'self' 'wasm-unsafe-eval' blob:; worker-src 'self' blob:; "
               "connect-src 'self' blob: data:; img-src 'self' blob: data:; media-src 'self' blob:; "
               "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; form-action 'self'")
NOT_FRAMED = "frame-ancestors 'none'"


def page_policy(frame_ancestors: str) -> str:
    """The Content-Security-Policy of a page of the web app, framed by ``frame-ancestors``."""
    return f"{PAGE_POLICY}; frame-ancestors {frame_ancestors}"


class SecurityHeaders:
    """``X-Content-Type-Options: nosniff`` on every answer (a download is never sniffed into a page),
    ``Cache-Control: no-store`` on answers that carry a token, which no cache may keep, and no framing by
    other sites (clickjacking) unless the answer says otherwise (the share page may be embedded)."""

    NO_STORE_PATHS = frozenset({"/user/account/login"})

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        no_store = scope["path"] in self.NO_STORE_PATHS

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers["X-Content-Type-Options"] = "nosniff"
                if "content-security-policy" not in headers:
                    page = headers.get("content-type", "").startswith("text/html")
                    headers["Content-Security-Policy"] = page_policy("'none'") if page else NOT_FRAMED
                    headers["X-Frame-Options"] = "DENY"
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)
