"""How routes write: create one record once per Idempotency-Key, submit a job (202).

Shared by the route modules (no route module imports another); HTTP only in the answers they build.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from fastapi.encoders import jsonable_encoder
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from smcp_api.api.deps import Caller, Idempotency
from smcp_api.api.rows import from_row, job_out
from smcp_api.errors import Conflict
from smcp_api.jobs.service import create_job
from smcp_api.schemas import JobCreate
from smcp_api.services import Services

Row = TypeVar("Row")
Out = TypeVar("Out", bound=BaseModel)


@contextmanager
def conflict_guard(session: Session, what: str) -> Iterator[None]:
    """Flush/commit inside; a unique-constraint failure rolls back and becomes a Conflict naming the clash."""
    try:
        yield
        session.commit()
    except IntegrityError as exc:
        session.rollback()
        raise Conflict(f"{what} already exists; choose another name") from exc


def create_once(
    session: Session,
    caller: Caller,
    idem: Idempotency | None,
    *,
    what: str,
    build: Callable[[], Row],
    respond: Callable[[Row], Out] | type[Out],
    replayed: Callable[[Out], Any] | None = None,
) -> Out | JSONResponse:
    """A POST that creates one row (201), answered once per Idempotency-Key.

    A repeated key replays the first answer before anything else runs. Otherwise `build()` checks the request
    (raising domain errors, nothing stored) and returns the new row; the row is added and flushed (it has its
    id); `respond(row)` gives the answer (it may write more rows in the same transaction), or `respond` is the
    answer's model, filled from the row's attributes; `replayed(answer)` is what a later replay of the key answers
    (default: the answer itself; e.g. without a secret shown once). One commit; a unique-constraint clash is a
    Conflict naming `what` ("a host named 'x'").
    """
    if idem and (replay := idem.replay(session, caller)):
        return replay
    row = build()
    with conflict_guard(session, what):
        session.add(row)
        session.flush()
        out = from_row(respond, row) if isinstance(respond, type) else respond(row)
        if idem:
            idem.save(session, caller, 201, replayed(out) if replayed else out)
    return out


def submit_job(
    body: JobCreate, caller: Caller, services: Services, session: Session, idem: Idempotency | None
) -> JSONResponse:
    """Record a pending job of the caller's project (202 with it), once per Idempotency-Key, and wake the worker."""
    if idem and (replay := idem.replay(session, caller)):
        return replay
    job = create_job(session, services.settings, services.vault, caller.token, body, project_id=caller.project_id)
    out = job_out(job)
    if idem:
        idem.save(session, caller, 202, out)
    try:
        session.commit()
    except IntegrityError:  # the same Idempotency-Key raced in from another request: answer as it did
        session.rollback()
        if idem and (replay := idem.replay(session, caller)):
            return replay
        raise
    if services.worker is not None:
        services.worker.notify(job.id)
    return JSONResponse(jsonable_encoder(out), status_code=202)
