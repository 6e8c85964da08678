"""Typed HTTP client for the smcp management API (contract v1, see docs/cli.md).

Every failure is raised as an :class:`ApiError` subclass so callers (smcpctl) can map it to an exit code:
:class:`Unreachable` (no answer), :class:`AuthError` (401/403), :class:`NotFound` (404),
:class:`Conflict` (409), :class:`Invalid` (400/422) and :class:`ServerError` (5xx).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from smcp_api.jobstates import FINISHED

JSON = dict[str, Any]
DEFAULT_URL = "http://127.0.0.1:8780"
API = "/api/v1"
PROJECT_HEADER = "X-SMCP-Project"
STREAM_READ_TIMEOUT = 60.0  # the API sends a keep-alive every 15 s; silence this long means a dead link


class ApiError(Exception):
    """An API call that did not succeed. `status` is the HTTP status (0 when the API did not answer)."""

    status: int = 0

    def __init__(self, message: str, *, status: int | None = None, detail: Any = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.detail = detail


class Unreachable(ApiError):
    """The API did not answer (connection refused, DNS, timeout, TLS)."""


class AuthError(ApiError):
    """401: missing or invalid token; 403: the token's role is too low."""


class NotFound(ApiError):
    """404: unknown id or name."""


class Conflict(ApiError):
    """409: busy cluster/host (the detail names the running job) or a duplicate name."""


class Invalid(ApiError):
    """400/422: the request was refused by validation."""


class ServerError(ApiError):
    """5xx: the API failed."""


def _error_class(status: int) -> type[ApiError]:
    if status in (401, 403):
        return AuthError
    if status == 404:
        return NotFound
    if status == 409:
        return Conflict
    if status in (400, 422):
        return Invalid
    if status >= 500:
        return ServerError
    return ApiError


def present(**values: Any) -> JSON:
    """The values that are set (None, empty and zero ones left out), in the order given: optional parts of a body."""
    return {key: value for key, value in values.items() if value}


def format_detail(detail: Any) -> str:
    """FastAPI `detail` (a string, or a list of validation errors with `loc`/`msg`) as one readable text."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict) and "msg" in item:
                loc = ".".join(str(p) for p in item.get("loc", []) if p != "body")
                msg = str(item["msg"])
                parts.append(f"{loc}: {msg}" if loc and not msg.startswith(f"{loc}:") else msg)
            else:
                parts.append(str(item))
        return "; ".join(parts)
    if isinstance(detail, dict):
        return detail.get("message") or json.dumps(detail, sort_keys=True)
    return str(detail)


def raise_for_response(response: httpx.Response) -> None:
    """Turn a non-2xx response into the matching ApiError with the server's detail as its message."""
    if response.is_success:
        return
    detail: Any = None
    try:
        body = response.json()
        detail = body.get("detail", body) if isinstance(body, dict) else body
    except ValueError:
        detail = response.text.strip() or response.reason_phrase
    status = response.status_code
    message = f"{response.request.method} {response.request.url.path}: HTTP {status}: {format_detail(detail)}"
    if status == 401:
        message += " (run `smcpctl login`, set SMCP_TOKEN, or run `smcpctl up` to store an admin token)"
    raise _error_class(status)(message, status=status, detail=detail)


@dataclass
class Event:
    """One job event: the API event record (`counter`, `event`, `host`, `task`, `play`, `data`, ...)."""

    counter: int
    event: str
    record: JSON = field(default_factory=dict)

    @property
    def host(self) -> str | None:
        return self.record.get("host")

    @property
    def task(self) -> str | None:
        return self.record.get("task")

    @property
    def data(self) -> JSON:
        data = self.record.get("data")
        return data if isinstance(data, dict) else {}

    @property
    def has_stdout(self) -> bool:
        """True when the API sends the event's own output (then an empty string means: prints nothing)."""
        return "stdout" in self.record or "stdout" in self.data

    @property
    def stdout(self) -> str:
        out = self.record.get("stdout")
        if out is None:
            out = self.data.get("stdout")
        return out if isinstance(out, str) else ""


def parse_sse(lines: Iterator[str]) -> Iterator[tuple[str | None, str, str]]:
    """Yield (id, event, data) for each server-sent event in a stream of text lines."""
    ev_id: str | None = None
    ev_name = "message"
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or ev_name != "message":
                yield ev_id, ev_name, "\n".join(data)
            ev_id, ev_name, data = None, "message", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            ev_id = value
        elif name == "event":
            ev_name = value
        elif name == "data":
            data.append(value)
    if data:
        yield ev_id, ev_name, "\n".join(data)


def _event_from_sse(ev_id: str | None, name: str, payload: str) -> Event:
    try:
        record = json.loads(payload) if payload else {}
    except ValueError:
        record = {"stdout": payload}
    if not isinstance(record, dict):
        record = {"data": record}
    counter = record.get("counter")
    if not isinstance(counter, int):
        counter = int(ev_id) if ev_id and ev_id.isdigit() else 0
    record.setdefault("event", name)
    return Event(counter=counter, event=name if name != "message" else str(record["event"]), record=record)


