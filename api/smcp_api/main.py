"""The FastAPI application: assembles the routers, the store, the vault and the worker."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from smcp_api import __version__, versions
from smcp_api.api.deps import authenticate
from smcp_api.api.routes import (
    artifacts,
    audit,
    auth,
    clusters,
    credentials,
    health,
    hosts,
    jobs,
    projects,
    tokens,
    users,
)
from smcp_api.audit import AuditMiddleware, AuditPruner
from smcp_api.bodies import BodyGuardMiddleware
from smcp_api.bootstrap import ensure_admin_token
from smcp_api.collection import CollectionNotFound
from smcp_api.console import mount as mount_console
from smcp_api.core.config import Settings, get_settings
from smcp_api.errors import Conflict, DomainError, NotFound, Unavailable, Unprocessable, Unreachable
from smcp_api.jobs import dispatch
from smcp_api.jobs.leases import Heartbeat
from smcp_api.jobs.worker import Worker, recover_interrupted
from smcp_api.services import Services, build_services

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
SECRET_FIELDS = {"private_key", "token", "known_hosts"}

DESCRIPTION = """
Management API of **smcp**, the self-managed Kubernetes platform (Ansible collection `smcp.platform`).

* Resources: credentials (SSH keys, encrypted, never returned), hosts, clusters, tokens.
* Operations are **jobs**: `POST /api/v1/jobs` answers 202 with the job id; a worker runs the collection
  playbook through ansible-runner. Follow it with `GET /api/v1/jobs/{id}` or the SSE event stream.
* Auth: `Authorization: Bearer <token>` everywhere but `/healthz` and `POST /api/v1/auth/login` (username and
  password -> a token); roles viewer < operator < admin, per user per project, plus platform admins.
* Projects: every record belongs to one; a request acts in the project named by the `X-SMCP-Project` header
  (name or id), else the token's project, else the user's only project, else `default`. Records of other
  projects answer 404.
* Any POST accepts an `Idempotency-Key` header; bodies may be JSON or YAML (`Content-Type: application/yaml`,
  no anchors or aliases), at most 1 MiB and 32 levels deep by default (settings `max_body_bytes`, `max_body_depth`).
"""


def _bootstrap_admin(services: Services) -> str | None:
    """On first start (no token at all): create an admin token, print it once to stderr and a 0600 file."""
    path = services.settings.token_file()
    secret = ensure_admin_token(services.sessions, path)
    if secret is not None:
        sys.stderr.write(
            f"smcp-api: bootstrap admin token (shown once; also written to {path}, mode 0600):\n{secret}\n"
        )
    return secret


def _number_for_string(field: str, value: float) -> str:
    """A YAML/JSON number where a string belongs (`kubernetes_version: 1.34`): say to quote it, with an example."""
    name = field.rsplit(".", 1)[-1]
    hint = f"{field}: {value!r} was read as a number (YAML and JSON read unquoted digits that way); quote it"
    if not name.endswith("version"):
        return f'{hint}, e.g. {name}: "{value}"'
    try:
        releases = versions.supported_versions()
    except CollectionNotFound:  # the hint without the table
        return f'{hint}, e.g. {name}: "1.35.0" (MAJOR.MINOR.PATCH)'
    same_minor = [v for v in releases if v.rsplit(".", 1)[0] == str(value)]
    example = (same_minor or releases)[-1]
    return f'{hint}, e.g. {name}: "{example}" (releases: {", ".join(releases)})'


def _field_fix(error: dict[str, Any]) -> str:
    """One line per error: the field (named once), what is wrong, the fix."""
    loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header")]
    field = ".".join(loc) or "body"
    kind = error.get("type", "")
    msg = str(error.get("msg", "invalid"))
    value = error.get("input")
    if kind == "extra_forbidden":
        return f"{field}: unknown field; remove it (the accepted fields are in the schema at /docs)"
    if kind == "missing":
        return f"{field}: required; add it"
    if kind == "json_invalid":
        ctx = error.get("ctx") or {}
        return f"body: malformed JSON ({ctx.get('error', msg)}) at position {loc[-1] if loc else '?'}; send valid JSON"
    if kind == "string_type" and isinstance(value, int | float) and not isinstance(value, bool):
        return _number_for_string(field, value)
    if kind in ("literal_error", "enum"):
        return f"{field}: {msg}"
    msg = msg.removeprefix("Value error, ")
    if not loc and kind == "value_error":  # a model-level rule: its message names the fields it is about
        return msg
    if not loc:  # the body as a whole (e.g. a list where an object belongs)
        return f"body: {msg}"
    # validators often name their field themselves ("pod_cidr '10.0.0.0/33' is not a CIDR"): name it once
    name = loc[-1]
    if msg.startswith(name) and msg[len(name) : len(name) + 1] in (" ", ":", ".", "'", ""):
        return field + msg[len(name) :]
    return f"{field}: {msg}"


async def validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    detail = []
    for error in exc.errors():
        item = {"loc": list(error.get("loc", ())), "msg": _field_fix(dict(error)), "type": error.get("type")}
        value = error.get("input")
        secret = any(str(p) in SECRET_FIELDS for p in item["loc"])
        if not secret and isinstance(value, str | int | float | bool) and len(str(value)) <= 200:
            item["input"] = value
        detail.append(item)
    return JSONResponse({"detail": detail}, status_code=422)


STATUS: dict[type[DomainError], int] = {
    NotFound: 404,
    Conflict: 409,
    Unprocessable: 422,
    Unavailable: 503,  # e.g. CollectionNotFound: the versions table and the planner come from the collection
}


def status_of(exc: DomainError) -> int:
    """The HTTP status of a domain error: the one place where services' errors become HTTP."""
    if isinstance(exc, Unreachable):
        return 504 if exc.timeout else 502
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def domain_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, DomainError)
    return JSONResponse({"detail": str(exc)}, status_code=status_of(exc))


