"""API tokens (admin only): create (secret shown once), list, revoke."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.encoders import jsonable_encoder
from sqlalchemy import func, select

from smcp_api.api.deps import Admin, IdempotencyDep, SessionDep, errors
from smcp_api.api.routing import create_route, delete_route
from smcp_api.api.rows import get_or_404
from smcp_api.api.writes import create_once
from smcp_api.errors import Conflict
from smcp_api.models import Token
from smcp_api.schemas import TokenCreate, TokenCreated, TokenOut
from smcp_api.security import hash_token, new_token

router = APIRouter(prefix="/tokens", tags=["tokens"])


@create_route(router, TokenCreated, "Create a token", "Returns the bearer token once; only its sha256 is stored.")
def create_token(body: TokenCreate, admin: Admin, session: SessionDep, idem: IdempotencyDep) -> object:
    secret = new_token()
    return create_once(
        session,
        admin,
        idem,
        what=f"a token named '{body.name}'",
        build=lambda: Token(name=body.name, role=body.role, token_hash=hash_token(secret)),
        respond=lambda token: TokenCreated(
            **TokenOut.model_validate(token, from_attributes=True).model_dump(), token=secret
        ),
        replayed=lambda out: {**jsonable_encoder(out), "token": None},  # the secret is shown once
    )


@router.get("", response_model=list[TokenOut], summary="List tokens", responses=errors())
def list_tokens(_: Admin, session: SessionDep) -> list[Token]:
    """Every token with its role and last use (never the secret or its hash)."""
    return list(session.scalars(select(Token).order_by(Token.created_at)))


@delete_route(router, "/{token_id}", "Revoke a token", "The last admin token cannot be revoked (409).")
def delete_token(token_id: str, _: Admin, session: SessionDep) -> Response:
    token = get_or_404(session, Token, token_id, "token")
    if token.role == "admin":
        admins = session.scalar(select(func.count()).select_from(Token).where(Token.role == "admin"))
        if admins == 1:
            raise Conflict(f"token '{token.name}' is the last admin token; create another admin first")
    session.delete(token)
    session.commit()
    return Response(status_code=204)
