"""The FastAPI application factory.

The factory wires settings, database, storage and the job hand-off together and runs no migrations (the CLI
does, before serving). ``enqueue`` is how the job engine plugs in: it receives a job id after the transaction
that created the scene and its job has committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, cast

import anyio
from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from vidscene import __version__ as _package_version
from vidscene.api import accounts, scenes, shares, system, tokens, tus, user_limits, webhooks
from vidscene.api.deps import AppContext, DbThreads, Enqueue
from vidscene.api.edits.endpoints import router as edits_router
from vidscene.api.errors import install_error_handlers
from vidscene.api.metrics import ApiMetrics, MetricsMiddleware
from vidscene.api.middleware import JsonCORSMiddleware, SecurityHeaders
from vidscene.api.ratelimit import LoginRateLimiter, RegistrationRateLimiter
from vidscene.api.security import TokenCodec
from vidscene.api.tus import protocol as tus_protocol
from vidscene.api.tus import service as tus_service
from vidscene.api.upload import remove_stale_uploads
from vidscene.api.webapp import WebAppMount
from vidscene.config import Settings
from vidscene.db.session import make_engine, make_sessionmaker
from vidscene.storage import open_storage

logger = logging.getLogger(__name__)

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"


def _hoisted_defs(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` with the ``$defs`` of request bodies documented by hand (``forms.request_body_openapi``: a model
    with nested models) moved into ``components/schemas``: a ``#/$defs/...`` reference inside a path resolves
    against the document's root, where nothing is, and generators (openapi-typescript) refuse it."""
    components = schema["components"]["schemas"]
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            body = operation.get("requestBody", {}) if isinstance(operation, dict) else {}
            for media in body.get("content", {}).values():
                defs = media.get("schema", {}).pop("$defs", None)
                for name, definition in (defs or {}).items():
                    components.setdefault(name, definition)
    return cast(dict[str, Any], json.loads(json.dumps(schema).replace('"#/$defs/', '"#/components/schemas/')))


def _openapi_without_422(app: FastAPI) -> dict[str, Any]:
    """FastAPI documents a 422 body for every parameterised route; this API answers 400 ``{"error"}``
    instead (see errors.py), so the schema must say so or clients and schema checkers are misled."""
    if app.openapi_schema is None:
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        for path_item in schema.get("paths", {}).values():
            for operation in path_item.values():
                if isinstance(operation, dict):
                    operation.get("responses", {}).pop("422", None)
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        app.openapi_schema = _hoisted_defs(schema)
    return app.openapi_schema


def create_app(settings: Settings, *, enqueue: Enqueue | None = None, enqueue_derive: Enqueue | None = None) -> FastAPI:
    """Build the API for ``settings``; ``enqueue(job_id)`` is called after each new scene's commit, and
    ``enqueue_derive(id)`` after each new derive job's (an edit, an output asked for after the fact).

    The database must already be migrated (``vidscene.db.migrate.upgrade``). The engine is disposed when the
    app shuts down.
    """
    context = _app_context(settings, enqueue, enqueue_derive)
    app = FastAPI(
        title="vidscene",
        version=_package_version,
        description="Turn a phone video into a 3D scene (3D Gaussian Splatting or TensoRF). "
                    "Errors are JSON `{\"error\": \"...\"}`.",
        lifespan=_lifespan(context),
        # A slash-redirect builds its Location from the client's Host header; a wrong path is a JSON 404.
        redirect_slashes=False,
        telemetry={"tracing": settings.otel, "metrics": settings.otel, "logs": settings.otel},
    )
    app.state.context = context
    app.state.metrics = ApiMetrics(context.engine)
    install_error_handlers(app)
    _add_middleware(app, settings)
    _include_routes(app, context.web_dist)

    def custom_openapi() -> dict[str, Any]:
        return _openapi_without_422(app)

    app.openapi = custom_openapi  # type: ignore[method-assign]  # FastAPI's documented override hook
    return app