def create_app(settings: Settings | None = None, *, start_worker: bool = True) -> FastAPI:
    """The app; the store is migrated, interrupted jobs failed and the worker started at startup."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = build_services(settings)
        recover_interrupted(services)  # only jobs whose lease ended: other replicas' running jobs stay
        services.bootstrap_token = _bootstrap_admin(services)
        # With a broker, smcp-api runs no job: it publishes job ids to the smcp-worker fleet (jobs/dispatch.py).
        publisher = dispatch.publisher(services)
        worker = Worker(services) if start_worker and settings.workers > 0 and publisher is None else None
        # Every process keeps leases: its jobs' heartbeat, and the recovery of other processes' expired ones.
        heartbeat = Heartbeat(
            services,
            slots=worker.size if worker else 0,
            running=worker.running if worker else None,
            on_lost=worker.cancel if worker else None,
        )
        heartbeat.start()
        services.heartbeat = heartbeat
        pruner = AuditPruner(services.sessions, settings.audit_retention_days, settings.audit_prune_interval)
        pruner.start()  # prunes once now, then periodically
        if worker is not None:
            services.worker = worker
            worker.start()
        elif publisher is not None:
            services.worker = publisher
        app.state.smcp = services
        try:
            yield
        finally:
            if services.worker is not None:
                services.worker.stop()
            heartbeat.stop()
            pruner.stop()
            services.engine.dispose()

    app = FastAPI(
        title="smcp management API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "health", "description": "Liveness and Prometheus metrics."},
            {"name": "auth", "description": "Log in (username and password -> token), log out, who am I."},
            {"name": "users", "description": "Users and passwords (platform admins)."},
            {"name": "projects", "description": "Projects (tenancy) and their members' roles."},
            {"name": "tokens", "description": "Bearer tokens of users, optionally scoped to a project and expiring."},
            {"name": "credentials", "description": "SSH private keys, encrypted at rest, never returned."},
            {"name": "hosts", "description": "Machines the platform manages."},
            {"name": "clusters", "description": "Kubernetes cluster specs."},
            {"name": "jobs", "description": "Operations run by the worker; status, events, cancel."},
            {"name": "artifacts", "description": "What jobs leave (etcd snapshots, cluster files), sha256-checked."},
            {"name": "audit", "description": "Who changed what, and every login (admins)."},
        ],
    )
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(DomainError, domain_error)
    # Token, size, depth and YAML checks before any route reads a body (bodies.py).
    app.add_middleware(
        BodyGuardMiddleware,
        max_body_bytes=settings.max_body_bytes,
        max_body_depth=settings.max_body_depth,
        authenticate=authenticate,
    )
    # Outermost: every mutating request is recorded, also those the body guard refuses (audit.py).
    app.add_middleware(AuditMiddleware)
    app.include_router(health.router)
    v1 = APIRouter(prefix=API_PREFIX)
    for module in (auth, users, projects, tokens, credentials, hosts, clusters, jobs, artifacts, audit):
        v1.include_router(module.router)
    app.include_router(v1)
    mount_console(app)  # the web console under /console (console/)
    return app
