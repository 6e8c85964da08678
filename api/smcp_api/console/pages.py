"""The console's pages: server-rendered Jinja2, every read and write through the API (console/client.py).

Pages show what the caller's role allows; the buttons a viewer does not see would be refused by the API anyway
(its 403 is shown). Forms carry a CSRF token and answer with the API's own validation messages.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from smcp_api.bodies import BodyRefused, yaml_to_json
from smcp_api.console.client import (
    LOGIN_COOKIE,
    PROJECT_COOKIE,
    PROJECT_HEADER,
    SESSION_COOKIE,
    Answer,
    ApiClient,
    behind_tls,
    csrf_for,
    new_login_secret,
    session_value,
)
from smcp_api.console.session import Me, NeedLogin, Refused, checked_form, csrf_token, whoami
from smcp_api.jobstates import FINISHED
from smcp_api.operations import OPERATIONS

router = APIRouter(prefix="/console", include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
PER_PAGE = 50
MAX_PAGE = 10_000
SESSION_SECONDS = 43200  # 12 h: the login token's lifetime and the cookie's
CLUSTER_ACTIONS = {
    "preflight": "Run the preflight checks on every host of the cluster (changes nothing).",
    "prepare_hosts": "Preflight, then prepare every host (swap, kernel modules, sysctls, packages, containerd).",
    "create_cluster": "Build the cluster as specified: etcd, load balancer, control planes, workers, CNI.",
    "add_nodes": "Join the chosen free hosts to the cluster as new nodes.",
    "upgrade": "Upgrade Kubernetes to the chosen release, following the plan below.",
    "certs": "Report the expiry of every certificate and renew those inside the threshold.",
    "etcd_backup": "Take an etcd snapshot on a healthy member and keep it in the management plane's store.",
}
MAX_TEXT = 64 * 1024  # a private key, known_hosts or vars field
SSE_EVENT_LINE = re.compile(r"\nevent: [^\n]*\n")


# ---------------------------------------------------------------- helpers
# Scripts and styles from the console's own static files only, no framing (the action buttons cannot be
# clickjacked), forms posted only here, no caching of pages that show records.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def render(request: Request, name: str, me: Me | None, status: int = 200, **context: Any) -> HTMLResponse:
    context.update(me=me, csrf=csrf_token(request), path=request.url.path)
    return templates.TemplateResponse(request, name, context, status_code=status, headers=PAGE_HEADERS)


async def caller(request: Request) -> tuple[ApiClient, Me]:
    api = ApiClient(request)
    return api, await whoami(request, api)


def _page(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return min(int(raw), MAX_PAGE) if raw.isdigit() and int(raw) > 0 else 1


def paginate(items: list[Any], page: int, more: bool = False) -> dict[str, Any]:
    """One page of `items` and the numbers the pager shows; `more`: the API has rows past `items`."""
    pages = max(1, math.ceil(len(items) / PER_PAGE))
    page = min(page, pages)
    start = (page - 1) * PER_PAGE
    return {
        "rows": items[start : start + PER_PAGE],
        "page": page,
        "pages": pages,
        "total": len(items),
        "more": more,
        "first": start + 1 if items else 0,
        "last": min(start + PER_PAGE, len(items)),
    }


def page_url(request: Request, page: int) -> str:
    params = dict(request.query_params)
    params["page"] = str(page)
    return f"{request.url.path}?{urlencode(params)}"


def api_error_page(request: Request, me: Me, answer: Answer, title: str | None = None) -> HTMLResponse:
    """A 404 (unknown or another project's id: the API answers alike), 403 or other refusal, as a page; `title`
    names what did not happen (default: the kind of refusal)."""
    title = title or {404: "Not found", 403: "Not allowed"}.get(answer.status, f"Refused ({answer.status})")
    return render(request, "error.html", me, status=answer.status, title=title, errors=answer.errors)


def _text(form: dict[str, Any], key: str, limit: int = 1000) -> str:
    value = form.get(key, "")
    if isinstance(value, list):
        value = value[-1] if value else ""
    return value.strip()[:limit] if isinstance(value, str) else ""


def _list(form: dict[str, Any], key: str) -> list[str]:
    value = form.get(key, [])
    return [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str) and v]


def parse_labels(text: str) -> tuple[dict[str, str], list[str]]:
    """`key=value` lines (blank lines ignored) as labels; the lines that are not `key=value` as problems."""
    labels: dict[str, str] = {}
    problems = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep or not key.strip():
            problems.append(f"labels: line {n} '{line.strip()[:80]}' is not key=value; write one label per line")
            continue
        labels[key.strip()] = value.strip()
    return labels, problems


def parse_vars(request: Request, text: str) -> tuple[dict[str, Any], list[str]]:
    """A YAML (or JSON) mapping read with the API's own body reader (no aliases, no tags, its depth limit)."""
    if not text.strip():
        return {}, []
    depth = request.app.state.smcp.settings.max_body_depth
    try:
        data = json.loads(yaml_to_json(text.encode(), depth))
    except BodyRefused as exc:
        return {}, [exc.detail.replace("body:", "vars:", 1)]
    if not isinstance(data, dict):
        return {}, ["vars: write a YAML mapping (one 'name: value' per line)"]
    return data, []


def label_filter(raw: str) -> tuple[dict[str, str], list[str]]:
    """`?labels=env=prod,rack=a` as a mapping (every pair must match)."""
    return parse_labels(raw.replace(",", "\n"))


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _safe_next(value: str) -> str:
    return value if value.startswith("/console") and "//" not in value and "\\" not in value else "/console/"


# ---------------------------------------------------------------- login / logout / project
def _login_form(request: Request, status: int = 200, **context: Any) -> HTMLResponse:
    secret = request.cookies.get(LOGIN_COOKIE) or new_login_secret()
    context.setdefault("next", _safe_next(request.query_params.get("next", "/console/")))
    response = templates.TemplateResponse(
        request,
        "login.html",
        {"me": None, "csrf": csrf_for(secret), "path": request.url.path, **context},
        status_code=status,
        headers=PAGE_HEADERS,
    )
    response.set_cookie(
        LOGIN_COOKIE, secret, httponly=True, samesite="strict", secure=behind_tls(request), path="/console"
    )
    return response


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request) -> HTMLResponse:
    return _login_form(request, message=request.query_params.get("message"))