def _app_context(settings: Settings, enqueue: Enqueue | None, enqueue_derive: Enqueue | None) -> AppContext:
    """What every request shares: database engine and sessions, storage (created if missing), tokens, limiters."""
    settings.ensure_data_dir()
    engine = make_engine(settings.resolved_database_url)
    storage = open_storage(settings.data_dir, settings.storage_url,
                           presign_seconds=settings.s3_presign_seconds if settings.s3_presigned_downloads else None)
    storage.ensure()
    storage.check()  # a store that is down or refuses the credentials stops the start with its reason
    return AppContext(
        settings=settings,
        engine=engine,
        sessions=make_sessionmaker(engine),
        storage=storage,
        tokens=TokenCodec(secret=settings.resolved_jwt_secret(), lifetime_seconds=settings.jwt_lifetime_seconds),
        login_limiter=LoginRateLimiter(settings.login_rate_limit, username_limit=settings.login_username_rate_limit,
                                       storage_uri=settings.rate_limit_storage),
        register_limiter=RegistrationRateLimiter(settings.register_rate_limit, storage_uri=settings.rate_limit_storage),
        enqueue=enqueue,
        enqueue_derive=enqueue_derive,
        db_threads=DbThreads(settings.api_db_threads or os.cpu_count() or 1),
        web_dist=settings.web_dist or WEB_DIST,
    )


def _lifespan(context: AppContext) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """Startup clears stale upload files and starts the upload sweeper; shutdown stops it and frees the
    database threads and engine."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(partial(remove_stale_uploads, context.storage.tmp_dir,
                                               store=context.storage.objects))
        sweeper = asyncio.create_task(_sweep_uploads(context), name="vidscene-upload-sweeper")
        try:
            yield
        finally:
            sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sweeper
            context.db_threads.shutdown()
            context.engine.dispose()

    return lifespan


async def _sweep_uploads(context: AppContext) -> None:
    """Expired resumable uploads go, rows and bytes, while the API runs (every process sweeps; the rows
    are deleted in one transaction, so they never fight over one)."""
    while True:
        try:
            await anyio.to_thread.run_sync(partial(tus_service.sweep, context.unit_of_work, context.storage))
        except Exception:
            logger.exception("sweeping expired resumable uploads failed; trying again later")
        await anyio.sleep(context.settings.upload_sweep_seconds)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """CORS, security headers and, behind a trusted proxy, the forwarded client address (added last: outermost)."""
    app.add_middleware(
        JsonCORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
        allow_headers=["Authorization", "Content-Type", "Range", *tus_protocol.CORS_REQUEST_HEADERS],
        expose_headers=["Content-Range", "Content-Length", "Content-Disposition", "Accept-Ranges", "Retry-After",
                        *tus_protocol.CORS_RESPONSE_HEADERS],
        allow_credentials=False,  # bearer tokens, no cookies
        max_age=600,
    )
    # Every answer gets the security headers.
    app.add_middleware(SecurityHeaders)
    # Outside the others: it counts every 5xx, and upload bytes as the routes read them (api/metrics.py).
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    if settings.forwarded_allow_ips:
        # Outermost: the client address every throttle and log line sees is the one the trusted proxy
        # forwarded for; X-Forwarded-For from anyone else is ignored.
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.forwarded_allow_ips)


def _include_routes(app: FastAPI, web_dist: Path) -> None:
    """The API's routers, then the built web app at ``/`` (or, when it is not built, a JSON note there)."""
    # The download route first: FastAPI matches included routers in order (api/scenes/outputs.py).
    app.include_router(scenes.output_router)
    app.include_router(accounts.router)
    app.include_router(user_limits.router)
    app.include_router(scenes.router)
    app.include_router(tus.router)
    app.include_router(shares.owner_router)
    app.include_router(shares.public_router)
    app.include_router(edits_router)
    app.include_router(tokens.router)
    app.include_router(webhooks.router)
    app.include_router(system.router)

    if (web_dist / "index.html").is_file():
        app.router.routes.append(WebAppMount(web_dist, app.router))
    else:
        @app.get("/", include_in_schema=False)
        def root() -> JSONResponse:
            return JSONResponse({"message": "vidscene API; the web app is not built. See /routes and /docs.",
                                 "routes": "/routes", "openapi": "/openapi.json"})
