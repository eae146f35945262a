"""``/user/account/*``: register, log in, rename, change password, delete the account with all its scenes.

HTTP only: bodies in (JSON or urlencoded, see ``forms``), the service's answer out.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status

from vidscene.api.accounts import service
from vidscene.api.accounts.schemas import (
    Credentials,
    NewAccount,
    PasswordConfirmation,
    PasswordUpdate,
    SuccessOut,
    TokenOut,
    UsernameUpdate,
)
from vidscene.api.deps import ContextDep, CurrentUser, SessionDep, SessionReleasingRoute, client_address
from vidscene.api.errors import ERROR_EXTRA_STATE_KEY
from vidscene.api.forms import body_of, request_body_openapi
from vidscene.api.schemas import MessageOut, RegisterErrorBody, error_responses

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/account", tags=["account"], route_class=SessionReleasingRoute)


def _mark_register_errors(request: Request) -> None:
    """Register failures carry ``"success": false`` besides ``error`` (what the existing client checks)."""
    setattr(request.state, ERROR_EXTRA_STATE_KEY, {"success": False})


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=SuccessOut,
    summary="Create an account",
    responses=error_responses(400, 409, 413, 429, model=RegisterErrorBody),
    openapi_extra=request_body_openapi(NewAccount),
    dependencies=[Depends(_mark_register_errors)],
)
def register(body: Annotated[NewAccount, Depends(body_of(NewAccount))], session: SessionDep,
             context: ContextDep, request: Request) -> SuccessOut:
    service.register(session, context.unit_of_work, context.register_limiter, username=body.username,
                     password=body.password, client=client_address(request))
    logger.info("user registered", extra={"username": body.username})
    return SuccessOut()


@router.post(
    "/login",
    response_model=TokenOut,
    summary="Log in and get a bearer token",
    responses=error_responses(400, 401, 413, 429),
    openapi_extra=request_body_openapi(Credentials),
)
def login(body: Annotated[Credentials, Depends(body_of(Credentials))], session: SessionDep,
          context: ContextDep, request: Request) -> TokenOut:
    token = service.login(session, context.login_limiter, context.tokens, username=body.username,
                          password=body.password, client=client_address(request))
    return TokenOut(jwtToken=token)


# ``user`` comes first in these signatures: dependencies resolve in order, so an unauthenticated request is
# refused (401) before its body is read or validated.
@router.patch(
    "/update/username",
    response_model=MessageOut,
    summary="Rename the signed-in user (needs the current password)",
    responses=error_responses(400, 401, 403, 409, 413, 429),
    openapi_extra=request_body_openapi(UsernameUpdate),
)
def update_username(user: CurrentUser, body: Annotated[UsernameUpdate, Depends(body_of(UsernameUpdate))],
                    context: ContextDep, request: Request) -> MessageOut:
    service.check_username(body.new_username, "new_username")
    service.confirm_password(context.login_limiter, user, body.password, client=client_address(request))
    service.rename(context.unit_of_work, user, body.new_username)
    return MessageOut(message="Username updated")


@router.patch(
    "/update/password",
    response_model=MessageOut,
    summary="Change the password; every token issued before stops working, API tokens are deleted",
    responses=error_responses(400, 401, 403, 413, 429),
    openapi_extra=request_body_openapi(PasswordUpdate),
)
def update_password(user: CurrentUser, body: Annotated[PasswordUpdate, Depends(body_of(PasswordUpdate))],
                    context: ContextDep, request: Request) -> MessageOut:
    service.check_password(body.new_password, "new_password")
    service.confirm_password(context.login_limiter, user, body.old_password, client=client_address(request))
    service.change_password(context.unit_of_work, user, body.new_password)
    logger.info("password changed", extra={"user_id": user.id})
    return MessageOut(message="Password updated")


@router.delete(
    "/delete",
    response_model=MessageOut,
    summary="Delete the account, its scenes and their files",
    responses=error_responses(400, 401, 403, 413, 429),
    openapi_extra=request_body_openapi(PasswordConfirmation),
)
def delete_account(user: CurrentUser,
                   body: Annotated[PasswordConfirmation, Depends(body_of(PasswordConfirmation))],
                   context: ContextDep, request: Request) -> MessageOut:
    service.confirm_password(context.login_limiter, user, body.password, client=client_address(request))
    scenes = service.delete_account(context.unit_of_work, context.storage, user)
    logger.info("account deleted", extra={"user_id": user.id, "scenes": scenes})
    return MessageOut(message="User deleted")
