"""Jobs: every operation is a job run by the worker; status, per-host summary, stdout, events (SSE), cancel."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse, PlainTextResponse, StreamingResponse
from sqlalchemy import select, update
from starlette.concurrency import run_in_threadpool

from smcp_api.api.deps import Caller, IdempotencyDep, Operator, ServicesDep, SessionDep, Viewer, errors
from smcp_api.api.routing import job_route
from smcp_api.api.rows import from_row, get_in_project, job_out
from smcp_api.api.writes import submit_job
from smcp_api.errors import Conflict, NotFound, Unprocessable
from smcp_api.events import Watch
from smcp_api.events import hub as event_hub
from smcp_api.jobs.leases import finish
from smcp_api.jobstates import CANCELED_BEFORE_START, FINISHED, JobStatus
from smcp_api.models import Job, JobEvent, utcnow
from smcp_api.schemas import EventOut, JobCreate, JobOut
from smcp_api.services import Services

router = APIRouter(prefix="/jobs", tags=["jobs"])
HEARTBEAT_SECONDS = 15.0


@job_route(
    router,
    "",
    "Start an operation",
    "Validates the request, records a pending job and returns 202 with its id; the worker runs "
    "the collection playbook (preflight -> smcp.platform.preflight, prepare_hosts -> smcp.platform.prepare_hosts, "
    "etcd_backup, create_cluster -> cluster, add_nodes -> scale, remove_node, upgrade, reset). Mutating "
    "operations (all but preflight) hold the cluster (or each host) until they end: 409 names the job in the "
    "way. `params.extra_vars` are checked against the roles' argument specs.",
    (409, 422),
)
def post_job(
    body: JobCreate, token: Operator, services: ServicesDep, session: SessionDep, idem: IdempotencyDep
) -> object:
    return submit_job(body, token, services, session, idem)


@router.get("", response_model=list[JobOut], summary="List jobs", description="Newest first.", responses=errors())
def list_jobs(
    caller: Viewer,
    session: SessionDep,
    status: JobStatus | None = None,
    cluster_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[JobOut]:
    query = select(Job).where(Job.project_id == caller.project_id).order_by(Job.created_at.desc()).limit(limit)
    if status:
        query = query.where(Job.status == status)
    if cluster_id:
        query = query.where(Job.cluster_id == cluster_id)
    return [job_out(j) for j in session.scalars(query)]


def _get(session: SessionDep, job_id: str, caller: Caller) -> Job:
    return get_in_project(session, Job, job_id, "job", caller.project_id)


@router.get("/{job_id}", response_model=JobOut, summary="Show a job", responses=errors(404))
def get_job(job_id: str, caller: Viewer, session: SessionDep) -> JobOut:
    """Status (pending, running, successful, failed, canceled, error) with its reason and rc, the per-host
    summary (ok, changed, failed, unreachable, skipped) and the event and task counters."""
    return job_out(_get(session, job_id, caller))


@router.get(
    "/{job_id}/stdout",
    response_class=PlainTextResponse,
    summary="Job output",
    description="The playbook's output so far (secrets redacted).",
    responses={200: {"content": {"text/plain": {}}}, **errors(404)},
)
def get_stdout(job_id: str, caller: Viewer, session: SessionDep) -> PlainTextResponse:
    _get(session, job_id, caller)
    chunks = session.scalars(select(JobEvent.stdout).where(JobEvent.job_id == job_id).order_by(JobEvent.counter))
    text = "\n".join(c for c in chunks if c)
    return PlainTextResponse(text + ("\n" if text else ""))


def _event_out(e: JobEvent) -> EventOut:
    return from_row(EventOut, e)


@router.get(
    "/{job_id}/events",
    response_model=list[EventOut],
    summary="Job events",
    description="Ansible events with a counter greater than `after`, oldest first (sanitised: no_log results "
    "hidden, secrets redacted).",
    responses=errors(404),
)
def get_events(
    job_id: str,
    caller: Viewer,
    session: SessionDep,
    after: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[EventOut]:
    _get(session, job_id, caller)
    query = (
        select(JobEvent)
        .where(JobEvent.job_id == job_id, JobEvent.counter > after)
        .order_by(JobEvent.counter)
        .limit(limit)
    )
    return [_event_out(e) for e in session.scalars(query)]


def _poll(services: Services, job_id: str, after: int, limit: int) -> tuple[Job | None, list[EventOut]]:
    with services.sessions() as session:
        job = session.get(Job, job_id)  # status first: events flushed before it finished are then visible
        rows = session.scalars(
            select(JobEvent)
            .where(JobEvent.job_id == job_id, JobEvent.counter > after)
            .order_by(JobEvent.counter)
            .limit(limit)
        )
        return job, [_event_out(e) for e in rows]


@router.get(
    "/{job_id}/events/stream",
    summary="Stream job events (SSE)",
    description="`text/event-stream`: one SSE message per Ansible event (`id:` event counter, `event:` Ansible "
    "event name, `data:` JSON). Resume with the `Last-Event-ID` header (or `?after=N`). Ends with "
    "`event: end` whose data carries the final status.",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(404)},
)
async def stream_events(
    job_id: str,
    request: Request,
    caller: Viewer,
    services: ServicesDep,
    after: Annotated[int | None, Query(ge=0, le=2**31 - 1)] = None,
    last_event_id: Annotated[str | None, Header(include_in_schema=True)] = None,
) -> StreamingResponse:
    cursor = after or 0
    if last_event_id:
        if not last_event_id.isdigit() or len(last_event_id) > 10:
            raise Unprocessable(
                f"Last-Event-ID: '{last_event_id}' is not an event counter; send the last `id:` you received",
            )
        cursor = int(last_event_id)
    job, _events = await run_in_threadpool(_poll, services, job_id, cursor, 1)
    if job is None or job.project_id != caller.project_id:
        raise NotFound("job", job_id)
    poll = services.settings.sse_poll_interval  # the fallback: new events and status changes wake the stream
    hub = event_hub(services)
    opened = utcnow()  # events created after this are live: their lag is observed (smcp_event_lag_seconds)

    async def events() -> AsyncIterator[str]:
        nonlocal cursor
        yield "retry: 2000\n\n"
        async with hub.watch(job_id) as watch:
            async for message in _messages(watch):
                yield message

    async def _messages(watch: Watch | None) -> AsyncIterator[str]:
        nonlocal cursor
        quiet_since = time.monotonic()
        while True:
            if watch is not None:
                watch.clear()  # before reading: a wake-up during the read means read again
            job, rows = await run_in_threadpool(_poll, services, job_id, cursor, 500)
            if job is None:
                return
            for e in rows:
                cursor = e.counter
                data = json.dumps(jsonable_encoder(e), separators=(",", ":"))
                if e.created_at >= opened:
                    services.metrics.observe_event_lag((utcnow() - e.created_at).total_seconds())
                yield f"id: {e.counter}\nevent: {e.event}\ndata: {data}\n\n"
            if job.status in FINISHED and len(rows) < 500:
                end = {"status": job.status, "status_reason": job.status_reason, "rc": job.rc}
                yield f"id: {cursor}\nevent: end\ndata: {json.dumps(end)}\n\n"
                return
            if rows:
                quiet_since = time.monotonic()
                continue
            if await request.is_disconnected():
                return
            next_poll = time.monotonic() + poll
            while True:  # until woken or the poll fallback is due, with keep-alives on the way
                now = time.monotonic()
                if now - quiet_since >= HEARTBEAT_SECONDS:
                    quiet_since = now
                    yield ": keep-alive\n\n"
                wait = max(0.0, min(next_poll, quiet_since + HEARTBEAT_SECONDS) - now)
                if watch is None:  # this process already wakes its maximum of streams: this one polls
                    await asyncio.sleep(wait)
                elif await watch.wait(wait):
                    break
                if time.monotonic() >= next_poll:
                    break

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


@job_route(
    router,
    "/{job_id}/cancel",
    "Cancel a job",
    "A pending job is canceled at once; a running one is stopped by ansible-runner (its status "
    "becomes `canceled` when the playbook process has ended). 409 when the job already finished.",
    (404, 409),
)
def cancel_job(job_id: str, caller: Operator, services: ServicesDep, session: SessionDep) -> object:
    job = _get(session, job_id, caller)
    if job.status in FINISHED:
        raise Conflict(f"job {job.id} already finished ({job.status}); nothing to cancel")
    pending = session.execute(
        update(Job).where(Job.id == job_id, Job.status == "pending").values(cancel_requested=True, status="canceled")
    ).rowcount  # type: ignore[attr-defined]
    if not pending:
        session.execute(update(Job).where(Job.id == job_id).values(cancel_requested=True))
    session.commit()
    if pending:
        finish(services, job_id, "canceled", CANCELED_BEFORE_START, None, owner=None)  # never claimed
    elif services.worker is not None:
        services.worker.cancel(job_id)
    session.refresh(job)
    return JSONResponse(jsonable_encoder(job_out(job)), status_code=202)
