"""``/user/account/*``: register, log in, rename, change password, delete the account with all its scenes."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from fastapi import APIRouter, Depends, Request, status
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidscene.api.deps import (
    ContextDep,
    CurrentUser,
    SessionDep,
    SessionReleasingRoute,
    begin_write,
    client_address,
)
from vidscene.api.errors import (
    ERROR_EXTRA_STATE_KEY,
    BadRequestError,
    ConflictError,
    NotAuthenticatedError,
    TooManyRequestsError,
)
from vidscene.api.forms import body_of, request_body_openapi
from vidscene.api.ratelimit import LoginRateLimiter
from vidscene.api.schemas import (
    PASSWORD_MAX,
    PASSWORD_MIN,
    USERNAME_PATTERN,
    Credentials,
    MessageOut,
    PasswordConfirmation,
    PasswordUpdate,
    RegisterErrorBody,
    SuccessOut,
    TokenOut,
    UsernameUpdate,
    error_responses,
)
from vidscene.api.security import hash_password, initial_token_version, verify_password
from vidscene.db.models import Job, JobState, Scene, User, utcnow

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/account", tags=["account"], route_class=SessionReleasingRoute)

_USERNAME_RE = re.compile(USERNAME_PATTERN)
WRONG_PASSWORD = "Wrong password."  # noqa: S105 - an error message, not a credential


def _mark_register_errors(request: Request) -> None:
    """Register failures carry ``"success": false`` besides ``error`` (what the existing client checks)."""
    setattr(request.state, ERROR_EXTRA_STATE_KEY, {"success": False})


def _check_username(username: str, field: str) -> None:
    if not _USERNAME_RE.fullmatch(username):
        raise BadRequestError(f"Invalid {field}: use 3-64 letters, digits, '_', '.' or '-'.")


def _check_password(password: str, field: str) -> None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        raise BadRequestError(f"Invalid {field}: use {PASSWORD_MIN} to {PASSWORD_MAX} characters.")


def _username_taken(session: Session, username: str) -> bool:
    return session.scalar(select(User.id).where(User.username == username)) is not None


def _confirm_password(limiter: LoginRateLimiter, request: Request, user: User, password: str) -> None:
    """Check the current password of a signed-in user, throttled like logins (a stolen token must not
    become a password oracle)."""
    client = client_address(request)
    retry = limiter.retry_after(user.username, client)
    if retry is not None:
        raise TooManyRequestsError(retry_after=retry)
    if not verify_password(password, user.password_hash):
        limiter.record_failure(user.username, client)
        raise NotAuthenticatedError(WRONG_PASSWORD)


def _locked_user(session: Session, user: User) -> User:
    """Re-read the user inside the write transaction (row lock on PostgreSQL) and make sure nothing changed
    its password since the request was authenticated."""
    begin_write(session)
    fresh = session.get(User, user.id, with_for_update=True, populate_existing=True)
    if fresh is None or fresh.password_hash != user.password_hash:
        raise NotAuthenticatedError("The account changed during the request; log in again.")
    return fresh


@router.post(
    "/register",
    status_code=status.HTTP_201_CREATED,
    response_model=SuccessOut,
    summary="Create an account",
    responses=error_responses(400, 409, 413, model=RegisterErrorBody),
    openapi_extra=request_body_openapi(Credentials),
    dependencies=[Depends(_mark_register_errors)],
)
def register(body: Annotated[Credentials, Depends(body_of(Credentials))], session: SessionDep) -> SuccessOut:
    _check_username(body.username, "username")
    _check_password(body.password, "password")
    if _username_taken(session, body.username):
        raise ConflictError("That username is taken.")
    password_hash = hash_password(body.password)
    begin_write(session)
    session.add(User(username=body.username, password_hash=password_hash, token_version=initial_token_version(),
                     created_at=utcnow()))
    try:
        session.commit()
    except IntegrityError as exc:  # lost a race with a concurrent registration of the same name
        session.rollback()
        raise ConflictError("That username is taken.") from exc
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
    client = client_address(request)
    retry = context.login_limiter.retry_after(body.username, client)
    if retry is not None:
        logger.warning("login throttled", extra={"username": body.username, "client": client})
        raise TooManyRequestsError(retry_after=retry)
    user = session.scalar(select(User).where(User.username == body.username))
    if not verify_password(body.password, user.password_hash if user else None) or user is None:
        context.login_limiter.record_failure(body.username, client)
        raise NotAuthenticatedError("Invalid username or password.")
    context.login_limiter.record_success(body.username)
    return TokenOut(jwtToken=context.tokens.issue(user_id=user.id, token_version=user.token_version))


# ``user`` comes first in these signatures: dependencies resolve in order, so an unauthenticated request is
# refused (401) before its body is read or validated.
@router.patch(
    "/update/username",
    response_model=MessageOut,
    summary="Rename the signed-in user (needs the current password)",
    responses=error_responses(400, 401, 409, 413, 429),
    openapi_extra=request_body_openapi(UsernameUpdate),
)
def update_username(user: CurrentUser, body: Annotated[UsernameUpdate, Depends(body_of(UsernameUpdate))],
                    session: SessionDep, context: ContextDep, request: Request) -> MessageOut:
    _check_username(body.new_username, "new_username")
    _confirm_password(context.login_limiter, request, user, body.password)
    if body.new_username != user.username:
        fresh = _locked_user(session, user)
        if _username_taken(session, body.new_username):
            raise ConflictError("That username is taken.")
        fresh.username = body.new_username
        try:
            session.commit()
        except IntegrityError as exc:
            session.rollback()
            raise ConflictError("That username is taken.") from exc
    return MessageOut(message="Username updated")


@router.patch(
    "/update/password",
    response_model=MessageOut,
    summary="Change the password; every token issued before stops working",
    responses=error_responses(400, 401, 413, 429),
    openapi_extra=request_body_openapi(PasswordUpdate),
)
def update_password(user: CurrentUser, body: Annotated[PasswordUpdate, Depends(body_of(PasswordUpdate))],
                    session: SessionDep, context: ContextDep, request: Request) -> MessageOut:
    _check_password(body.new_password, "new_password")
    _confirm_password(context.login_limiter, request, user, body.old_password)
    new_hash = hash_password(body.new_password)
    fresh = _locked_user(session, user)
    fresh.password_hash = new_hash
    fresh.token_version = (fresh.token_version + 1) % 2**31
    session.commit()
    logger.info("password changed", extra={"user_id": user.id})
    return MessageOut(message="Password updated")


@router.delete(
    "/delete",
    response_model=MessageOut,
    summary="Delete the account, its scenes and their files",
    responses=error_responses(400, 401, 413, 429),
    openapi_extra=request_body_openapi(PasswordConfirmation),
)
def delete_account(user: CurrentUser,
                   body: Annotated[PasswordConfirmation, Depends(body_of(PasswordConfirmation))],
                   session: SessionDep, context: ContextDep, request: Request) -> MessageOut:
    _confirm_password(context.login_limiter, request, user, body.password)
    _locked_user(session, user)
    scene_ids = list(session.scalars(select(Scene.id).where(Scene.user_id == user.id)))
    if scene_ids:
        # Running workers see their job cancelled (or gone, after the cascade) at their next progress report.
        session.execute(update(Job).where(Job.scene_id.in_(scene_ids))
                        .values(state=JobState.cancelled.value, finished_at=utcnow()))
    session.execute(delete(User).where(User.id == user.id))
    session.commit()
    for scene_id in scene_ids:
        context.storage.scene(scene_id).remove()
    logger.info("account deleted", extra={"user_id": user.id, "scenes": len(scene_ids)})
    return MessageOut(message="User deleted")
