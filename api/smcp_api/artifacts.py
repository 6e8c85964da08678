"""Job artifacts in the store, so that every replica serves them: etcd snapshots, a cluster's admin kubeconfig and CA.

An artifact is one `artifacts` row (cluster, kind, name, size, sha256 of the content) and its content in
`artifact_chunks` rows of at most CHUNK_BYTES: written and read a chunk at a time (a 512 MiB snapshot never sits
in memory), on SQLite and PostgreSQL alike (PostgreSQL large objects would need their own clean-up and exist
only there). The sha256 is computed while storing and checked on every read: a mismatch raises ArtifactCorrupt
(HTTP 500 naming the artifact), never silently. The size limit is `max_artifact_bytes` (SMCP_MAX_ARTIFACT_BYTES,
default 512 MiB): a larger artifact raises ArtifactTooLarge and its job fails saying so.

Secrets stay encrypted at rest: cluster files (admin.conf is the cluster's admin credential) are stored
encrypted with the service's vault key (Fernet, like SSH credentials); the sha256 is of the plaintext.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from cryptography.fernet import InvalidToken
from sqlalchemy import delete, insert, select

from smcp_api.db import session_scope
from smcp_api.errors import DomainError
from smcp_api.models import DEFAULT_PROJECT_ID, Artifact, ArtifactChunk, Cluster, Job

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from smcp_api.services import Services

CHUNK_BYTES = 1024 * 1024
ETCD_SNAPSHOT = "etcd_snapshot"
CLUSTER_FILE = "cluster_file"
KINDS = (ETCD_SNAPSHOT, CLUSTER_FILE)
ENCRYPTED_KINDS = frozenset({CLUSTER_FILE})


class ArtifactTooLarge(Exception):
    """An artifact above max_artifact_bytes: the job that made it fails with this message."""


class ArtifactCorrupt(DomainError):
    """The stored content does not match its sha256 (or no longer decrypts): HTTP 500, never served."""


@dataclass(frozen=True)
class Stored:
    id: str
    size: int
    sha256: str


def _limit_message(services: Services, what: str, size: int) -> str:
    limit = services.settings.max_artifact_bytes
    return (
        f"{what} is {size} bytes, above the artifact limit of {limit} bytes (SMCP_MAX_ARTIFACT_BYTES); "
        "raise the limit (the store keeps every artifact) or make it smaller"
    )


def store_file(
    services: Services, path: Path, *, cluster: str, kind: str, name: str | None = None, job_id: str | None = None
) -> Stored:
    """Store the file at `path` as artifact (cluster, kind, name), replacing one of the same name."""
    name = name or path.name
    what = f"artifact {kind} '{name}' of cluster '{cluster}'"
    size = path.stat().st_size
    if size > services.settings.max_artifact_bytes:
        raise ArtifactTooLarge(_limit_message(services, what, size))
    if kind in ENCRYPTED_KINDS:
        data = path.read_bytes()
        if len(data) > services.settings.max_artifact_bytes:
            raise ArtifactTooLarge(_limit_message(services, what, len(data)))
        return store_bytes(services, data, cluster=cluster, kind=kind, name=name, job_id=job_id)
    digest, total = hashlib.sha256(), 0
    with session_scope(services.sessions) as session, path.open("rb") as src:
        artifact_id = _replace(session, cluster, kind, name, job_id)
        seq = 0
        while chunk := src.read(CHUNK_BYTES):
            total += len(chunk)
            if total > services.settings.max_artifact_bytes:  # it grew while being read
                raise ArtifactTooLarge(_limit_message(services, what, total))
            digest.update(chunk)
            session.execute(insert(ArtifactChunk), [{"artifact_id": artifact_id, "seq": seq, "data": chunk}])
            seq += 1
        row = session.get(Artifact, artifact_id)
        assert row is not None
        row.size, row.sha256 = total, digest.hexdigest()
    return Stored(artifact_id, total, digest.hexdigest())


def store_bytes(
    services: Services, data: bytes, *, cluster: str, kind: str, name: str, job_id: str | None = None
) -> Stored:
    what = f"artifact {kind} '{name}' of cluster '{cluster}'"
    if len(data) > services.settings.max_artifact_bytes:
        raise ArtifactTooLarge(_limit_message(services, what, len(data)))
    sha = hashlib.sha256(data).hexdigest()
    content = data
    if kind in ENCRYPTED_KINDS:
        content = services.vault.encrypt(data.decode("utf-8"))
    with session_scope(services.sessions) as session:
        artifact_id = _replace(session, cluster, kind, name, job_id)
        replace_content(session, artifact_id, content)
        row = session.get(Artifact, artifact_id)
        assert row is not None
        row.size, row.sha256, row.encrypted = len(data), sha, kind in ENCRYPTED_KINDS
    return Stored(artifact_id, len(data), sha)


def _replace(session: Session, cluster: str, kind: str, name: str, job_id: str | None) -> str:
    old = session.scalar(
        select(Artifact.id).where(Artifact.cluster == cluster, Artifact.kind == kind, Artifact.name == name)
    )
    if old is not None:
        session.execute(delete(ArtifactChunk).where(ArtifactChunk.artifact_id == old))
        session.execute(delete(Artifact).where(Artifact.id == old))
    # the project of the job that made it, else of the cluster (names are unique), else the default project
    project_id = (
        (session.scalar(select(Job.project_id).where(Job.id == job_id)) if job_id else None)
        or session.scalar(select(Cluster.project_id).where(Cluster.name == cluster))
        or DEFAULT_PROJECT_ID
    )
    row = Artifact(
        cluster=cluster, kind=kind, name=name, job_id=job_id, size=0, sha256="", encrypted=False, project_id=project_id
    )
    session.add(row)
    session.flush()
    return row.id


def find(services: Services, cluster: str, kind: str, name: str) -> Artifact | None:
    with services.sessions() as session:
        return session.scalar(
            select(Artifact).where(Artifact.cluster == cluster, Artifact.kind == kind, Artifact.name == name)
        )


def _chunks(services: Services, artifact_id: str) -> Iterator[bytes]:
    """The stored chunks in order, one query per chunk (bounded memory, no long-held transaction)."""
    seq = 0
    while True:
        with services.sessions() as session:
            data = session.scalar(
                select(ArtifactChunk.data).where(ArtifactChunk.artifact_id == artifact_id, ArtifactChunk.seq == seq)
            )
        if data is None:
            return
        yield bytes(data)
        seq += 1


def _corrupt(row: Artifact, why: str) -> ArtifactCorrupt:
    return ArtifactCorrupt(
        f"artifact {row.id} ({row.kind} '{row.name}' of cluster '{row.cluster}') is damaged in the store: {why}; "
        "it is not served. Re-create it (run the job that makes it again) and check the database"
    )


def read_bytes(services: Services, row: Artifact) -> bytes:
    """The whole content (small artifacts: cluster files), decrypted and checked against its sha256."""
    content = b"".join(_chunks(services, row.id))
    if row.encrypted:
        try:
            content = services.vault.decrypt(content).encode("utf-8")
        except InvalidToken:
            raise _corrupt(row, "it does not decrypt with the service's key") from None
    _check(row, len(content), hashlib.sha256(content).hexdigest())
    return content


def _check(row: Artifact, size: int, sha: str) -> None:
    if size != row.size or sha != row.sha256:
        raise _corrupt(row, f"sha256 {sha} ({size} bytes) where {row.sha256} ({row.size} bytes) was stored")


def verify(services: Services, row: Artifact) -> None:
    """Read it once and check it (before a download starts: a damaged artifact gets a 500, not a body)."""
    if row.encrypted:
        read_bytes(services, row)
        return
    digest, size = hashlib.sha256(), 0
    for chunk in _chunks(services, row.id):
        digest.update(chunk)
        size += len(chunk)
    _check(row, size, digest.hexdigest())


def iter_content(services: Services, row: Artifact) -> Iterator[bytes]:
    """The content chunk by chunk, checked again as it goes (a change since `verify` ends the transfer early)."""
    if row.encrypted:
        yield read_bytes(services, row)
        return
    digest, size = hashlib.sha256(), 0
    for chunk in _chunks(services, row.id):
        digest.update(chunk)
        size += len(chunk)
        yield chunk
    _check(row, size, digest.hexdigest())


def encrypted_contents(session: Session) -> list[tuple[str, bytes]]:
    """(id, stored ciphertext) of every encrypted artifact: for `smcp-api --rotate-secret-key`."""
    ids = list(session.scalars(select(Artifact.id).where(Artifact.encrypted.is_(True)).order_by(Artifact.id)))
    return [
        (
            i,
            b"".join(
                session.scalars(
                    select(ArtifactChunk.data).where(ArtifactChunk.artifact_id == i).order_by(ArtifactChunk.seq)
                )
            ),
        )
        for i in ids
    ]


def replace_content(session: Session, artifact_id: str, content: bytes) -> None:
    """New stored bytes for the same plaintext (re-encrypted): size and sha256 stay."""
    session.execute(delete(ArtifactChunk).where(ArtifactChunk.artifact_id == artifact_id))
    rows = [
        {"artifact_id": artifact_id, "seq": i, "data": content[start : start + CHUNK_BYTES]}
        for i, start in enumerate(range(0, max(len(content), 1), CHUNK_BYTES))
    ]
    session.execute(insert(ArtifactChunk), rows)
