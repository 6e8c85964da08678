"""Shared dependencies: `SessionDep`, `CurrentToken`, role guards, Idempotency-Key handling."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.types import Scope

from smcp_api.errors import Unprocessable
from smcp_api.models import IdempotencyRecord, Token, utcnow
from smcp_api.schemas import Error
from smcp_api.security import hash_token, role_allows
from smcp_api.services import Services

bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` (see POST /api/v1/tokens).")
LAST_USED_GRANULARITY = timedelta(seconds=60)


def get_services(request: Request) -> Services:
    return request.app.state.smcp  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(get_services)]


def get_session(services: ServicesDep) -> Iterator[Session]:
    with services.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]


def get_current_token(
    services: ServicesDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Token:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>' (the bootstrap admin token is in the "
            "service's admin.token file)",
            headers={"WWW-Authenticate": "Bearer"},
        )
    digest = hash_token(credentials.credentials)
    with services.sessions() as session:
        token = session.scalar(select(Token).where(Token.token_hash == digest))
        if token is None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked bearer token: ask an admin for a token (POST /api/v1/tokens)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_GRANULARITY:
            token.last_used_at = now
            session.commit()
        session.expunge(token)
    return token


CurrentToken = Annotated[Token, Depends(get_current_token)]


async def authenticate(scope: Scope) -> None:
    """The routes' own token check (raises their 401) for BodyGuardMiddleware, before a body is read."""
    request = Request(scope)
    credentials = await bearer(request)
    await run_in_threadpool(get_current_token, request.app.state.smcp, credentials)


def require(role: str) -> Callable[[Token], Token]:
    def _guard(token: CurrentToken) -> Token:
        if not role_allows(token.role, role):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"token '{token.name}' has role {token.role}; this needs role {role} or higher",
            )
        return token

    return _guard


Viewer = Annotated[Token, Depends(require("viewer"))]
Operator = Annotated[Token, Depends(require("operator"))]
Admin = Annotated[Token, Depends(require("admin"))]


class Idempotency:
    """Replays the first answer to a POST carrying the same Idempotency-Key from the same token."""

    def __init__(self, key: str, request_hash: str) -> None:
        self.key = key
        self.request_hash = request_hash

    def replay(self, session: Session, token: Token) -> JSONResponse | None:
        record = session.get(IdempotencyRecord, (token.id, self.key))
        if record is None:
            return None
        if record.request_hash != self.request_hash:
            raise Unprocessable(
                f"Idempotency-Key '{self.key}' was already used with a different request; "
                "use a new key for a new request",
            )
        return JSONResponse(record.response, status_code=record.status_code, headers={"Idempotent-Replay": "true"})

    def save(self, session: Session, token: Token, status_code: int, payload: Any) -> None:
        session.add(
            IdempotencyRecord(
                token_id=token.id,
                key=self.key,
                request_hash=self.request_hash,
                status_code=status_code,
                response=jsonable_encoder(payload),
            )
        )


async def get_idempotency(request: Request) -> Idempotency | None:
    key = request.headers.get("Idempotency-Key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isprintable():
        raise Unprocessable(
            "header Idempotency-Key must be 1-255 printable characters; use e.g. a UUID",
        )
    body = await request.body()
    digest = hashlib.sha256(request.method.encode() + b" " + request.url.path.encode() + b"\n" + body).hexdigest()
    return Idempotency(key, digest)


IdempotencyDep = Annotated[Idempotency | None, Depends(get_idempotency)]


ERROR_DESCRIPTIONS = {
    401: "Missing, invalid or revoked bearer token.",
    403: "The token's role is too low for this route.",
    404: "Unknown id.",
    409: "Conflict: busy cluster or host (names the running job), name taken, or resource in use.",
    422: "Invalid request: `detail` names the field, the value and the fix.",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the error codes a route can answer (401 and 403 always)."""
    return {code: {"model": Error, "description": ERROR_DESCRIPTIONS[code]} for code in (401, 403, *codes)}
