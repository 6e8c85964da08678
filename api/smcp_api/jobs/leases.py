"""Job leases: which worker runs a job (its owner) and whether that worker still lives (its heartbeat).

The database is the source of truth, shared by any number of API and worker processes on any machines.
Everything here is a guarded state change, so two processes can never both believe they run a job:

- `claim_next(services, owner) -> str | None`: the oldest pending job, now running under `owner`; None if none.
- `claim(services, job_id, owner) -> bool`: that pending job, now running under `owner`; False when it is not
  pending any more (claimed by another worker, canceled, finished) or unknown. A message delivered twice
  therefore never runs a job twice.
- `finish(services, job_id, status, reason, rc, summary=None, owner=...) -> bool`: the final status, the
  job's outcome and the release of its locks in one transaction, written only while the job still runs
  under `owner` (`owner=None`: a job no worker claimed, e.g. canceled while pending). False, logged, and
  nothing changed, when the guard misses (the job was recovered as interrupted meanwhile). After the commit
  the job's streams in this process are woken (SQLite; on PostgreSQL a trigger NOTIFYs every replica).
- `recover_expired(services) -> list[str]`: running jobs whose lease ended (no heartbeat for `lease_ttl`
  seconds, no owner at all (jobs from before leases), or an owner on this machine whose process is gone)
  end failed with `jobstates.INTERRUPTED`; their locks are released, their events kept. Returns their ids.
- `Heartbeat(services, owner, slots=, running=, on_lost=)`: one thread per process, `start()` / `stop()`:
  every lease_ttl/3 it refreshes the process's `workers` row and the heartbeat of all jobs it owns (one
  UPDATE), then runs `recover_expired` and the clean-up of what dead processes left on this machine
  (jobs/isolation.py): a dead worker's jobs end within about 4/3 lease_ttl, from any live process.
  `on_lost(job_id)` is called for a job this process runs (`running()`) that is no longer its own (its
  lease ran out and another process recovered it): stop that playbook.

Clocks: heartbeats are written with this machine's UTC clock and compared with the recovering machine's;
keep the machines in NTP sync (a skew of a few seconds against a 30 s lease is harmless).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, insert, or_, select, update

from smcp_api import events as events_hub
from smcp_api.db import session_scope
from smcp_api.jobs.service import record_outcome
from smcp_api.jobstates import INTERRUPTED
from smcp_api.models import Job, Lock, utcnow
from smcp_api.models import Worker as WorkerRow

if TYPE_CHECKING:
    from smcp_api.services import Services

log = logging.getLogger(__name__)
FORGET_WORKERS_AFTER = 10
"""A worker row silent for this many lease_ttl is deleted (its jobs were recovered long before)."""


def local_key() -> str:
    """This machine's boot and PID namespace: processes with the same key can check each other's pid."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = socket.gethostname()
    try:
        pidns = os.readlink("/proc/self/ns/pid")
    except OSError:
        pidns = "?"
    return f"{boot}:{pidns}"[:100]


def _alive(pid: int) -> bool:
    """Whether `pid` runs in this PID namespace (a zombie has ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def _claim_row(session: Any, job_id: str, owner: str) -> bool:
    """Pending -> running under `owner`, in one guarded UPDATE; False when the job is not pending."""
    now = utcnow()
    done = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.status == "pending")
        .values(status="running", started_at=now, owner=owner, heartbeat_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    return bool(done)


def claim(services: Services, job_id: str, owner: str) -> bool:
    """Pending -> running under `owner`, in one guarded UPDATE; False when the job is not pending."""
    with session_scope(services.sessions) as session:
        return _claim_row(session, job_id, owner)


def claim_next(services: Services, owner: str) -> str | None:
    """The oldest pending job, claimed for `owner` (PostgreSQL: rows another claimer holds are skipped)."""
    with session_scope(services.sessions) as session:
        query = select(Job.id).where(Job.status == "pending").order_by(Job.created_at).limit(1)
        if session.bind is not None and session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        job_id = session.scalar(query)
        if job_id is None:
            return None
        return job_id if _claim_row(session, job_id, owner) else None


def finish(
    services: Services,
    job_id: str,
    status: str,
    reason: str | None,
    rc: int | None,
    summary: dict[str, dict[str, int]] | None = None,
    *,
    owner: str | None,
) -> bool:
    """Final status, outcome and lock release in one transaction, only while `owner` still holds the job; then
    this process's streams of the job are woken (events.job_changed)."""
    values: dict[str, Any] = {"status": status, "status_reason": reason, "rc": rc, "finished_at": utcnow()}
    if summary:
        values["host_summary"] = summary
    if owner is None:  # never claimed (canceled while pending)
        guard = [Job.id == job_id, Job.owner.is_(None), Job.finished_at.is_(None)]
    else:
        guard = [Job.id == job_id, Job.owner == owner, Job.status == "running"]
    with session_scope(services.sessions) as session:
        done = session.execute(
            update(Job).where(*guard).values(**values).execution_options(synchronize_session=False)
        ).rowcount  # type: ignore[attr-defined]
        if not done:
            log.warning(
                "job %s: not recorded as %s: it no longer runs under worker %s (its lease ended and it was "
                "marked interrupted, or it finished); nothing changed",
                job_id,
                status,
                owner,
            )
            return False
        if status == "successful" and (job := session.get(Job, job_id)) is not None:
            record_outcome(session, job)
        session.execute(delete(Lock).where(Lock.job_id == job_id))
    events_hub.job_changed(services, job_id)  # SQLite: this process's streams end now (PostgreSQL: a trigger)
    return True