class SmcpClient:
    """Thin typed wrapper over the v1 REST contract. `transport` is for tests (httpx.MockTransport/ASGI)."""

    def __init__(
        self,
        base_url: str = DEFAULT_URL,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        project: str | None = None,
    ) -> None:
        headers = {"Accept": "application/json", "User-Agent": "smcpctl"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if project:
            headers[PROJECT_HEADER] = project  # the project every request acts in (else the API's default)
        self.base_url = base_url.rstrip("/")
        self._sleep = sleep
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SmcpClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        try:
            response = self._http.request(method, path, json=json_body, params=clean, headers=headers)
        except httpx.TransportError as exc:
            hint = "is it running? `smcpctl up`"
            raise Unreachable(f"cannot reach the smcp API at {self.base_url}: {exc} ({hint})") from exc
        raise_for_response(response)
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # -- health -----------------------------------------------------------------------------------
    def healthz(self) -> JSON:
        return self._json("GET", "/healthz")

    # -- tokens -----------------------------------------------------------------------------------
    def list_tokens(self) -> list[JSON]:
        return self._json("GET", f"{API}/tokens")

    def create_token(self, name: str, role: str) -> JSON:
        return self._json("POST", f"{API}/tokens", json_body={"name": name, "role": role})

    def delete_token(self, token_id: str) -> None:
        self._json("DELETE", f"{API}/tokens/{token_id}")

    # -- login, users, projects, audit ----------------------------------------------------------------
    def login(self, username: str, password: str, project: str | None = None, expires_in: int | None = None) -> JSON:
        body = {"username": username, "password": password, **present(project=project, expires_in=expires_in)}
        return self._json("POST", f"{API}/auth/login", json_body=body)

    def logout(self) -> None:
        self._json("POST", f"{API}/auth/logout")

    def me(self) -> JSON:
        return self._json("GET", f"{API}/auth/me")

    def list_users(self) -> list[JSON]:
        return self._json("GET", f"{API}/users")

    def create_user(self, username: str, password: str | None = None, platform_admin: bool = False) -> JSON:
        body = {"username": username, **present(password=password, platform_admin=platform_admin)}
        return self._json("POST", f"{API}/users", json_body=body)

    def update_user(self, user_id: str, changes: JSON) -> JSON:
        return self._json("PATCH", f"{API}/users/{user_id}", json_body=changes)

    def delete_user(self, user_id: str) -> None:
        self._json("DELETE", f"{API}/users/{user_id}")

    def change_password(self, current_password: str, password: str) -> None:
        body = {"current_password": current_password, "password": password}
        self._json("PUT", f"{API}/users/me/password", json_body=body)

    def list_projects(self) -> list[JSON]:
        return self._json("GET", f"{API}/projects")

    def create_project(self, name: str, description: str | None = None) -> JSON:
        return self._json("POST", f"{API}/projects", json_body={"name": name, **present(description=description)})

    def delete_project(self, project: str) -> None:
        self._json("DELETE", f"{API}/projects/{project}")

    def list_members(self, project: str) -> list[JSON]:
        return self._json("GET", f"{API}/projects/{project}/members")

    def set_member(self, project: str, user_id: str, role: str) -> JSON:
        return self._json("PUT", f"{API}/projects/{project}/members/{user_id}", json_body={"role": role})

    def remove_member(self, project: str, user_id: str) -> None:
        self._json("DELETE", f"{API}/projects/{project}/members/{user_id}")

    def list_audit(self, **filters: Any) -> JSON:
        """One page of the audit log, newest first: {"items": [...], "next_before": id or None}."""
        return self._json("GET", f"{API}/audit", params=filters)

    # -- credentials ------------------------------------------------------------------------------
    def list_credentials(self) -> list[JSON]:
        return self._json("GET", f"{API}/credentials")

    def get_credential(self, cred_id: str) -> JSON:
        return self._json("GET", f"{API}/credentials/{cred_id}")

    def create_credential(self, name: str, private_key: str, username: str | None = None) -> JSON:
        body = {"name": name, "kind": "ssh_private_key", "private_key": private_key, **present(username=username)}
        return self._json("POST", f"{API}/credentials", json_body=body)

    def delete_credential(self, cred_id: str) -> None:
        self._json("DELETE", f"{API}/credentials/{cred_id}")

    # -- hosts ------------------------------------------------------------------------------------
    def list_hosts(self) -> list[JSON]:
        return self._json("GET", f"{API}/hosts")

    def get_host(self, host_id: str) -> JSON:
        return self._json("GET", f"{API}/hosts/{host_id}")

    def create_host(self, body: JSON) -> JSON:
        return self._json("POST", f"{API}/hosts", json_body=body)

    def update_host(self, host_id: str, changes: JSON) -> JSON:
        return self._json("PATCH", f"{API}/hosts/{host_id}", json_body=changes)

    def delete_host(self, host_id: str) -> None:
        self._json("DELETE", f"{API}/hosts/{host_id}")

    def check_host(self, host_id: str) -> JSON:
        return self._json("POST", f"{API}/hosts/{host_id}/check")

    def accept_host_key(self, host_id: str, fingerprint: str) -> JSON:
        return self._json("POST", f"{API}/hosts/{host_id}/host-key", json_body={"fingerprint": fingerprint})

    # -- clusters ---------------------------------------------------------------------------------
    def list_clusters(self) -> list[JSON]:
        return self._json("GET", f"{API}/clusters")

    def get_cluster(self, cluster_id: str) -> JSON:
        return self._json("GET", f"{API}/clusters/{cluster_id}")

    def create_cluster(self, body: JSON) -> JSON:
        return self._json("POST", f"{API}/clusters", json_body=body)

    def delete_cluster(self, cluster_id: str) -> None:
        self._json("DELETE", f"{API}/clusters/{cluster_id}")

    # -- jobs -------------------------------------------------------------------------------------
    def list_jobs(
        self, *, status: str | None = None, cluster_id: str | None = None, limit: int | None = None
    ) -> list[JSON]:
        return self._json("GET", f"{API}/jobs", params={"status": status, "cluster_id": cluster_id, "limit": limit})

    def get_job(self, job_id: str) -> JSON:
        return self._json("GET", f"{API}/jobs/{job_id}")

    def create_job(
        self,
        operation: str,
        *,
        cluster_id: str | None = None,
        host_ids: list[str] | None = None,
        params: JSON | None = None,
        idempotency_key: str | None = None,
    ) -> JSON:
        body = {"operation": operation, **present(cluster_id=cluster_id, host_ids=host_ids, params=params)}
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        return self._json("POST", f"{API}/jobs", json_body=body, headers=headers)

    def cancel_job(self, job_id: str) -> JSON | None:
        return self._json("POST", f"{API}/jobs/{job_id}/cancel")

    def job_stdout(self, job_id: str) -> str:
        return self.request("GET", f"{API}/jobs/{job_id}/stdout", headers={"Accept": "text/plain"}).text

    def job_events(self, job_id: str, *, after: int = 0, limit: int | None = None) -> list[Event]:
        records = self._json("GET", f"{API}/jobs/{job_id}/events", params={"after": after, "limit": limit})
        return [Event(counter=int(r.get("counter", 0)), event=str(r.get("event", "")), record=r) for r in records]

    def stream_events(self, job_id: str, *, after: int = 0, retries: int = 8) -> Iterator[Event]:
        """Follow a job's events until its `end` event (which is yielded last).

        Follows the SSE stream and resumes with Last-Event-ID after a dropped connection (up to `retries`
        consecutive failures); falls back to polling GET .../events when the stream route is missing.
        """
        last = after
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last:
                headers["Last-Event-ID"] = str(last)
            try:
                with self._http.stream(
                    "GET",
                    f"{API}/jobs/{job_id}/events/stream",
                    headers=headers,
                    params={"after": last} if last else None,
                    timeout=httpx.Timeout(30.0, read=STREAM_READ_TIMEOUT),
                ) as response:
                    if response.status_code in (404, 405, 501) and self._job_exists(job_id):
                        yield from self._poll_events(job_id, after=last)
                        return
                    if not response.is_success:
                        response.read()
                        raise_for_response(response)
                    for ev_id, name, payload in parse_sse(response.iter_lines()):
                        event = _event_from_sse(ev_id, name, payload)
                        failures = 0
                        if event.event == "end":
                            yield event
                            return
                        if event.counter and event.counter <= last:
                            continue
                        last = max(last, event.counter)
                        yield event
            except (httpx.TransportError, httpx.StreamError) as exc:
                failures += 1
                if failures > retries:
                    raise Unreachable(f"lost the event stream of job {job_id} at {self.base_url}: {exc}") from exc
                self._sleep(min(0.5 * 2 ** (failures - 1), 5.0))
                continue
            # The stream closed without `end`: reconnect unless the job is over.
            job = self.get_job(job_id)
            if job.get("status") in FINISHED:
                yield from self._poll_events(job_id, after=last, once=True)
                yield Event(counter=last, event="end", record={"event": "end", "data": {"status": job["status"]}})
                return
            failures += 1
            if failures > retries:
                raise Unreachable(f"the event stream of job {job_id} keeps closing early at {self.base_url}")
            self._sleep(min(0.5 * 2 ** (failures - 1), 5.0))

    def _job_exists(self, job_id: str) -> bool:
        self.get_job(job_id)  # raises NotFound for an unknown job
        return True

    def _poll_events(self, job_id: str, *, after: int, once: bool = False, interval: float = 1.0) -> Iterator[Event]:
        last = after
        while True:
            batch = self.job_events(job_id, after=last)
            for event in batch:
                last = max(last, event.counter)
                yield event
            if once:
                if not batch:
                    return
                continue
            if not batch:
                job = self.get_job(job_id)
                if job.get("status") in FINISHED:
                    yield from self._poll_events(job_id, after=last, once=True)
                    yield Event(counter=last, event="end", record={"event": "end", "data": {"status": job["status"]}})
                    return
                self._sleep(interval)
