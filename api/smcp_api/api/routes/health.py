"""Liveness (no auth) and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse
from sqlalchemy import text

from smcp_api.api.deps import ServicesDep, SessionDep, Viewer
from smcp_api.schemas import Error, Health

router = APIRouter(tags=["health"])


@router.get(
    "/healthz",
    response_model=Health,
    summary="Service health",
    description="No token needed. `db` is `ok` when the store answers; otherwise 503 with the error.",
    responses={503: {"model": Health, "description": "The store does not answer."}},
)
def healthz(services: ServicesDep) -> Health | JSONResponse:
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:
        return JSONResponse({"status": "degraded", "db": type(exc).__name__}, status_code=503)
    return Health(status="ok", db="ok")


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    summary="Prometheus metrics",
    description="Prometheus text format: `smcp_jobs{status}`, `smcp_job_duration_seconds` (histogram by "
    "operation), `smcp_events_ingested_total`. Needs a viewer token (Prometheus `authorization` config).",
    responses={200: {"content": {"text/plain": {}}}, 401: {"model": Error}},
)
def metrics(_: Viewer, services: ServicesDep, session: SessionDep) -> PlainTextResponse:
    text = services.metrics.render(session, services.settings.lease_ttl)
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
