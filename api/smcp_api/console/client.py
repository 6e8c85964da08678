"""How the console reaches the API: every read and write is a request to the `/api/v1` routes of the same app,
in process (httpx over ASGI, no network), with the signed-in person's bearer token and chosen project.

So the console has no business layer of its own: the routes' validation (their 422 messages are what the forms
show), roles, project scoping (another project's id answers 404) and the audit log apply to what a person does in
the console exactly as to a script calling the API. The source address of the browser is handed on, so that
login throttling and the audit log see the person's address, not the console's.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

import httpx
from fastapi import Request

SESSION_COOKIE = "smcp_session"
PROJECT_COOKIE = "smcp_project"
LOGIN_COOKIE = "smcp_login"  # the CSRF secret of the login form (double submit), before there is a session
PROJECT_HEADER = "X-SMCP-Project"
INTERNAL_BASE = "http://smcp-console.internal"
CSRF_LABEL = b"smcp-console-csrf-v1"


def session_value(token: str, *, from_login: bool) -> str:
    """The session cookie: the bearer token, marked when the console's login made it (logout revokes only those;
    an API token pasted at the login form is the person's own and outlives the session)."""
    return ("login:" if from_login else "token:") + token


def session_token(value: str | None) -> tuple[str | None, bool]:
    """(token, made by the console's login) from a session cookie's value."""
    kind, sep, token = (value or "").partition(":")
    if not sep or kind not in ("login", "token") or not token:
        return None, False
    return token, kind == "login"


def csrf_for(secret: str) -> str:
    """The CSRF token of a session (or of a login form's cookie): an HMAC keyed by that secret.

    The secret lives only in an HttpOnly, SameSite cookie, so another site can neither read it nor compute the
    token; nothing is stored on the server.
    """
    return hmac.new(secret.encode(), CSRF_LABEL, hashlib.sha256).hexdigest()


def csrf_ok(secret: str | None, sent: str | None) -> bool:
    return bool(secret) and bool(sent) and hmac.compare_digest(csrf_for(secret or ""), sent or "")


def new_login_secret() -> str:
    return secrets.token_urlsafe(32)


def behind_tls(request: Request) -> bool:
    """HTTPS, directly or behind the management plane's nginx (which sets X-Forwarded-Proto)."""
    proto = request.headers.get("x-forwarded-proto", "").split(",")[0].strip().lower()
    return request.url.scheme == "https" or proto == "https"


def detail_lines(payload: Any) -> list[str]:
    """The API's error `detail` as lines: one per field error (422 lists) or the one message."""
    detail = payload.get("detail") if isinstance(payload, dict) else payload
    if isinstance(detail, list):
        return [str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail]
    return [str(detail)] if detail else []


@dataclass
class Answer:
    """An API answer: status, JSON (or text) and the error lines when it is not a 2xx."""

    status: int
    data: Any
    text: str = ""
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def errors(self) -> list[str]:
        return [] if self.ok else detail_lines(self.data) or [f"the API answered {self.status}"]


class ApiClient:
    """The API as one signed-in person sees it (token and project from the request's cookies)."""

    def __init__(self, request: Request, token: str | None = None, project: str | None = None) -> None:
        self.request = request
        self.token, self.from_login = (
            (token, False) if token is not None else session_token(request.cookies.get(SESSION_COOKIE))
        )
        self.project = project if project is not None else request.cookies.get(PROJECT_COOKIE)

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        if self.project:
            headers[PROJECT_HEADER] = self.project
        return headers

    async def call(self, method: str, path: str, **kw: Any) -> Answer:
        client_addr = self.request.client
        transport = httpx.ASGITransport(
            app=self.request.app,
            client=(client_addr.host, client_addr.port) if client_addr else ("127.0.0.1", 0),
        )
        async with httpx.AsyncClient(transport=transport, base_url=INTERNAL_BASE) as client:
            r = await client.request(method, f"/api/v1{path}", headers=self._headers(), **kw)
        try:
            data = r.json()
        except ValueError:
            data = None
        return Answer(r.status_code, data, r.text, dict(r.headers))

    async def get(self, path: str, **params: Any) -> Answer:
        return await self.call("GET", path, params={k: v for k, v in params.items() if v not in (None, "")})

    async def post(self, path: str, body: Any = None) -> Answer:
        return await self.call("POST", path, json=body) if body is not None else await self.call("POST", path)

    async def patch(self, path: str, body: Any) -> Answer:
        return await self.call("PATCH", path, json=body)

    async def put(self, path: str, body: Any) -> Answer:
        return await self.call("PUT", path, json=body)

    async def delete(self, path: str) -> Answer:
        return await self.call("DELETE", path)