def _dead_local_workers(services: Services, session: Any) -> list[str]:
    rows = session.execute(
        select(WorkerRow.id, WorkerRow.pid).where(WorkerRow.local == local_key(), WorkerRow.id != services.worker_id)
    ).all()
    return [worker_id for worker_id, pid in rows if pid != os.getpid() and not _alive(pid)]


def recover_expired(services: Services) -> list[str]:
    """Running jobs whose lease ended: failed (interrupted), locks released, events kept. Their ids."""
    now = utcnow()
    ttl = timedelta(seconds=services.settings.lease_ttl)
    with session_scope(services.sessions) as session:
        dead = _dead_local_workers(services, session)
        expired = [Job.owner.is_(None), Job.heartbeat_at.is_(None), Job.heartbeat_at < now - ttl]
        if dead:
            expired.append(Job.owner.in_(dead))
        ids = list(
            session.scalars(
                update(Job)
                .where(Job.status == "running", or_(*expired))
                .values(status="failed", status_reason=INTERRUPTED, finished_at=now)
                .returning(Job.id)
                .execution_options(synchronize_session=False)
            )
        )
        if ids:
            session.execute(delete(Lock).where(Lock.job_id.in_(ids)))
        forget = [WorkerRow.heartbeat_at < now - ttl * FORGET_WORKERS_AFTER]
        if dead:
            forget.append(WorkerRow.id.in_(dead))
        session.execute(delete(WorkerRow).where(or_(*forget)))
    for job_id in ids:
        log.warning("job %s: its worker stopped renewing its lease: marked interrupted, locks released", job_id)
    return ids


def recover(services: Services) -> list[str]:
    """What a process does at start and every lease_ttl: expired leases, then this machine's leftovers."""
    ids = recover_expired(services)
    services.isolation().recover()
    return ids


class Heartbeat:
    """The lease keeper of one process (see the module's docstring)."""

    def __init__(
        self,
        services: Services,
        owner: str | None = None,
        *,
        slots: int = 0,
        running: Callable[[], Iterable[str]] | None = None,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.services = services
        self.owner = owner or services.worker_id
        self.slots = slots
        self.running = running
        self.on_lost = on_lost
        self.interval = services.settings.lease_ttl / 3
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="smcp-heartbeat", daemon=True)
        self.last_beat: float | None = None  # time.monotonic() of the last renewal in the store (for metrics)
        self.failures = 0  # renewals that raised

    def start(self) -> None:
        self._register()
        self.thread.start()

    def stop(self, forget: bool = True) -> None:
        """Stop beating; `forget` deletes the worker row (a clean stop: its jobs have ended)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(self.interval + 30)
        if forget:
            try:
                with session_scope(self.services.sessions) as session:
                    session.execute(delete(WorkerRow).where(WorkerRow.id == self.owner))
            except Exception:
                log.exception("heartbeat: forgetting worker %s failed", self.owner)

    def _register(self) -> None:
        now = utcnow()
        with session_scope(self.services.sessions) as session:
            row = {
                "id": self.owner,
                "host": socket.gethostname()[:255],
                "pid": os.getpid(),
                "local": local_key(),
                "slots": self.slots,
                "started_at": now,
                "heartbeat_at": now,
            }
            session.execute(delete(WorkerRow).where(WorkerRow.id == self.owner))
            session.execute(insert(WorkerRow), [row])
        self.last_beat = time.monotonic()

    def beat(self) -> list[str]:
        """Refresh the worker row and every job this worker runs; returns the jobs it lost (on_lost called)."""
        local = set(self.running()) if self.running is not None else set()  # taken before the query
        now = utcnow()
        with session_scope(self.services.sessions) as session:
            seen = session.execute(
                update(WorkerRow)
                .where(WorkerRow.id == self.owner)
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            ).rowcount  # type: ignore[attr-defined]
            session.execute(
                update(Job)
                .where(Job.owner == self.owner, Job.status == "running")
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            mine = set(session.scalars(select(Job.id).where(Job.owner == self.owner, Job.status == "running")))
            # A job in `local` was claimed before the query, so it runs under this worker in the store unless it
            # has just finished, or its lease ended and another process recovered it: then its playbook must stop.
            gone = local - mine
            lost = (
                sorted(session.scalars(select(Job.id).where(Job.id.in_(gone), Job.status_reason == INTERRUPTED)))
                if gone
                else []
            )
        if not seen:
            self._register()  # forgotten as silent (e.g. the database was out of reach for long)
        self.last_beat = time.monotonic()
        for job_id in lost:
            log.warning("job %s: this worker's lease on it ended (it was marked interrupted): stopping it", job_id)
            if self.on_lost is not None:
                self.on_lost(job_id)
        return lost

    def _loop(self) -> None:
        # Recovery with every beat (one indexed UPDATE that usually matches nothing, and lock files tried): a dead
        # worker's jobs end within lease_ttl + lease_ttl/3 of its last heartbeat, wherever it ran.
        while not self.stopping.wait(self.interval):
            try:
                self.beat()
            except Exception:
                self.failures += 1
                log.exception("heartbeat of worker %s failed", self.owner)
            try:
                recover(self.services)
            except Exception:
                log.exception("lease recovery failed")
