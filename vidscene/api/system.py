"""``/routes``, ``/health``, ``/health/ready`` and ``/metrics``: what a client, a load balancer or a monitoring
system asks before anything else."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from fastapi import APIRouter, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.routing import APIRoute
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.routing import BaseRoute

from vidscene.api.auth import get_caller
from vidscene.api.deps import ContextDep, get_token_claims
from vidscene.api.metrics import api_metrics
from vidscene.api.readiness import readiness
from vidscene.api.schemas import RouteInfo, error_responses

router = APIRouter(tags=["system"], responses=error_responses())


def requires_auth(dependant: Dependant) -> bool:
    """Whether the route (transitively) depends on the bearer token (the login token's ``get_token_claims``, or
    ``get_caller``, which takes personal API tokens too); read from the dependency graph so
    ``/routes`` cannot drift from what the routes really enforce."""
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is get_token_claims or dep.call is get_caller:
            return True
        stack.extend(dep.dependencies)
    return False


def iter_api_routes(routes: Sequence[BaseRoute]) -> Iterator[tuple[str, set[str], APIRoute]]:
    """``(path as served, methods, route)`` of every API route, those of included routers too.

    FastAPI 0.16x keeps included routers as lazy ``_IncludedRouter`` entries (the prefix lives in a route
    context, not in ``APIRoute.path``) and exposes ``iter_route_contexts`` to walk them; older releases copy
    every route, prefixed, into ``app.routes``.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:  # pragma: no cover - FastAPI before lazy included routers
        for route in routes:
            if isinstance(route, APIRoute):
                yield route.path, set(route.methods or ()), route
        return
    for context in iter_route_contexts(routes):
        original = context.original_route
        if isinstance(original, APIRoute) and context.path is not None:
            yield context.path, set(context.methods or original.methods or ()), original


def route_table(routes: Sequence[BaseRoute]) -> list[RouteInfo]:
    table: list[RouteInfo] = []
    for path, methods, route in iter_api_routes(routes):
        if not route.include_in_schema:
            continue
        auth = requires_auth(route.dependant)
        table.extend(RouteInfo(method=method, path=path, auth=auth) for method in sorted(methods))
    return table


@router.get("/routes", response_model=list[RouteInfo], summary="Every API route and whether it needs a token")
def routes(request: Request) -> list[RouteInfo]:
    return route_table(request.app.routes)


@router.get(
    "/health",
    response_class=PlainTextResponse,
    summary="Liveness check",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string", "example": "OK"}}},
                     "description": "The server is up"}},
)
def health() -> PlainTextResponse:
    return PlainTextResponse("OK")


@router.get(
    "/health/ready",
    summary="Readiness: database, broker and store reachable (503 naming the failing one)",
    responses={200: {"content": {"application/json": {"example": {"status": "ready", "checks": {
        "database": "ok", "broker": "ok", "store": "ok"}}}}, "description": "Every part answered"},
        **error_responses(503)},
)
async def ready(context: ContextDep) -> JSONResponse:
    checks = await readiness(context.settings, context.engine, context.storage)
    failing = [name for name, outcome in checks.items() if outcome != "ok"]
    if failing:
        reasons = "; ".join(f"{name}: {checks[name]}" for name in failing)
        return JSONResponse({"error": f"Not ready: {reasons}.", "checks": checks}, status_code=503,
                            headers={"Cache-Control": "no-store"})
    return JSONResponse({"status": "ready", "checks": checks}, headers={"Cache-Control": "no-store"})


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics: queue depth, stage durations, worker heartbeats, upload bytes, 5xx answers",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}},
                     "description": "The Prometheus text exposition format"}},
)
def metrics(request: Request) -> Response:
    return Response(generate_latest(api_metrics(request.app).registry), media_type=CONTENT_TYPE_LATEST,
                    headers={"Cache-Control": "no-store"})
