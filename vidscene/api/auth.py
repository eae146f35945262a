"""Who is calling a scene route, and whether they may: the login token (every scope) or a personal API token
(its scopes only).

Routes declare the scope they need once, through the aliases at the bottom; FastAPI's ``Security`` carries the
scope to ``get_caller`` and into the OpenAPI document (``docs/api-routes.md`` shows it per route):

- ``ScenesRead``: the caller's claims, for the polled read routes, which check ownership and revocation in
  the query that finds the scene.
- ``ScenesReadUser``, ``ScenesWrite``: the user row, checked (``deps.user_of``), for routes that write or
  work in a write transaction.

A login token (a JWT) takes exactly the path it took before: its signature is verified on the event loop and
no query is added, so a poll is still one query in one worker-thread hop. An API token needs the database
to be found (one indexed query by its hash, in one hop of its own) and is then checked against the scope.
Without a scope ``get_caller`` is login-only, like ``deps.TokenDep``: a route that forgets its scope refuses
API tokens rather than letting any of them in.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta
from functools import partial
from typing import Annotated

from fastapi import Security
from fastapi.security import SecurityScopes
from sqlalchemy import Connection
from sqlalchemy.exc import SQLAlchemyError

from vidscene.api.deps import (
    LOGIN_ONLY,
    MISSING_TOKEN,
    BearerDep,
    ContextDep,
    SessionDep,
    login_claims,
    read_in_thread,
    user_of,
)
from vidscene.api.errors import ForbiddenError, NotAuthenticatedError
from vidscene.api.security import TokenClaims, hash_api_token, is_api_token
from vidscene.api.tokens import repository
from vidscene.catalogue import SCENES_READ, SCENES_WRITE
from vidscene.db.models import User, utcnow

logger = logging.getLogger(__name__)

# ``last_used_at`` is written at most this often per token: a script polling every second costs no write per poll.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def resolve_api_token(conn: Connection, token: str, now: datetime | None = None) -> TokenClaims:
    """The claims of a personal API token: 401 when unknown (never issued, or revoked) or expired."""
    now = now or utcnow()
    row = repository.token_by_hash(conn, hash_api_token(token))
    if row is None:
        raise NotAuthenticatedError("The API token is invalid or has been revoked.")
    if row.expires_at is not None and row.expires_at <= now:
        raise NotAuthenticatedError("The API token has expired.")
    if row.last_used_at is None or row.last_used_at <= now - LAST_USED_RESOLUTION:
        try:
            repository.touch(conn, row.id, now=now, before=now - LAST_USED_RESOLUTION)
        except SQLAlchemyError:  # a busy database must not refuse the request for a bookkeeping write
            logger.warning("could not record an API token's use", exc_info=True, extra={"token_id": row.id})
    return TokenClaims(user_id=row.user_id, token_version=row.token_version, scopes=frozenset(row.scopes),
                       api_token_id=row.id)


def check_scopes(claims: TokenClaims, required: Sequence[str]) -> TokenClaims:
    """``claims`` if they allow every scope in ``required``; 403 naming the first missing one otherwise. No
    scope required means the route is the login token's alone."""
    if claims.scopes is None:
        return claims
    if not required:
        raise ForbiddenError(LOGIN_ONLY)
    for scope in required:
        if scope not in claims.scopes:
            raise ForbiddenError(f"This token lacks the {scope} scope")
    return claims


async def get_caller(security_scopes: SecurityScopes, context: ContextDep, credentials: BearerDep) -> TokenClaims:
    """The caller's claims if its token allows the scopes the route declared (``Security(..., scopes=...)``)."""
    if credentials is None:
        raise NotAuthenticatedError(MISSING_TOKEN)
    token = credentials.credentials
    if not is_api_token(token):
        return login_claims(context, token)  # the login token: every scope
    if not security_scopes.scopes:
        raise ForbiddenError(LOGIN_ONLY)
    claims = await read_in_thread(context, partial(resolve_api_token, token=token))
    return check_scopes(claims, security_scopes.scopes)


def get_scoped_user(session: SessionDep, claims: Annotated[TokenClaims, Security(get_caller)]) -> User:
    """The caller's user row (the scope comes from the alias that uses this; ``Security`` hands it down)."""
    return user_of(session, claims)


READ_SCOPES = SecurityScopes(scopes=[SCENES_READ])  # for routes that resolve the caller themselves (outputs)

ScenesRead = Annotated[TokenClaims, Security(get_caller, scopes=[SCENES_READ])]
ScenesReadUser = Annotated[User, Security(get_scoped_user, scopes=[SCENES_READ])]
ScenesWrite = Annotated[User, Security(get_scoped_user, scopes=[SCENES_WRITE])]
