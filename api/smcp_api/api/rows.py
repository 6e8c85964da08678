"""How routes read: a stored row by id (NotFound naming it otherwise), and an answer built from a row.

Shared by the route modules (no route module imports another) and by `writes`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel
from sqlalchemy.orm import Session

from smcp_api.errors import NotFound
from smcp_api.models import Job
from smcp_api.schemas import Counters, JobOut

Row = TypeVar("Row")
Out = TypeVar("Out", bound=BaseModel)


def get_or_404(session: Session, model: type[Row], ident: str, kind: str) -> Row:
    """The row of `model` with this primary key; NotFound ("<kind> '<ident>' does not exist ...") otherwise."""
    row = session.get(model, ident)
    if row is None:
        raise NotFound(kind, ident)
    return row


def get_in_project(session: Session, model: type[Row], ident: str, kind: str, project_id: str) -> Row:
    """Like get_or_404, and a row of another project is NotFound too (the same answer as an unknown id)."""
    row = session.get(model, ident)
    if row is None or getattr(row, "project_id", None) != project_id:
        raise NotFound(kind, ident)
    return row


class _Overlay:
    """A row read through its attributes, some of them replaced (the fields an answer computes)."""

    __slots__ = ("_row", "_values")

    def __init__(self, row: object, values: dict[str, Any]) -> None:
        self._row = row
        self._values = values

    def __getattr__(self, name: str) -> Any:
        return self._values[name] if name in self._values else getattr(self._row, name)


def from_row(model: type[Out], row: object, **computed: Any) -> Out:
    """The answer `model` from a row's attributes; `computed` holds the fields the row does not store as they are."""
    return model.model_validate(_Overlay(row, computed), from_attributes=True)


def job_out(job: Job) -> JobOut:
    return from_row(
        JobOut,
        job,
        host_summary=job.host_summary or {},
        counters=Counters(events=job.event_count, tasks=job.task_count),
    )
