"""Who is signed in to the console: the session cookie (a bearer token), the caller as the API sees it, CSRF."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from smcp_api.console.client import SESSION_COOKIE, ApiClient, csrf_for, csrf_ok
from smcp_api.security import role_allows


class NeedLogin(Exception):
    """No session, or the API refused its token (revoked, expired): the login page, coming back to `next`."""

    def __init__(self, next_url: str = "/console/", message: str | None = None) -> None:
        super().__init__(message or "sign in")
        self.next_url = next_url
        self.message = message


class Refused(Exception):
    """A console request refused before it reaches the API (bad CSRF token, foreign origin): 403 with a reason."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass
class Me:
    """The caller: name, effective role in the current project, and the projects to switch between."""

    name: str
    role: str
    platform_admin: bool = False
    project: str | None = None
    projects: list[dict[str, str]] = field(default_factory=list)

    @property
    def can_operate(self) -> bool:
        return role_allows(self.role, "operator")

    @property
    def is_admin(self) -> bool:
        return role_allows(self.role, "admin")


def _token_me(request: Request, token: str) -> Me | None:
    """Before users and projects exist (no /auth/me): the token's own name and role, with the API's token check."""
    from fastapi.security import HTTPAuthorizationCredentials

    from smcp_api.api.deps import get_current_token

    try:
        row: Any = get_current_token(
            request.app.state.smcp, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        )
    except Exception:  # the API's 401 (HTTPException): unknown or revoked
        return None
    return Me(name=row.name, role=row.role, platform_admin=row.role == "admin")


async def whoami(request: Request, api: ApiClient) -> Me:
    """The caller as `GET /api/v1/auth/me` describes it; NeedLogin when the API refuses the session's token."""
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if not api.token:
        raise NeedLogin(here)
    r = await api.get("/auth/me")
    if r.status == 401:
        raise NeedLogin(here, "your session ended (signed out, expired or revoked); sign in again")
    if r.status == 404 and api.project and "project" in " ".join(r.errors):
        # the chosen project is gone or no longer ours: fall back to the default one
        api.project = None
        r = await api.get("/auth/me")
    if r.ok and isinstance(r.data, dict):
        me = _me_from(r.data)
        if me.platform_admin:  # may act in every project
            listing = await api.get("/projects")
            known = {p["name"] for p in me.projects}
            for project in listing.data if listing.ok and isinstance(listing.data, list) else []:
                if project.get("name") not in known:
                    me.projects.append({"name": str(project["name"]), "role": "platform admin"})
        return me
    if r.status == 404:  # a build without /auth/me: tokens only
        found = await run_in_threadpool(_token_me, request, api.token)
        if found is None:
            raise NeedLogin(here, "your session ended; sign in again")
        return found
    raise NeedLogin(here, "; ".join(r.errors))


def _name(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("name") or value.get("username") or value.get("id") or "")
    return str(value or "")


def _me_from(data: dict[str, Any]) -> Me:
    user = data.get("user") or {}
    projects = []
    for binding in data.get("bindings") or user.get("bindings") or []:
        name = _name(binding.get("project"))
        if name:
            projects.append({"name": name, "role": str(binding.get("role", ""))})
    project = _name(data.get("project")) or None
    if project and not any(p["name"] == project for p in projects):
        projects.insert(0, {"name": project, "role": str(data.get("role", ""))})
    return Me(
        name=_name(user) or "?",
        role=str(data.get("role") or "viewer"),
        platform_admin=bool(data.get("platform_admin")),
        project=project,
        projects=projects,
    )


def csrf_token(request: Request) -> str:
    return csrf_for(request.cookies.get(SESSION_COOKIE, ""))


def same_origin(request: Request) -> bool:
    """A browser's Origin (or Referer) on a POST must be this console's own; absent headers pass (old browsers)."""
    origin = request.headers.get("origin") or request.headers.get("referer")
    if not origin or origin == "null":
        return origin is None
    # Host names only: behind nginx `Host` is $host, without the port the browser used (the CSRF token still
    # binds the form to the session; this refuses another site's form before the token is even read).
    host = request.headers.get("x-forwarded-host") or request.headers.get("host") or ""
    try:
        return urlsplit(origin).hostname == urlsplit(f"//{host}").hostname is not None
    except ValueError:
        return False


async def checked_form(request: Request, secret: str | None = None) -> dict[str, Any]:
    """The POSTed form once its CSRF token (and origin) check out; Refused otherwise. Files stay UploadFiles."""
    if not same_origin(request):
        raise Refused("this form was sent from another site; open the console and send it from there")
    form = await request.form(max_files=1, max_fields=200)
    key = secret if secret is not None else request.cookies.get(SESSION_COOKIE)
    sent = form.get("csrf")
    if not csrf_ok(key, sent if isinstance(sent, str) else None):
        raise Refused("the form's CSRF token is missing or stale; reload the page and send the form again")
    return {k: (form.getlist(k) if len(form.getlist(k)) > 1 else v) for k, v in form.items()}
