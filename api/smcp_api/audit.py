"""The audit log: who changed what, and every login, recorded by one ASGI middleware.

`AuditMiddleware` wraps the whole app (outside the body guard, so refused requests are recorded too). For every
request whose method changes something (POST, PUT, PATCH, DELETE) it writes one `audit_log` row once the answer
is known:

* who: the bearer token is looked up by its hash before the route runs (token id, user id, user name; never the
  token itself); what the routes' dependencies add with `note()` wins; for a login, the name tried (the login
  route calls `note(request, actor=username)`);
* project: the one the request acted in (`note(project=...)`, else the `X-SMCP-Project` header);
* action: the method and the route template (`POST /api/v1/hosts/{host_id}/check`), never the raw path of an
  unknown route beyond `MAX_TEXT` characters;
* target: the route's path parameters (ids), or the `id` of the record a 201/202 answer created (only that
  field is read from the answer; request bodies are never read here, so no secret a body carries reaches the log);
* result: the HTTP status; source: the client address; at: the time.

Rows older than `audit_retention_days` are deleted at start and every `audit_prune_interval` seconds
(`AuditPruner`). The read side is `GET /api/v1/audit` (api/routes/audit.py).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from fastapi.routing import iter_route_contexts
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from smcp_api import models
from smcp_api.models import Base, utcnow

log = logging.getLogger(__name__)

MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATE_KEY = "smcp_audit"  # request.state.smcp_audit: what the routes' dependencies know about the caller
PROJECT_HEADER = "x-smcp-project"
MAX_TEXT = 255
MAX_ANSWER_BYTES = 64 * 1024  # a created record's answer is read for its `id` only up to this size
FIELDS = ("actor", "user_id", "token_id", "project", "target")


class AuditEntry(Base):
    """One recorded request: no body, no header, no query string; ids, names and the status only."""

    __tablename__ = "audit_log"
    __table_args__ = (sa.Index("ix_audit_log_at", "at"),)

    id: Mapped[int] = mapped_column(sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(default=utcnow)
    actor: Mapped[str | None] = mapped_column(sa.String(MAX_TEXT), index=True, default=None)
    user_id: Mapped[str | None] = mapped_column(sa.String(32), index=True, default=None)
    token_id: Mapped[str | None] = mapped_column(sa.String(32), default=None)
    project: Mapped[str | None] = mapped_column(sa.String(MAX_TEXT), index=True, default=None)
    method: Mapped[str] = mapped_column(sa.String(8))
    route: Mapped[str] = mapped_column(sa.String(MAX_TEXT))
    target: Mapped[str | None] = mapped_column(sa.String(MAX_TEXT), index=True, default=None)
    status: Mapped[int] = mapped_column(sa.Integer)
    source: Mapped[str | None] = mapped_column(sa.String(64), default=None)


def _clip(value: object) -> str | None:
    if value is None or value == "":
        return None
    text = str(value)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def note(request: Any, **values: object) -> None:
    """Tell the audit who the caller is (`actor`, `user_id`, `token_id`), the `project` and the `target` of this
    request; later calls add to earlier ones. `request` is a starlette Request (or anything with `.scope`)."""
    unknown = set(values) - set(FIELDS)
    if unknown:
        raise TypeError(f"audit.note: unknown fields {sorted(unknown)}; use {', '.join(FIELDS)}")
    state = request.scope.setdefault("state", {})
    record = state.setdefault(STATE_KEY, {})
    record.update({k: v for k, v in values.items() if v is not None})


Routes = list[tuple[re.Pattern[str], str, frozenset[str] | None]]


def route_table(app: Any) -> Routes:
    """(path regex, template, methods) of every route of `app`, nested routers included, in matching order."""
    table: Routes = []
    for route in iter_route_contexts(getattr(app, "routes", ())):
        path = route.path
        if isinstance(path, str) and path.startswith("/"):
            regex, template, _ = compile_path(path)
            methods = route.methods
            table.append((regex, template, frozenset(methods) if methods else None))
    return table


def route_of(app: Any, scope: Scope, table: Routes | None = None) -> tuple[str, dict[str, str]]:
    """The route template a request's path and method match, with its path parameters; a template whose path
    matches with another method (405) next; else the path itself (an unknown route)."""
    path, method = scope["path"], scope["method"]
    partial: tuple[str, dict[str, str]] | None = None
    for regex, template, methods in table if table is not None else route_table(app):
        found = regex.match(path)
        if found is None:
            continue
        if methods is None or method in methods:
            return template, found.groupdict()
        partial = partial or (template, found.groupdict())
    return partial or (path, {})


def _bearer(scope: Scope) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
    return None


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


def _created_id(status: int, content_type: str, body: bytes) -> str | None:
    if status not in (201, 202) or "json" not in content_type or not body or len(body) > MAX_ANSWER_BYTES:
        return None
    try:
        data = json.loads(body)
    except ValueError:
        return None
    value = data.get("id") if isinstance(data, dict) else None
    return str(value) if isinstance(value, str | int) and not isinstance(value, bool) else None


def token_owner(sessions: sessionmaker[Session], secret: str) -> dict[str, Any]:
    """Who a bearer token belongs to (token id, user id, user name or else token name); {} for an unknown token.
    Looked up before the route runs: a logout or a revocation deletes the token it was called with."""
    with sessions() as session:
        token = session.scalar(
            sa.select(models.Token).where(models.Token.token_hash == hashlib.sha256(secret.encode()).hexdigest())
        )
        if token is None:
            return {}
        user_id = getattr(token, "user_id", None)
        user_model = getattr(models, "User", None)
        user = session.get(user_model, user_id) if user_model is not None and user_id else None
        return {"token_id": token.id, "user_id": user_id, "actor": user.username if user else token.name}


def record(sessions: sessionmaker[Session], entry: dict[str, Any]) -> None:
    """Write one row (strings clipped to MAX_TEXT)."""
    with sessions() as session:
        session.add(AuditEntry(**{k: _clip(v) if isinstance(v, str) else v for k, v in entry.items()}))
        session.commit()


class AuditMiddleware:
    """Records every mutating request (see the module docstring). Writing the row never changes the answer: a
    failed write is logged (without the request's content) and the client gets the route's answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._routes: Routes | None = None  # built on first use: routes are all added by then

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            await self.app(scope, receive, send)
            return
        scope.setdefault("state", {})
        answer: dict[str, Any] = {"status": 500, "type": "", "body": b""}

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
                answer["type"] = next(
                    (v.decode("latin-1") for k, v in message.get("headers", ()) if k == b"content-type"), ""
                )
            elif message["type"] == "http.response.body" and answer["status"] in (201, 202):
                if len(answer["body"]) <= MAX_ANSWER_BYTES:
                    answer["body"] += message.get("body", b"")
            await send(message)

        app = scope.get("app")
        services = getattr(getattr(app, "state", None), "smcp", None)
        if services is None:  # not started (no store)
            await self.app(scope, receive, watch)
            return
        bearer = _bearer(scope)
        owner: dict[str, Any] = {}
        if bearer is not None:
            try:
                owner = await run_in_threadpool(token_owner, services.sessions, bearer)
            except Exception:
                log.exception("audit: could not look up the caller's token")
        try:
            await self.app(scope, receive, watch)
        finally:
            await self._record(app, services, scope, answer, owner)

    async def _record(
        self, app: Any, services: Any, scope: Scope, answer: dict[str, Any], owner: dict[str, Any]
    ) -> None:
        if self._routes is None:
            self._routes = route_table(app)
        route, params = route_of(app, scope, self._routes)
        known = {**owner, **scope.get("state", {}).get(STATE_KEY, {})}
        target = known.pop("target", None) or next(iter(params.values()), None)
        target = target or _created_id(answer["status"], answer["type"], answer["body"])
        entry: dict[str, Any] = {
            "at": utcnow(),
            "method": scope["method"],
            "route": route,
            "status": answer["status"],
            "source": (scope.get("client") or (None,))[0],
            "target": target,
            "project": known.pop("project", None) or _header(scope, PROJECT_HEADER.encode()),
            **known,
        }
        try:
            await run_in_threadpool(record, services.sessions, entry)
        except Exception:  # the answer is sent; the audit must not turn it into an error
            log.exception("audit: could not record %s %s (status %s)", entry["method"], route, entry["status"])


def prune(sessions: sessionmaker[Session], retention_days: int, now: datetime | None = None) -> int:
    """Delete the rows older than `retention_days`; the number deleted."""
    cutoff = (now or utcnow()) - timedelta(days=retention_days)
    with sessions() as session:
        result = session.execute(sa.delete(AuditEntry).where(AuditEntry.at < cutoff))
        session.commit()
    return int(getattr(result, "rowcount", 0) or 0)


class AuditPruner:
    """Prunes at `start()` and then every `interval` seconds in a daemon thread until `stop()`."""

    def __init__(self, sessions: sessionmaker[Session], retention_days: int, interval: float) -> None:
        self.sessions = sessions
        self.retention_days = retention_days
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def prune_once(self) -> None:
        try:
            deleted = prune(self.sessions, self.retention_days)
        except Exception:
            log.exception("audit: pruning entries older than %s days failed", self.retention_days)
            return
        if deleted:
            log.info("audit: deleted %s entries older than %s days", deleted, self.retention_days)

    def start(self) -> None:
        self.prune_once()
        self._thread = threading.Thread(target=self._run, name="smcp-audit-prune", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.prune_once()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
