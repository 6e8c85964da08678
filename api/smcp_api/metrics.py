"""Prometheus text exposition (by hand: jobs by status, job durations, events ingested)."""

from __future__ import annotations

import threading

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smcp_api.jobstates import STATES
from smcp_api.models import Job

DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)


class Metrics:
    """Process counters (jobs and their durations are read from the store at scrape time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events_ingested = 0

    def add_events(self, n: int) -> None:
        with self._lock:
            self.events_ingested += n

    def render(self, session: Session) -> str:
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
        lines += [
            "# HELP smcp_events_ingested_total Ansible events persisted by this process.",
            "# TYPE smcp_events_ingested_total counter",
            f"smcp_events_ingested_total {self.events_ingested}",
        ]
        return "\n".join(lines) + "\n"
