"""Dependencies that routes compose through ``Annotated`` aliases: settings, a database session, the user.

The scene routes' scoped aliases (``ScenesRead``, ``ScenesWrite``), which also accept personal API tokens,
are in ``api.auth``."""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from vidscene.api.errors import ForbiddenError, NotAuthenticatedError
from vidscene.api.ratelimit import LoginRateLimiter, RegistrationRateLimiter
from vidscene.api.security import InvalidTokenError, TokenClaims, TokenCodec, is_api_token
from vidscene.config import Settings
from vidscene.db.models import User
from vidscene.db.session import read_connection, write_session
from vidscene.storage import Storage

Enqueue = Callable[[int], None]
T = TypeVar("T")


class DbThreads:
    """The small thread pool of ``read_in_thread``, created on first use and ended with the app's lifespan
    (an app whose lifespan runs again, as in tests, gets a new one)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._pool: ThreadPoolExecutor | None = None

    def executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="vidscene-db")
        return self._pool

    def shutdown(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=True)


@dataclass(frozen=True)
class AppContext:
    """Everything a request needs from the app, typed (``app.state`` itself is an untyped bag)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    storage: Storage
    tokens: TokenCodec
    login_limiter: LoginRateLimiter
    register_limiter: RegistrationRateLimiter
    enqueue: Enqueue | None
    db_threads: DbThreads
    web_dist: Path  # the built browser app (pages such as the share page are its index.html)
    enqueue_derive: Enqueue | None = None  # hands a committed derive job (``jobs.derive``) to the workers

    def unit_of_work(self) -> AbstractContextManager[Session]:
        """A write transaction that commits when the block ends (rolls back on an exception): the one place
        a request's writes commit. Services receive this method and never commit themselves; routes enqueue
        jobs only after it closed."""
        return write_session(self.sessions)


UnitOfWork = Callable[[], AbstractContextManager[Session]]


async def get_context(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.context)


ContextDep = Annotated[AppContext, Depends(get_context)]


async def get_session(context: ContextDep) -> AsyncIterator[Session]:
    """One session per request; routes commit explicitly, anything uncommitted is rolled back on exit.

    The ``function`` scope below closes it as soon as the route returns, so a long file download does not hold
    a pooled connection (or, on SQLite, an open read snapshot that blocks WAL checkpoints).

    It is an *async* dependency: creating a session does no I/O, and closing it on the event loop needs no
    worker thread. No request may hold a pooled connection while it waits for a worker thread, or under
    200 concurrent clients every thread ends up waiting for a connection held by a request that waits for a
    thread, and the server stalls until the pool times out (measured with bench/api.py). So
    ``get_current_user`` ends its transaction, and ``SessionReleasingRoute`` closes the session inside the
    route's own thread, before FastAPI validates the response in another.
    """
    session = context.sessions()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]

def _release_sessions_after(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return endpoint(*args, **kwargs)
        finally:
            for value in kwargs.values():
                if isinstance(value, Session):
                    value.close()  # returns the connection now; objects already loaded stay readable

    return run


class SessionReleasingRoute(APIRoute):
    """Sync endpoints give their database connection back before leaving their worker thread (see
    ``get_session``); FastAPI reads the wrapped signature, so dependencies and OpenAPI are unchanged."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _release_sessions_after(endpoint)
        super().__init__(path, endpoint, **kwargs)


async def read_in_thread(context: AppContext, read: Callable[[Connection], T]) -> T:
    """Run ``read`` on a pooled connection in one hop to the ``db_threads`` pool; the connection is back in
    the pool (its transaction rolled back) before the hop returns.

    The polled routes (progress, metadata, output chunks) are async and do all their database work here: a
    sync route costs three thread hops per request (dependency, endpoint, response validation). The pool is
    small (one thread per CPU by default) because more threads than cores only fight over the GIL: with
    200 clients polling flat out, anyio's 40 threads answered 800 requests/s with some waiting over 2 s,
    two threads 1180 requests/s with p99 at 1.5x the median (bench/api.py, 2 cores).
    """

    def run() -> T:
        with read_connection(context.engine) as conn:
            return read(conn)

    return await asyncio.get_running_loop().run_in_executor(context.db_threads.executor(), run)


bearer_scheme = HTTPBearer(
    auto_error=False,
    description="The `jwtToken` returned by `POST /user/account/login`, or a personal API token (`vst_...`, "
                "`POST /user/tokens`) on the scene routes its scopes allow.",
)
BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)]
MISSING_TOKEN = "Missing bearer token in the Authorization header."  # noqa: S105 - a message
LOGIN_ONLY = ("Personal API tokens cannot manage the account, API tokens or webhooks; use the token that "
              "POST /user/account/login returns.")


def login_claims(context: AppContext, token: str) -> TokenClaims:
    """The login token's verified claims (401 for a bad one). Verifying an HS256 signature takes
    microseconds, so this runs on the event loop."""
    try:
        return context.tokens.decode(token)
    except InvalidTokenError as exc:
        raise NotAuthenticatedError(str(exc)) from exc


async def get_token_claims(context: ContextDep, credentials: BearerDep) -> TokenClaims:
    """The login token's verified claims; whether the token was revoked needs the database (see below).

    Only the login token passes: a personal API token is refused with 403, so every route built on
    ``TokenDep`` or ``CurrentUser`` (the account, API tokens, webhooks) stays out of a script's reach. The
    scene routes take API tokens through ``api.auth`` (``ScenesRead``, ``ScenesWrite``) instead.
    """
    if credentials is None:
        raise NotAuthenticatedError(MISSING_TOKEN)
    if is_api_token(credentials.credentials):
        raise ForbiddenError(LOGIN_ONLY)
    return login_claims(context, credentials.credentials)


TokenDep = Annotated[TokenClaims, Depends(get_token_claims)]


def revoked_token_error() -> NotAuthenticatedError:
    return NotAuthenticatedError("The token has been revoked; log in again.")


def get_current_user(session: SessionDep, claims: TokenDep) -> User:
    """The user the login token belongs to (see ``user_of``)."""
    return user_of(session, claims)


def user_of(session: Session, claims: TokenClaims) -> User:
    """The user ``claims`` act for, refusing deleted users and tokens minted before a password change (an
    older ``token_version``)."""
    user = session.get(User, claims.user_id)
    if user is None or user.token_version != claims.token_version:
        raise revoked_token_error()
    # End the read transaction now: writes go through their own unit of work (``AppContext.unit_of_work``),
    # and on SQLite a read transaction left open would have to upgrade to a write lock, which fails under
    # concurrent writers.
    session.commit()
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def client_address(request: Request) -> str:
    """The peer address; behind a reverse proxy listed in ``VIDSCENE_FORWARDED_ALLOW_IPS`` the client it
    forwarded for (``X-Forwarded-For``, see ``create_app``)."""
    return request.client.host if request.client else "unknown"
