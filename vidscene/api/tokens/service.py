"""The rules of personal API tokens: a user makes, lists and revokes their own; the secret is shown once and
only its hash is stored (``security.hash_api_token``). No HTTP and no commit here."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import cast

from vidscene.api.deps import UnitOfWork
from vidscene.api.errors import BadRequestError, NotFoundError
from vidscene.api.security import hash_api_token, new_api_token
from vidscene.api.tokens import repository
from vidscene.api.tokens.schemas import ApiTokenOut, NewTokenOut, Scope, TokenRequest
from vidscene.catalogue import API_SCOPES
from vidscene.db.models import ApiToken, utcnow

MAX_TOKENS_PER_USER = 100


def token_out(token: ApiToken) -> ApiTokenOut:
    return ApiTokenOut(id=token.id, name=token.name, scopes=cast(list[Scope], token.scopes),
                    created_at=token.created_at, expires_at=token.expires_at, last_used_at=token.last_used_at)


def create(unit_of_work: UnitOfWork, *, user_id: int, request: TokenRequest) -> NewTokenOut:
    """A new token for the user; its secret is in the answer and nowhere else."""
    name = request.name.strip()
    if not name:
        raise BadRequestError("Invalid name: give the token a name.")
    scopes = [scope for scope in API_SCOPES if scope in request.scopes]  # catalogue order, no duplicates
    secret = new_api_token()
    now = utcnow()
    expires = now + timedelta(days=request.expires_in_days) if request.expires_in_days else None
    with unit_of_work() as session:
        if repository.count_of(session, user_id) >= MAX_TOKENS_PER_USER:
            raise BadRequestError(f"You have {MAX_TOKENS_PER_USER} API tokens; revoke one before making another.")
        token = repository.add_token(session, ApiToken(
            id=secrets.token_urlsafe(12), user_id=user_id, name=name, token_hash=hash_api_token(secret),
            scopes=scopes, created_at=now, expires_at=expires))
        return NewTokenOut(**token_out(token).model_dump(), token=secret)


def list_tokens(unit_of_work: UnitOfWork, *, user_id: int) -> list[ApiTokenOut]:
    with unit_of_work() as session:
        return [token_out(token) for token in repository.tokens_of(session, user_id)]


def revoke(unit_of_work: UnitOfWork, *, user_id: int, token_id: str) -> None:
    """Delete the token: the next request with it is refused (401). Another user's token is 404."""
    with unit_of_work() as session:
        if not repository.delete_token(session, user_id, token_id):
            raise NotFoundError("API token not found.")
