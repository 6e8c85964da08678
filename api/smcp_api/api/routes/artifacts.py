"""Artifacts: what jobs leave for later (etcd snapshots, a cluster's admin kubeconfig and CA), from the store, so
that every replica serves them; the content is checked against its sha256 before it is served."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from smcp_api import artifacts
from smcp_api.api.deps import Admin, ServicesDep, SessionDep, Viewer, errors
from smcp_api.api.rows import get_in_project
from smcp_api.models import Artifact
from smcp_api.schemas import Error

router = APIRouter(prefix="/artifacts", tags=["artifacts"])
DAMAGED: dict[int | str, dict[str, Any]] = {
    500: {"model": Error, "description": "The stored content does not match its sha256: not served."}
}


class ArtifactOut(BaseModel):
    id: str
    cluster: str = Field(description="The cluster's name.")
    kind: Literal["etcd_snapshot", "cluster_file"]
    name: str
    size: int = Field(description="Bytes.")
    sha256: str = Field(description="Of the content, computed when stored; checked before every download.")
    job_id: str | None = Field(description="The job that made it (null once that job is deleted).")
    created_at: datetime


def _out(row: Artifact) -> ArtifactOut:
    return ArtifactOut(
        id=row.id,
        cluster=row.cluster,
        kind=row.kind,  # type: ignore[arg-type]
        name=row.name,
        size=row.size,
        sha256=row.sha256,
        job_id=row.job_id,
        created_at=row.created_at,
    )


@router.get(
    "",
    response_model=list[ArtifactOut],
    summary="List artifacts",
    description="Newest first; filter by cluster name and kind (`etcd_snapshot`: etcd_backup and upgrade jobs' "
    "snapshots with their .sha256 files; `cluster_file`: the admin kubeconfig and CA later jobs use).",
    responses=errors(),
)
def list_artifacts(
    caller: Viewer,
    session: SessionDep,
    cluster: Annotated[str | None, Query(max_length=63)] = None,
    kind: Literal["etcd_snapshot", "cluster_file"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ArtifactOut]:
    query = (
        select(Artifact)
        .where(Artifact.project_id == caller.project_id)
        .order_by(Artifact.created_at.desc(), Artifact.name)
        .limit(limit)
    )
    if cluster:
        query = query.where(Artifact.cluster == cluster)
    if kind:
        query = query.where(Artifact.kind == kind)
    return [_out(a) for a in session.scalars(query)]


@router.get(
    "/{artifact_id}",
    response_model=ArtifactOut,
    summary="Show an artifact",
    description="Its cluster, kind, name, size and sha256 (not the content: see `/content`).",
    responses=errors(404),
)
def get_artifact(artifact_id: str, caller: Viewer, session: SessionDep) -> ArtifactOut:
    return _out(get_in_project(session, Artifact, artifact_id, "artifact", caller.project_id))


@router.get(
    "/{artifact_id}/content",
    summary="Download an artifact",
    description="The content (`application/octet-stream`), streamed from the store after its sha256 was checked: "
    "a damaged artifact answers 500 and is not served. Admin only (snapshots hold every Kubernetes secret, "
    "admin.conf is the cluster's admin credential). Headers: `Content-Length`, `X-Checksum-Sha256`.",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {}}}, **errors(404), **DAMAGED},
)
def download_artifact(artifact_id: str, caller: Admin, services: ServicesDep) -> StreamingResponse:
    # No request-long session: the body is streamed after this function returns, chunk by chunk (artifacts.py).
    with services.sessions() as session:
        row = get_in_project(session, Artifact, artifact_id, "artifact", caller.project_id)
    artifacts.verify(services, row)
    filename = "".join(c if c.isalnum() or c in "._-" else "_" for c in row.name)
    return StreamingResponse(
        artifacts.iter_content(services, row),
        media_type="application/octet-stream",
        headers={
            "Content-Length": str(row.size),
            "Content-Disposition": f'attachment; filename="{filename}"',
            "X-Checksum-Sha256": row.sha256,
            "Cache-Control": "no-store",
        },
    )
