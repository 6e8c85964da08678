"""Prometheus text exposition (by hand: jobs by status, job durations, events ingested, workers and their
heartbeats, running jobs by worker, dispatch latency, the queue's oldest job, running jobs past their lease).

Every figure but the events counter is read from the store at scrape time, so every API replica reports the same
values for the whole fleet (alert rules aggregate without the instance label)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smcp_api.jobstates import STATES
from smcp_api.models import Job, Worker, utcnow

DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
DISPATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Process counters (jobs and their durations are read from the store at scrape time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events_ingested = 0

    def add_events(self, n: int) -> None:
        with self._lock:
            self.events_ingested += n

    def render(self, session: Session, lease_ttl: float | None = None) -> str:
        counts = {row[0]: row[1] for row in session.execute(select(Job.status, func.count()).group_by(Job.status))}
        lines = [
            "# HELP smcp_jobs Jobs in the store by status.",
            "# TYPE smcp_jobs gauge",
        ]
        lines += [f'smcp_jobs{{status="{s}"}} {counts.get(s, 0)}' for s in STATES]
        rows = session.execute(
            select(Job.operation, Job.started_at, Job.finished_at).where(
                Job.started_at.is_not(None), Job.finished_at.is_not(None)
            )
        ).all()
        by_op: dict[str, list[float]] = {}
        for operation, started, finished in rows:
            if started is None or finished is None:
                continue
            by_op.setdefault(operation, []).append(max(0.0, (finished - started).total_seconds()))
        lines += [
            "# HELP smcp_job_duration_seconds Run time of finished jobs.",
            "# TYPE smcp_job_duration_seconds histogram",
        ]
        for operation in sorted(by_op):
            values = by_op[operation]
            for bound in DURATION_BUCKETS:
                n = sum(v <= bound for v in values)
                lines.append(f'smcp_job_duration_seconds_bucket{{operation="{operation}",le="{bound:g}"}} {n}')
            lines.append(f'smcp_job_duration_seconds_bucket{{operation="{operation}",le="+Inf"}} {len(values)}')
            lines.append(f'smcp_job_duration_seconds_sum{{operation="{operation}"}} {sum(values):.3f}')
            lines.append(f'smcp_job_duration_seconds_count{{operation="{operation}"}} {len(values)}')
        lines += self._leases(session)
        lines += self._queue(session, lease_ttl)
        lines += [
            "# HELP smcp_events_ingested_total Ansible events persisted by this process.",
            "# TYPE smcp_events_ingested_total counter",
            f"smcp_events_ingested_total {self.events_ingested}",
        ]
        return "\n".join(lines) + "\n"

    def _leases(self, session: Session) -> list[str]:
        """Workers, their heartbeats and running jobs (jobs/leases.py), and dispatch latency (created -> started)."""
        now = utcnow()
        workers = session.execute(select(Worker.id, Worker.host, Worker.slots, Worker.heartbeat_at)).all()
        running: dict[str | None, int] = dict(
            session.execute(select(Job.owner, func.count()).where(Job.status == "running").group_by(Job.owner)).all()
        )
        lines = [
            "# HELP smcp_worker_heartbeat_age_seconds Seconds since each known worker process renewed its leases.",
            "# TYPE smcp_worker_heartbeat_age_seconds gauge",
        ]
        for worker_id, host, _slots, beat in workers:
            labels = f'worker="{_label(worker_id)}",host="{_label(host)}"'
            lines.append(f"smcp_worker_heartbeat_age_seconds{{{labels}}} {max(0.0, (now - beat).total_seconds()):.3f}")
        lines += ["# HELP smcp_worker_slots Job slots of each known worker process.", "# TYPE smcp_worker_slots gauge"]
        lines += [f'smcp_worker_slots{{worker="{_label(w)}"}} {slots}' for w, _h, slots, _b in workers]
        lines += [
            "# HELP smcp_jobs_running Running jobs by the worker that holds their lease (none: not yet leased).",
            "# TYPE smcp_jobs_running gauge",
        ]
        owners = sorted({w for w, *_ in workers} | {o or "" for o in running})
        lines += [f'smcp_jobs_running{{worker="{_label(o) or "none"}"}} {running.get(o or None, 0)}' for o in owners]
        waits = [
            max(0.0, (started - created).total_seconds())
            for created, started in session.execute(
                select(Job.created_at, Job.started_at).where(Job.started_at.is_not(None))
            ).all()
            if started is not None
        ]
        lines += [
            "# HELP smcp_job_dispatch_seconds Time from a job's creation to its claim by a worker.",
            "# TYPE smcp_job_dispatch_seconds histogram",
        ]
        for bound in DISPATCH_BUCKETS:
            lines.append(f'smcp_job_dispatch_seconds_bucket{{le="{bound:g}"}} {sum(w <= bound for w in waits)}')
        lines.append(f'smcp_job_dispatch_seconds_bucket{{le="+Inf"}} {len(waits)}')
        lines.append(f"smcp_job_dispatch_seconds_sum {sum(waits):.3f}")
        lines.append(f"smcp_job_dispatch_seconds_count {len(waits)}")
        return lines

    def _queue(self, session: Session, lease_ttl: float | None) -> list[str]:
        """The queue's oldest pending job, the oldest running job by operation and, with the lease length, the
        running jobs whose lease has ended (recovery should end them within a third of a lease more)."""
        now = utcnow()
        oldest_pending = session.scalar(select(func.min(Job.created_at)).where(Job.status == "pending"))
        lines = [
            "# HELP smcp_jobs_pending_oldest_age_seconds Seconds the oldest pending job has waited (0: none waits).",
            "# TYPE smcp_jobs_pending_oldest_age_seconds gauge",
            f"smcp_jobs_pending_oldest_age_seconds {_age(now, oldest_pending):.3f}",
            "# HELP smcp_jobs_running_oldest_age_seconds Seconds the oldest running job of each operation has run.",
            "# TYPE smcp_jobs_running_oldest_age_seconds gauge",
        ]
        started = session.execute(
            select(Job.operation, func.min(func.coalesce(Job.started_at, Job.created_at)))
            .where(Job.status == "running")
            .group_by(Job.operation)
        ).all()
        lines += [
            f'smcp_jobs_running_oldest_age_seconds{{operation="{_label(op)}"}} {_age(now, first):.3f}'
            for op, first in sorted(started)
        ]
        if lease_ttl is None:
            return lines
        beat = func.coalesce(Job.heartbeat_at, Job.started_at, Job.created_at)
        expired = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.status == "running", beat < now - timedelta(seconds=lease_ttl))
        )
        return [
            *lines,
            "# HELP smcp_lease_ttl_seconds How long a running job's lease lasts without a heartbeat (SMCP_LEASE_TTL).",
            "# TYPE smcp_lease_ttl_seconds gauge",
            f"smcp_lease_ttl_seconds {lease_ttl:g}",
            "# HELP smcp_jobs_running_lease_expired Running jobs whose worker has not renewed their lease in time.",
            "# TYPE smcp_jobs_running_lease_expired gauge",
            f"smcp_jobs_running_lease_expired {expired or 0}",
        ]


def _age(now: datetime, then: datetime | None) -> float:
    return 0.0 if then is None else max(0.0, (now - then).total_seconds())


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
