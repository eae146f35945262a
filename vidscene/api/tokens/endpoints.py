"""``/user/tokens``: personal API tokens for scripts. Only the login token may manage them (``CurrentUser``
refuses an API token with 403), so a leaked API token cannot mint itself successors.

HTTP only; the rules are in ``service``.
"""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, status

from vidscene.api.deps import ContextDep, CurrentUser, SessionReleasingRoute
from vidscene.api.forms import body_of, request_body_openapi
from vidscene.api.schemas import MessageOut, error_responses
from vidscene.api.tokens import service
from vidscene.api.tokens.schemas import NewTokenOut, TokenList, TokenRequest

logger = logging.getLogger(__name__)

router = APIRouter(prefix="/user/tokens", tags=["tokens"], route_class=SessionReleasingRoute)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=NewTokenOut,
             summary="Create a personal API token (its secret is shown this once)",
             responses=error_responses(400, 401, 403, 413), openapi_extra=request_body_openapi(TokenRequest))
def create_token(user: CurrentUser, body: Annotated[TokenRequest, Depends(body_of(TokenRequest))],
                 context: ContextDep) -> NewTokenOut:
    token = service.create(context.unit_of_work, user_id=user.id, request=body)
    logger.info("API token created", extra={"user_id": user.id, "token_id": token.id, "scopes": token.scopes})
    return token


@router.get("", response_model=TokenList, summary="The user's personal API tokens (never their secrets)",
            responses=error_responses(401, 403))
def list_tokens(user: CurrentUser, context: ContextDep) -> TokenList:
    return TokenList(tokens=service.list_tokens(context.unit_of_work, user_id=user.id))


@router.delete("/{token_id}", response_model=MessageOut, summary="Revoke a personal API token at once",
               responses=error_responses(401, 403, 404))
def revoke_token(token_id: str, user: CurrentUser, context: ContextDep) -> MessageOut:
    service.revoke(context.unit_of_work, user_id=user.id, token_id=token_id)
    logger.info("API token revoked", extra={"user_id": user.id, "token_id": token_id})
    return MessageOut(message="API token revoked")
