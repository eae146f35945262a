"""``/user/scene/output/*``: output downloads, the one hot route of the API.

The web client downloads outputs in 1 MiB ``Range`` requests (a 1 GiB checkpoint is 1024 of them), so this
route's per-request CPU is what bounds download speed (bench/RESULTS.md, API). It has a router of its own
because FastAPI 0.165 matches an included router's routes in order, twice per request: included first, and
holding only these two routes, a chunk request is matched against them alone instead of every account and
scene route before it. Paths here overlap no other router's.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

import anyio
from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Connection
from starlette.types import Receive, Scope, Send

from vidscene import catalogue
from vidscene.api.auth import READ_SCOPES, ScenesRead, get_caller
from vidscene.api.deps import AppContext, ContextDep, SessionReleasingRoute, bearer_scheme, get_context, read_in_thread
from vidscene.api.downloads import DownloadResponse, answered, file_response, safe_filename
from vidscene.api.edits import service as edits_service
from vidscene.api.edits.endpoints import enqueue_derive
from vidscene.api.errors import BadRequestError
from vidscene.api.scenes import service
from vidscene.api.schemas import ErrorBody, error_responses
from vidscene.api.security import TokenClaims

router = APIRouter(prefix="/user/scene", tags=["scene"], route_class=SessionReleasingRoute)

_BINARY = {"schema": {"type": "string", "format": "binary"}}
_MEDIA_TYPES = sorted({o.media_type for o in catalogue.OUTPUT_TYPES.values()})


def output_response(conn: Connection, context: AppContext, claims: TokenClaims, scene_id: str, output_type: str,
                    iteration: int | None, first: tuple[int, int] | None = None) -> Response:
    """The download of the latest (or the given) iteration of an output; raises the API error otherwise."""
    found = service.find_output(conn, context.storage, claims, scene_id, output_type, iteration, first=first)
    return file_response(found.file, media_type=found.media_type,
                         filename=safe_filename(found.filename_stem, found.extension))


IterationQuery = Annotated[int | None, Query(ge=1, le=catalogue.MAX_TOTAL_ITERATIONS,
                                             description="Default: the latest that exists")]
_ITERATION = TypeAdapter(IterationQuery)  # validates exactly as FastAPI does for the route: same annotation
RetryQuery = Annotated[bool, Query(description="For a type made after the fact whose last making failed: try "
                                               "again (without it the failure is answered, 409)")]


async def output(
    output_type: Annotated[str, Path(json_schema_extra={"enum": list(catalogue.OUTPUT_TYPES)})],
    scene_id: str,
    claims: ScenesRead,
    context: ContextDep,
    request: Request,
    iteration: IterationQuery = None,
    retry: RetryQuery = False,
) -> Response:
    if output_type not in catalogue.OUTPUT_TYPES:
        raise BadRequestError(f"Invalid output_type: unknown output type {output_type!r}.")

    def read(conn: Connection) -> Response:
        return answered(request.method, request.headers,
                        lambda first: output_response(conn, context, claims, scene_id, output_type, iteration, first))

    try:
        return await read_in_thread(context, read)
    except service.NotMadeYetError:
        return await preparing(context, claims, scene_id, output_type, iteration, retry)


PREPARING_RETRY_SECONDS = 5


async def preparing(context: AppContext, claims: TokenClaims, scene_id: str, output_type: str,
                    iteration: int | None, retry: bool) -> Response:
    """An output type the upload did not ask for: have it made (once) and say so, 202 with
    ``{"status": "preparing", "message"}`` and ``Retry-After``; a later request downloads it, or gets the
    failure (409) if the worker could not make it."""
    job_id = await anyio.to_thread.run_sync(partial(
        edits_service.prepare_output, context.unit_of_work, context.storage, user_id=claims.user_id,
        scene_id=scene_id, output_type=output_type, iteration=iteration, retry=retry))
    await enqueue_derive(context, scene_id, job_id)
    label = catalogue.OUTPUT_TYPES[output_type].label
    return JSONResponse({"status": "preparing",
                         "message": f"{label} is being made from the trained model; ask again in a few seconds."},
                        status_code=202, headers={"retry-after": str(PREPARING_RETRY_SECONDS)})



class OutputRoute(SessionReleasingRoute):
    """The output route, which resolves its own parameters for plain requests instead of FastAPI's solver.

    The web client downloads outputs in 1 MiB ``Range`` requests (a 1 GiB checkpoint is 1024 of them), and
    FastAPI's generic dependency solving is a sixth of such a request's CPU (bench/RESULTS.md, API). A
    request whose query is empty or one ``iteration`` is resolved here from the route's own pieces: the path
    parameters the router matched, ``iteration`` validated by the annotation the endpoint declares, the token
    by what ``ScenesRead`` is made of (``get_caller`` with the read scope); then the endpoint runs. What it
    raises is answered by the app's error handlers, and the app's middleware (CORS, security headers) wraps
    the answer, as for any route. Any other query goes through FastAPI, which answers a bad one with the
    documented 400, and so does every request while the app has dependency overrides. Neither the route nor
    its router has dependencies beyond the endpoint's parameters; one added there must be resolved in
    ``handle`` too.
    """

    direct = True  # False: every request through FastAPI (tests compare the two)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        plain, iteration = (self._plain_iteration(request) if self.direct and scope["method"] in (self.methods or ())
                            else (False, None))
        if not plain:
            await super().handle(scope, receive, send)
            return
        context = await get_context(request)
        claims = await get_caller(READ_SCOPES, context, await bearer_scheme(request))
        response = await output(**scope["path_params"], claims=claims, context=context, request=request,
                                iteration=iteration)
        await response(scope, receive, send)

    @staticmethod
    def _plain_iteration(request: Request) -> tuple[bool, int | None]:
        """Whether the request is plain, and its ``iteration`` validated as FastAPI would (``None`` without
        one); not plain means FastAPI must decide, and answer."""
        items = request.query_params.multi_items()
        if len(items) > 1 or (items and items[0][0] != "iteration") or request.app.dependency_overrides:
            return False, None
        try:
            return True, _ITERATION.validate_python(items[0][1] if items else None)
        except ValidationError:
            return False, None


_OUTPUT_PATH = "/output/{output_type}/{scene_id}"
_PREPARING = {"type": "object", "required": ["status", "message"],
              "properties": {"status": {"type": "string", "enum": ["preparing"]}, "message": {"type": "string"}}}
_FAILED: dict[int | str, dict[str, Any]] = {409: {
    "model": ErrorBody,
    "description": "A type the upload did not ask for whose making failed: why (ask with retry=true to try again)"}}
_OUTPUT_CONTENT = dict.fromkeys(_MEDIA_TYPES, _BINARY)
router.add_api_route(
    _OUTPUT_PATH, output, methods=["GET"], route_class_override=OutputRoute,
    response_class=DownloadResponse,
    summary="Download an output file (Range requests supported)",
    responses={
        200: {"content": _OUTPUT_CONTENT, "description": "The whole file"},
        202: {"content": {"application/json": {"schema": _PREPARING}},
              "description": "A type the upload did not ask for, being made now: ask again after Retry-After"},
        206: {"content": {**_OUTPUT_CONTENT, "multipart/byteranges": _BINARY},
              "description": "The requested byte range(s)"},
        **error_responses(400, 401, 403, 404, 416), **_FAILED,
    },
)
# HEAD as an operation of its own: one route with both methods would give both the same operationId (FastAPI
# warns, and takes it from whichever method its set yields first, so even the GET one could change).
router.add_api_route(
    _OUTPUT_PATH, output, methods=["HEAD"], route_class_override=OutputRoute,
    response_class=DownloadResponse,
    summary="An output file's headers: size, type, validators, file name (no body; Range is ignored)",
    responses={
        200: {"content": _OUTPUT_CONTENT, "description": "The whole file's headers"},
        202: {"description": "A type the upload did not ask for, being made now (no body)"},
        **error_responses(400, 401, 403, 404), **_FAILED,
    },
)


