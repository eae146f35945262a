"""``/user/scene/edits/{scene_id}``: read, replace and revert a scene's crop-and-clean edit list.

HTTP only; the rules are in ``service``. ``PUT`` answers 202 at once: the edit list is stored and a worker
writes the edited files (``jobs.derive``), which the scene serves once they are all in place.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Annotated

import anyio
from fastapi import APIRouter, Depends, status

from vidscene.api.auth import ScenesReadUser, ScenesWrite
from vidscene.api.deps import AppContext, ContextDep, SessionReleasingRoute
from vidscene.api.edits import service
from vidscene.api.edits.schemas import EditOut, EditRequest
from vidscene.api.forms import body_of, request_body_openapi
from vidscene.api.schemas import error_responses

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/scene/edits", tags=["edits"], route_class=SessionReleasingRoute)


async def enqueue_derive(context: AppContext, scene_id: str, job_id: int | None) -> None:
    """Hand a committed derive job to the workers; a failure is logged (the reaper sends it later)."""
    if job_id is None or context.enqueue_derive is None:
        return
    try:
        await anyio.to_thread.run_sync(context.enqueue_derive, job_id)
    except Exception:
        logger.exception("enqueue failed; derive job stays queued", extra={"scene_id": scene_id, "job": job_id})


@router.get("/{scene_id}", response_model=EditOut, summary="The scene's edit list and whether it is served",
            responses=error_responses(401, 403, 404))
def get_edit(scene_id: str, user: ScenesReadUser, context: ContextDep) -> EditOut:
    return service.get_edit(context.sessions, user_id=user.id, scene_id=scene_id)


@router.put("/{scene_id}", status_code=status.HTTP_202_ACCEPTED, response_model=EditOut,
            summary="Crop and clean: store an edit list; its files are made, then served",
            responses=error_responses(400, 401, 403, 404, 409, 413), openapi_extra=request_body_openapi(EditRequest))
async def put_edit(scene_id: str, user: ScenesWrite, body: Annotated[EditRequest, Depends(body_of(EditRequest))],
                   context: ContextDep) -> EditOut:
    answer, job_id = await anyio.to_thread.run_sync(partial(
        service.put_edit, context.sessions, context.unit_of_work, context.storage, user_id=user.id,
        scene_id=scene_id, request=body))
    logger.info("scene edited", extra={"scene_id": scene_id, "version": answer.version, "kept": answer.kept})
    await enqueue_derive(context, scene_id, job_id)
    return answer


@router.delete("/{scene_id}", response_model=EditOut, summary="Revert to the original outputs",
               responses=error_responses(401, 403, 404))
def delete_edit(scene_id: str, user: ScenesWrite, context: ContextDep) -> EditOut:
    return service.delete_edit(context.unit_of_work, context.storage, user_id=user.id, scene_id=scene_id)