@router.post("/login", response_class=HTMLResponse)
async def login(request: Request) -> Response:
    form = await checked_form(request, secret=request.cookies.get(LOGIN_COOKIE))
    next_url = _safe_next(_text(form, "next"))
    username = _text(form, "username", 64)
    password = form.get("password", "")
    password = password if isinstance(password, str) else ""
    token = _text(form, "token", 200)
    api = ApiClient(request, token="", project="")
    from_login = False
    if username:
        body = {"username": username, "password": password[:1024], "expires_in": SESSION_SECONDS}
        r = await api.post("/auth/login", body)
        if r.status == 404:
            errors = ["this smcp-api has no user accounts yet; sign in with an API token"]
        elif not r.ok:
            errors = r.errors
            if r.status == 429 and r.headers.get("retry-after"):
                errors.append(f"try again in {r.headers['retry-after']} s")
        if not r.ok:
            return _login_form(request, status=r.status if r.status != 404 else 401, errors=errors, username=username)
        token = str(r.data.get("token", ""))
        from_login = True
    elif not token:
        return _login_form(request, status=422, errors=["username: give your username and password (or an API token)"])
    session = ApiClient(request, token=token, project="")
    try:
        me = await whoami(request, session)
    except NeedLogin:
        return _login_form(request, status=401, errors=["token: the API does not know this token (or it expired)"])
    response = _redirect(next_url)
    secure = behind_tls(request)
    response.set_cookie(
        SESSION_COOKIE,
        session_value(token, from_login=from_login),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=secure,
        path="/",
    )
    response.set_cookie(PROJECT_COOKIE, me.project or "", httponly=True, samesite="strict", secure=secure, path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/console")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    api = ApiClient(request)
    if api.token and api.from_login:
        await api.post("/auth/logout")  # revokes the token the login made; a pasted API token is the person's own
    response = _redirect("/console/login?message=" + quote("signed out"))
    response.delete_cookie(SESSION_COOKIE, path="/")
    response.delete_cookie(PROJECT_COOKIE, path="/")
    return response


@router.post("/project")
async def switch_project(request: Request) -> Response:
    form = await checked_form(request)
    _, me = await caller(request)
    wanted = _text(form, "project", 63)
    probe = ApiClient(request, project=wanted)
    r = await probe.get("/auth/me")
    if not r.ok:
        return render(request, "error.html", me, status=r.status, title="Not found", errors=r.errors)
    response = _redirect("/console/")
    response.set_cookie(PROJECT_COOKIE, wanted, httponly=True, samesite="strict", secure=behind_tls(request), path="/")
    return response


# ---------------------------------------------------------------- overview
def _latest_by_cluster(jobs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    latest: dict[str, dict[str, Any]] = {}
    for job in jobs:  # newest first
        if job.get("cluster_id"):
            latest.setdefault(job["cluster_id"], job)
    return latest


def cluster_state(cluster: dict[str, Any], latest: dict[str, Any] | None) -> str:
    if latest is None:
        return "no recent job"
    status = latest["status"]
    if status in ("pending", "running"):
        return f"{latest['operation']} {status}"
    return f"last {latest['operation']}: {status}"


@router.get("/", response_class=HTMLResponse)
async def overview(request: Request) -> HTMLResponse:
    api, me = await caller(request)
    clusters, jobs, running, pending, failed = (
        await api.get("/clusters"),
        await api.get("/jobs", limit=200),  # the newest: each cluster's state is its latest job among them
        await api.get("/jobs", status="running", limit=50),
        await api.get("/jobs", status="pending", limit=50),
        await api.get("/jobs", status="failed", limit=10),
    )
    for answer in (clusters, jobs, running, pending, failed):
        if not answer.ok:
            return api_error_page(request, me, answer)
    latest = _latest_by_cluster(jobs.data)
    rows = [{**c, "nodes": len(c["hosts"]), "state": cluster_state(c, latest.get(c["id"]))} for c in clusters.data]
    active = [*running.data, *pending.data]
    return render(request, "overview.html", me, clusters=rows, running=active, failures=failed.data)


# ---------------------------------------------------------------- clusters
async def _plan(request: Request, cluster_id: str, target: str) -> tuple[dict[str, Any] | None, list[str]]:
    """The upgrade plan the API's own check (jobs.service.check_upgrade, the collection's planner) makes."""
    from smcp_api.errors import DomainError
    from smcp_api.jobs.service import check_upgrade
    from smcp_api.models import Cluster, Host

    services = request.app.state.smcp

    def plan() -> tuple[dict[str, Any] | None, list[str]]:
        with services.sessions() as session:
            cluster = session.get(Cluster, cluster_id)
            if cluster is None:
                return None, [f"cluster '{cluster_id}' does not exist"]
            hosts = list(session.query(Host).filter(Host.cluster_id == cluster_id).order_by(Host.name))
            try:
                return check_upgrade(cluster, hosts, {"smcp_kubernetes_version": target}), []
            except DomainError as exc:
                return None, [str(exc)]

    return await run_in_threadpool(plan)


def _versions() -> list[str]:
    from smcp_api import versions
    from smcp_api.collection import CollectionNotFound

    try:
        return versions.supported_versions()
    except CollectionNotFound:
        return []


@router.get("/clusters/{cluster_id}", response_class=HTMLResponse)
async def cluster_page(request: Request, cluster_id: str) -> HTMLResponse:
    api, me = await caller(request)
    cluster = await api.get(f"/clusters/{quote(cluster_id)}")  # 404 for an unknown id or another project's
    if not cluster.ok:
        return api_error_page(request, me, cluster)
    hosts, jobs, all_hosts = (
        await api.get("/hosts", cluster_id=cluster_id),
        await api.get("/jobs", cluster_id=cluster_id, limit=20),
        await api.get("/hosts"),
    )
    roles = {h["host_id"]: h["roles"] for h in cluster.data["hosts"]}
    target = request.query_params.get("target", "")[:32]
    plan, plan_errors = (await _plan(request, cluster_id, target)) if target else (None, [])
    free = [h for h in (all_hosts.data if all_hosts.ok else []) if not h.get("cluster_id")]
    return render(
        request,
        "cluster.html",
        me,
        cluster=cluster.data,
        hosts=[{**h, "cluster_roles": roles.get(h["id"], [])} for h in (hosts.data if hosts.ok else [])],
        jobs=jobs.data if jobs.ok else [],
        versions=_versions(),
        target=target,
        plan=plan,
        plan_errors=plan_errors,
        actions=CLUSTER_ACTIONS,
        free_hosts=free[:200],
    )


def _job_body(cluster_id: str, operation: str, values: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {"operation": operation, "cluster_id": cluster_id}
    if operation == "add_nodes":
        body["host_ids"] = _list(values, "host_ids")
    if operation == "upgrade":
        body["params"] = {"extra_vars": {"smcp_kubernetes_version": _text(values, "target", 32)}}
    return body


async def _confirm(
    request: Request, me: Me, api: ApiClient, cluster_id: str, values: dict[str, Any], errors: list[str], status: int
) -> HTMLResponse:
    operation = _text(values, "operation", 32)
    cluster = await api.get(f"/clusters/{quote(cluster_id)}")
    if not cluster.ok:
        return api_error_page(request, me, cluster)
    if operation not in CLUSTER_ACTIONS:
        return render(
            request,
            "error.html",
            me,
            status=422,
            title="Unknown action",
            errors=[
                f"operation: '{operation[:32]}' is not an action of this page; use one of " + ", ".join(CLUSTER_ACTIONS)
            ],
        )
    body = _job_body(cluster_id, operation, values)
    hosts = await api.get("/hosts")
    names = {h["id"]: h["name"] for h in (hosts.data if hosts.ok else [])}
    members = [h["host_id"] for h in cluster.data["hosts"]]
    targets = [names.get(i, i) for i in (members + list(body.get("host_ids") or []))]
    plan: dict[str, Any] | None = None
    plan_errors: list[str] = []
    if operation == "upgrade":
        plan, plan_errors = await _plan(request, cluster_id, _text(values, "target", 32))
    return render(
        request,
        "confirm.html",
        me,
        status=status,
        cluster=cluster.data,
        operation=operation,
        description=CLUSTER_ACTIONS[operation],
        playbook=f"smcp.platform.{OPERATIONS[operation]}",
        targets=targets,
        body=body,
        body_json=json.dumps(body, indent=2),
        plan=plan,
        errors=errors + plan_errors,
        values={"target": _text(values, "target", 32), "host_ids": body.get("host_ids") or []},
    )


@router.get("/clusters/{cluster_id}/confirm", response_class=HTMLResponse)
async def confirm_action(request: Request, cluster_id: str) -> HTMLResponse:
    api, me = await caller(request)
    values: dict[str, Any] = {k: request.query_params.getlist(k) for k in ("host_ids",)}
    values.update({k: request.query_params.get(k, "") for k in ("operation", "target")})
    return await _confirm(request, me, api, cluster_id, values, [], 200)


@router.post("/clusters/{cluster_id}/run")
async def run_action(request: Request, cluster_id: str) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    operation = _text(form, "operation", 32)
    if operation not in CLUSTER_ACTIONS:
        return await _confirm(request, me, api, cluster_id, form, [], 422)
    r = await api.post("/jobs", _job_body(cluster_id, operation, form))
    if r.ok:
        return _redirect(f"/console/jobs/{r.data['id']}")
    if r.status == 404:
        return api_error_page(request, me, r)
    return await _confirm(request, me, api, cluster_id, form, r.errors, r.status)


# ---------------------------------------------------------------- hosts
@router.get("/hosts", response_class=HTMLResponse)
async def hosts_page(request: Request) -> HTMLResponse:
    api, me = await caller(request)
    r = await api.get("/hosts")
    if not r.ok:
        return api_error_page(request, me, r)
    raw = request.query_params.get("labels", "")[:500]
    wanted, problems = label_filter(raw)
    name = request.query_params.get("q", "")[:100].strip().lower()
    rows = [
        h
        for h in r.data
        if all(str(h["labels"].get(k)) == v for k, v in wanted.items()) and (not name or name in h["name"].lower())
    ]
    pager = paginate(rows, _page(request))
    clusters = await api.get("/clusters")
    names = {c["id"]: c["name"] for c in (clusters.data if clusters.ok else [])}
    return render(
        request,
        "hosts.html",
        me,
        pager=pager,
        cluster_names=names,
        labels=raw,
        q=name,
        errors=problems,
        prev_url=page_url(request, pager["page"] - 1),
        next_url=page_url(request, pager["page"] + 1),
    )


def _host_values(request: Request, form: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    labels, problems = parse_labels(_text(form, "labels", MAX_TEXT))
    variables, var_problems = parse_vars(request, _text(form, "vars", MAX_TEXT))
    body: dict[str, Any] = {
        "name": _text(form, "name", 253),
        "address": _text(form, "address", 253),
        "ssh_user": _text(form, "ssh_user", 64),
        "credential_id": _text(form, "credential_id", 64),
        "roles": _list(form, "roles"),
        "labels": labels,
        "vars": variables,
    }
    port = _text(form, "ssh_port", 10)
    body["ssh_port"] = int(port) if port.isdigit() else port or 22
    known = _text(form, "known_hosts", MAX_TEXT)
    body["known_hosts"] = known or None
    return body, problems + var_problems


def _form_values(body: dict[str, Any]) -> dict[str, Any]:
    """What a host form shows again: labels as lines, vars as JSON."""
    values = dict(body)
    values["labels"] = "\n".join(f"{k}={v}" for k, v in (body.get("labels") or {}).items())
    values["vars"] = json.dumps(body.get("vars") or {}, indent=2) if body.get("vars") else ""
    return values


async def _credentials(api: ApiClient) -> list[dict[str, Any]]:
    r = await api.get("/credentials")
    return r.data if r.ok else []


@router.get("/hosts/new", response_class=HTMLResponse)
async def new_host_page(request: Request) -> HTMLResponse:
    api, me = await caller(request)
    values = {"ssh_port": 22, "ssh_user": "root", "roles": [], "labels": "", "vars": ""}
    return render(request, "host_form.html", me, values=values, credentials=await _credentials(api), host=None)


@router.post("/hosts/new", response_class=HTMLResponse)
async def create_host(request: Request) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    body, problems = _host_values(request, form)
    values = {**_form_values(body), "labels": _text(form, "labels", MAX_TEXT), "vars": _text(form, "vars", MAX_TEXT)}
    if problems:
        return render(
            request,
            "host_form.html",
            me,
            status=422,
            values=values,
            errors=problems,
            credentials=await _credentials(api),
            host=None,
        )
    r = await api.post("/hosts", body)
    if r.ok:
        return _redirect(f"/console/hosts/{r.data['id']}")
    return render(
        request,
        "host_form.html",
        me,
        status=r.status,
        values=values,
        errors=r.errors,
        credentials=await _credentials(api),
        host=None,
    )


@router.get("/hosts/{host_id}", response_class=HTMLResponse)
async def host_page(request: Request, host_id: str) -> HTMLResponse:
    api, me = await caller(request)
    r = await api.get(f"/hosts/{quote(host_id)}")
    if not r.ok:
        return api_error_page(request, me, r)
    return render(
        request, "host.html", me, host=r.data, values=_form_values(r.data), credentials=await _credentials(api)
    )


@router.post("/hosts/{host_id}", response_class=HTMLResponse)
async def update_host(request: Request, host_id: str) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    current = await api.get(f"/hosts/{quote(host_id)}")
    if not current.ok:
        return api_error_page(request, me, current)
    body, problems = _host_values(request, form)
    body.pop("name")
    changes = {k: v for k, v in body.items() if v != current.data.get(k)}
    if not problems and changes:
        r = await api.patch(f"/hosts/{quote(host_id)}", changes)
        if r.ok:
            return _redirect(f"/console/hosts/{host_id}?saved=1")
        problems = r.errors
    values = {
        **_form_values({**current.data, **body}),
        "labels": _text(form, "labels", MAX_TEXT),
        "vars": _text(form, "vars", MAX_TEXT),
    }
    return render(
        request,
        "host.html",
        me,
        status=422 if problems else 200,
        host=current.data,
        values=values,
        errors=problems,
        credentials=await _credentials(api),
    )


@router.post("/hosts/{host_id}/check")
async def check_host(request: Request, host_id: str) -> Response:
    await checked_form(request)
    api, me = await caller(request)
    r = await api.post(f"/hosts/{quote(host_id)}/check")
    if r.ok:
        return _redirect(f"/console/jobs/{r.data['id']}")
    return api_error_page(request, me, r)


# ---------------------------------------------------------------- jobs
JOB_STATUSES = ("pending", "running", "successful", "failed", "canceled", "error")


@router.get("/jobs", response_class=HTMLResponse)
async def jobs_page(request: Request) -> HTMLResponse:
    api, me = await caller(request)
    page = _page(request)
    status = request.query_params.get("status", "")
    status = status if status in JOB_STATUSES else ""
    operation = request.query_params.get("operation", "")
    operation = operation if operation in OPERATIONS else ""
    cluster_id = request.query_params.get("cluster_id", "")[:32]
    want = 1000 if operation else min(1000, page * PER_PAGE + 1)  # the API's newest-first list, at most 1000
    r = await api.get("/jobs", status=status, cluster_id=cluster_id, limit=want)
    if not r.ok:
        return api_error_page(request, me, r)
    rows = [j for j in r.data if not operation or j["operation"] == operation]
    more = len(r.data) >= want
    if not operation and len(rows) > page * PER_PAGE:
        rows = rows[: page * PER_PAGE]
    pager = paginate(rows, page, more=more)
    return render(
        request,
        "jobs.html",
        me,
        pager=pager,
        status_filter=status,
        operation=operation,
        cluster_id=cluster_id,
        statuses=JOB_STATUSES,
        operations=list(OPERATIONS),
        prev_url=page_url(request, pager["page"] - 1),
        next_url=page_url(request, pager["page"] + 1),
    )


@router.get("/jobs/{job_id}", response_class=HTMLResponse)
async def job_page(request: Request, job_id: str) -> HTMLResponse:
    api, me = await caller(request)
    r = await api.get(f"/jobs/{quote(job_id)}")
    if not r.ok:
        return api_error_page(request, me, r)
    return render(request, "job.html", me, job=r.data, finished=r.data["status"] in FINISHED)


@router.get("/jobs/{job_id}/progress", response_class=HTMLResponse)
async def job_progress(request: Request, job_id: str) -> HTMLResponse:
    """The status and per-host table, re-fetched by htmx every 2 s while the job runs."""
    api, me = await caller(request)
    r = await api.get(f"/jobs/{quote(job_id)}")
    if not r.ok:
        return api_error_page(request, me, r)
    return render(request, "job_progress.html", me, job=r.data, finished=r.data["status"] in FINISHED)


@router.get("/jobs/{job_id}/stream")
async def job_stream(request: Request, job_id: str) -> Response:
    """The job's event stream for the page's EventSource: the API's own SSE route, called in process as the
    signed-in person (its role and project checks; 404 for another project's job), relayed as it is written."""
    api = ApiClient(request)
    if not api.token:
        return Response(status_code=401)
    headers = [(b"authorization", f"Bearer {api.token}".encode()), (b"accept", b"text/event-stream")]
    if api.project:
        headers.append((PROJECT_HEADER.lower().encode(), api.project.encode()))
    last = request.headers.get("last-event-id")
    if last:
        headers.append((b"last-event-id", last[:20].encode()))
    path = f"/api/v1/jobs/{quote(job_id, safe='')}/events/stream"
    after = request.query_params.get("after", "")
    return _Relay(
        request.app,
        {
            "type": "http",
            "asgi": request.scope.get("asgi", {"version": "3.0"}),
            "http_version": request.scope.get("http_version", "1.1"),
            "method": "GET",
            "scheme": request.url.scheme,
            "server": request.scope.get("server"),
            "client": request.scope.get("client"),
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": f"after={after}".encode() if after.isdigit() and len(after) < 11 else b"",
            "headers": headers,
            "state": {},
        },
    )


class _Relay(Response):
    """Answers with what the app answers to `scope` (streamed as it comes), each SSE message's Ansible event name
    dropped (it stays in `data`) so that the page's EventSource gets it as a plain message; `event: end` stays."""

    def __init__(self, app: Any, scope: dict[str, Any]) -> None:
        super().__init__()
        self.app = app
        self.inner = scope

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def relay(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                text = bytes(message["body"]).decode()
                if text.startswith("id: ") and "\nevent: end\n" not in text:
                    message = {**message, "body": SSE_EVENT_LINE.sub("\n", text, count=1).encode()}
            await send(message)

        await self.app(self.inner, receive, relay)


@router.post("/jobs/{job_id}/cancel")
async def cancel_job(request: Request, job_id: str) -> Response:
    await checked_form(request)
    api, me = await caller(request)
    r = await api.post(f"/jobs/{quote(job_id)}/cancel")
    if r.ok or r.status == 409:  # 409: it finished meanwhile; the page says how
        return _redirect(f"/console/jobs/{job_id}")
    return api_error_page(request, me, r)


# ---------------------------------------------------------------- credentials
@router.get("/credentials", response_class=HTMLResponse)
async def credentials_page(request: Request) -> HTMLResponse:
    api, me = await caller(request)
    r = await api.get("/credentials")
    if not r.ok:
        return api_error_page(request, me, r)
    return render(request, "credentials.html", me, credentials=r.data, values={})


@router.post("/credentials", response_class=HTMLResponse)
async def create_credential(request: Request) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    key = _text(form, "private_key", MAX_TEXT)
    upload = form.get("key_file")
    if isinstance(upload, UploadFile) and upload.filename:
        raw = await upload.read(MAX_TEXT + 1)
        key = raw.decode("utf-8", "replace").strip() if len(raw) <= MAX_TEXT else "<too large>"
    body: dict[str, Any] = {"name": _text(form, "name", 100), "private_key": key + "\n" if key else ""}
    if username := _text(form, "username", 64):
        body["username"] = username
    r = await api.post("/credentials", body)
    if r.ok:
        return _redirect(f"/console/credentials?added={quote(r.data['name'])}")
    listing = await api.get("/credentials")
    values = {"name": body["name"], "username": username}  # never the key
    return render(
        request,
        "credentials.html",
        me,
        status=r.status,
        credentials=listing.data if listing.ok else [],
        errors=r.errors,
        values=values,
    )


# ---------------------------------------------------------------- admin: tokens, users, projects, audit
@router.get("/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request) -> HTMLResponse:
    api, me = await caller(request)
    r = await api.get("/tokens")
    if not r.ok:
        return api_error_page(request, me, r)
    return render(request, "tokens.html", me, tokens=r.data, created=None)


@router.post("/tokens", response_class=HTMLResponse)
async def create_token(request: Request) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    body: dict[str, Any] = {"name": _text(form, "name", 100), "role": _text(form, "role", 16)}
    if expires := _text(form, "expires_in", 10):
        body["expires_in"] = int(expires) if expires.isdigit() else expires
    r = await api.post("/tokens", body)
    listing = await api.get("/tokens")
    tokens = listing.data if listing.ok else []
    if r.ok:  # the secret is shown on this answer only
        return render(request, "tokens.html", me, status=201, tokens=tokens, created=r.data)
    return render(request, "tokens.html", me, status=r.status, tokens=tokens, created=None, errors=r.errors)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(request: Request, token_id: str) -> Response:
    await checked_form(request)
    api, me = await caller(request)
    r = await api.delete(f"/tokens/{quote(token_id)}")
    if r.ok:
        return _redirect("/console/tokens")
    return api_error_page(request, me, r)


async def _listing(request: Request, path: str, template: str, **params: Any) -> HTMLResponse:
    api, me = await caller(request)
    r = await api.get(path, **params)
    if r.status == 404 and "Not Found" in r.errors:
        return render(
            request,
            "error.html",
            me,
            status=404,
            title="Not available",
            errors=[f"this smcp-api has no {path.strip('/')} route yet"],
        )
    if not r.ok:
        return api_error_page(request, me, r)
    rows = r.data if isinstance(r.data, list) else (r.data or {}).get("items", [])
    pager = paginate(rows, _page(request))
    return render(
        request,
        template,
        me,
        pager=pager,
        params=params,
        prev_url=page_url(request, pager["page"] - 1),
        next_url=page_url(request, pager["page"] + 1),
    )


@router.get("/users", response_class=HTMLResponse)
async def users_page(request: Request) -> HTMLResponse:
    return await _listing(request, "/users", "users.html")


@router.post("/users", response_class=HTMLResponse)
async def create_user(request: Request) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    body = {"username": _text(form, "username", 64), "platform_admin": form.get("platform_admin") == "on"}
    if (password := form.get("password")) and isinstance(password, str):
        body["password"] = password[:1024]
    r = await api.post("/users", body)
    if r.ok:
        return _redirect("/console/users")
    return api_error_page(request, me, r, "User not created")


@router.get("/projects", response_class=HTMLResponse)
async def projects_page(request: Request) -> HTMLResponse:
    return await _listing(request, "/projects", "projects.html")


@router.post("/projects", response_class=HTMLResponse)
async def create_project(request: Request) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    body = {"name": _text(form, "name", 63)}
    if description := _text(form, "description", 255):
        body["description"] = description
    r = await api.post("/projects", body)
    if r.ok:
        return _redirect("/console/projects")
    return api_error_page(request, me, r, "Project not created")


@router.post("/projects/members", response_class=HTMLResponse)
async def set_member(request: Request) -> Response:
    form = await checked_form(request)
    api, me = await caller(request)
    project = _text(form, "project", 63)
    user_id = _text(form, "user_id", 64)
    r = await api.put(f"/projects/{quote(project)}/members/{quote(user_id)}", {"role": _text(form, "role", 16)})
    if r.ok:
        return _redirect("/console/projects")
    return api_error_page(request, me, r, "Member not changed")


@router.get("/audit", response_class=HTMLResponse)
async def audit_page(request: Request) -> HTMLResponse:
    """The audit log, newest first, a page at a time with the API's own cursor (`before`)."""
    api, me = await caller(request)
    q = request.query_params
    params = {k: q.get(k, "")[:100] for k in ("user", "project", "target", "since", "until") if q.get(k)}
    before = q.get("before", "")
    r = await api.get("/audit", limit=PER_PAGE, before=before if before.isdigit() else None, **params)
    if r.status == 404 and "Not Found" in r.errors:
        return render(
            request,
            "error.html",
            me,
            status=404,
            title="Not available",
            errors=["this smcp-api has no audit route yet"],
        )
    if not r.ok and r.status != 422:
        return api_error_page(request, me, r)
    data = r.data if r.ok and isinstance(r.data, dict) else {}
    older = data.get("next_before")
    return render(
        request,
        "audit.html",
        me,
        status=r.status,
        rows=data.get("items", []),
        params=params,
        errors=r.errors,
        older_url=f"/console/audit?{urlencode({**params, 'before': older})}" if older else None,
    )


def register(app: Any) -> None:
    """Send a page request without a session to the login page and a refused form to a 403 page."""
    from fastapi.responses import HTMLResponse as Html

    async def need_login(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, NeedLogin)
        params = {"next": _safe_next(exc.next_url)}
        if exc.message:
            params["message"] = exc.message
        if request.headers.get("hx-request"):  # an htmx fragment: make the whole page go to the login form
            return Response(status_code=401, headers={"HX-Redirect": "/console/login?" + urlencode(params)})
        return _redirect("/console/login?" + urlencode(params))

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        response: Html = templates.TemplateResponse(
            request,
            "error.html",
            {"me": None, "csrf": "", "path": request.url.path, "title": "Refused", "errors": [exc.message]},
            status_code=403,
        )
        return response

    app.add_exception_handler(NeedLogin, need_login)
    app.add_exception_handler(Refused, refused)
