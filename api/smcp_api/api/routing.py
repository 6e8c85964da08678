"""Route declarations shared by the route modules: each kind of write route answers with one status and documents
the same errors, declared once here (summary and description stay with each route)."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from smcp_api.api.deps import errors
from smcp_api.schemas import JobOut

Route = Callable[[DecoratedCallable], DecoratedCallable]


def create_route(router: APIRouter, model: type[BaseModel], summary: str, description: str) -> Route:
    """`POST ""` that records one resource: 201 with `model`; 409 when the name is taken, 422 for a bad request."""
    return router.post(
        "", status_code=201, response_model=model, summary=summary, description=description, responses=errors(409, 422)
    )


def delete_route(router: APIRouter, path: str, summary: str, description: str) -> Route:
    """`DELETE path` of one resource: 204; 404 for an unknown id, 409 while something still uses it."""
    return router.delete(path, status_code=204, summary=summary, description=description, responses=errors(404, 409))


def job_route(router: APIRouter, path: str, summary: str, description: str, codes: tuple[int, ...]) -> Route:
    """`POST path` that records or changes a job and answers 202 with it (the worker does the rest); `codes`: the
    errors it documents besides 401 and 403."""
    return router.post(
        path, status_code=202, response_model=JobOut, summary=summary, description=description, responses=errors(*codes)
    )
