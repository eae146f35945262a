"""The rules of accounts: what a username and a password must be, who may log in (throttled), and what
renaming, a password change and deleting an account do. No HTTP, and no commit: writes happen inside the
unit of work (``db.session.write_session``) the caller passes in, which commits when it closes.

Password hashing (Argon2id, tens of milliseconds and 64 MiB) always runs before the write transaction
opens, so it never holds SQLite's write lock.
"""

from __future__ import annotations

import logging
import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from vidscene import catalogue
from vidscene.api.accounts import repository
from vidscene.api.deps import UnitOfWork
from vidscene.api.errors import BadRequestError, ConflictError, NotAuthenticatedError, TooManyRequestsError
from vidscene.api.ratelimit import LoginRateLimiter, RegistrationRateLimiter
from vidscene.api.security import TokenCodec, hash_password, initial_token_version, verify_password
from vidscene.api.tokens import repository as token_repository
from vidscene.api.tus import files as tus_files
from vidscene.api.tus import repository as tus_repository
from vidscene.db.models import User
from vidscene.jobs import state
from vidscene.storage import Storage

logger = logging.getLogger(__name__)

_USERNAME_RE = re.compile(catalogue.USERNAME_PATTERN)
WRONG_PASSWORD = "Wrong password."  # noqa: S105 - an error message, not a credential
USERNAME_TAKEN = "That username is taken."


def check_username(username: str, field: str) -> None:
    if not _USERNAME_RE.fullmatch(username):
        raise BadRequestError(f"Invalid {field}: use {catalogue.USERNAME_MIN}-{catalogue.USERNAME_MAX} letters, "
                              "digits, '_', '.' or '-'.")


def check_password(password: str, field: str) -> None:
    if not catalogue.PASSWORD_MIN <= len(password) <= catalogue.PASSWORD_MAX:
        raise BadRequestError(f"Invalid {field}: use {catalogue.PASSWORD_MIN} to {catalogue.PASSWORD_MAX} "
                              "characters.")


def register(session: Session, unit_of_work: UnitOfWork, limiter: RegistrationRateLimiter, *, username: str,
             password: str, client: str) -> None:
    check_username(username, "username")
    check_password(password, "password")
    retry = limiter.acquire(client)
    if retry is not None:
        raise TooManyRequestsError("Too many new accounts from this address; try again later.", retry_after=retry)
    if repository.username_taken(session, username):  # before paying for a hash
        raise ConflictError(USERNAME_TAKEN)
    password_hash = hash_password(password)
    try:
        with unit_of_work() as tx:
            repository.add_user(tx, username=username, password_hash=password_hash,
                                token_version=initial_token_version())
    except IntegrityError as exc:  # lost a race with a concurrent registration of the same name
        raise ConflictError(USERNAME_TAKEN) from exc


def login(session: Session, limiter: LoginRateLimiter, tokens: TokenCodec, *, username: str, password: str,
          client: str) -> str:
    """A token for the right password; failures say nothing of whether the username exists."""
    retry = limiter.retry_after(username, client)
    if retry is not None:
        logger.warning("login throttled", extra={"username": username, "client": client})
        raise TooManyRequestsError(retry_after=retry)
    user = repository.user_by_name(session, username)
    if not verify_password(password, user.password_hash if user else None) or user is None:
        limiter.record_failure(username, client)
        raise NotAuthenticatedError("Invalid username or password.")
    limiter.record_success(username, client)
    return tokens.issue(user_id=user.id, token_version=user.token_version)


def confirm_password(limiter: LoginRateLimiter, user: User, password: str, *, client: str) -> None:
    """Check the current password of a signed-in user, throttled like logins (a stolen token must not
    become a password oracle)."""
    retry = limiter.retry_after(user.username, client)
    if retry is not None:
        raise TooManyRequestsError(retry_after=retry)
    if not verify_password(password, user.password_hash):
        limiter.record_failure(user.username, client)
        raise NotAuthenticatedError(WRONG_PASSWORD)


def _locked(session: Session, user: User) -> User:
    """The user re-read inside the write transaction, refused if the password changed since the request
    was authenticated (a concurrent password change must win)."""
    fresh = repository.locked_user(session, user.id)
    if fresh is None or fresh.password_hash != user.password_hash:
        raise NotAuthenticatedError("The account changed during the request; log in again.")
    return fresh


def rename(unit_of_work: UnitOfWork, user: User, new_username: str) -> None:
    if new_username == user.username:
        return
    try:
        with unit_of_work() as session:
            fresh = _locked(session, user)
            if repository.username_taken(session, new_username):
                raise ConflictError(USERNAME_TAKEN)
            fresh.username = new_username
            session.flush()
    except IntegrityError as exc:
        raise ConflictError(USERNAME_TAKEN) from exc


def change_password(unit_of_work: UnitOfWork, user: User, new_password: str) -> None:
    """Store the new hash and bump the token version: every login token issued before stops working at once,
    and the personal API tokens are deleted (a password change is what someone does who fears a leak)."""
    new_hash = hash_password(new_password)
    with unit_of_work() as session:
        fresh = _locked(session, user)
        fresh.password_hash = new_hash
        fresh.token_version = (fresh.token_version + 1) % 2**31
        token_repository.delete_tokens_of(session, user.id)


def delete_account(unit_of_work: UnitOfWork, storage: Storage, user: User) -> int:
    """Cancel and delete every scene of the user, then the user; the files go after the commit (the bytes of
    unfinished resumable uploads too: their rows go with the user, as do API tokens and webhooks). Returns
    how many scenes there were."""
    with unit_of_work() as session:
        _locked(session, user)
        scene_ids = repository.scene_ids_of(session, user.id)
        upload_ids = tus_repository.upload_ids_of(session, user.id)
        state.delete_scenes(session, scene_ids)
        repository.delete_user(session, user.id)
    storage.remove_scenes(scene_ids)
    for upload_id in upload_ids:
        tus_files.remove_part(tus_files.part_path(storage.tmp_dir, upload_id))
    return len(scene_ids)
