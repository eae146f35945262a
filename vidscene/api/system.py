"""``/routes`` and ``/health``: what a client or a load balancer asks before anything else."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, Request
from fastapi.dependencies.models import Dependant
from fastapi.responses import PlainTextResponse
from fastapi.routing import APIRoute

from vidscene.api.deps import get_current_user
from vidscene.api.schemas import RouteInfo

router = APIRouter(tags=["system"])


def requires_auth(dependant: Dependant) -> bool:
    """Whether the route (transitively) depends on the bearer-token user; read from the dependency graph so
    ``/routes`` cannot drift from what the routes really enforce."""
    stack = list(dependant.dependencies)
    while stack:
        dep = stack.pop()
        if dep.call is get_current_user:
            return True
        stack.extend(dep.dependencies)
    return False


def route_table(routes: Iterable[object]) -> list[RouteInfo]:
    table: list[RouteInfo] = []
    for route in routes:
        if not isinstance(route, APIRoute) or not route.include_in_schema:
            continue
        auth = requires_auth(route.dependant)
        table.extend(RouteInfo(method=method, path=route.path, auth=auth) for method in sorted(route.methods or ()))
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
