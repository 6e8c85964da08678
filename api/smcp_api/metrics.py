"""Prometheus text exposition (by hand: jobs by status, job durations, events ingested, workers and their
heartbeats, running jobs by worker, dispatch latency, the queue's oldest job, running jobs past their lease,
event lag).

Every figure but the process counters (events ingested, event lag) is read from the store at scrape time, so
every API replica reports the same values for the whole fleet (alert rules aggregate without the instance label).

`smcp-worker` serves its own process figures (`render_worker`, `MetricsServer`: slots, running jobs, the age of
its last lease renewal) on a small HTTP endpoint of its own, without the store.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from smcp_api.jobstates import STATES
from smcp_api.models import Job, Worker, utcnow

DURATION_BUCKETS = (1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)
DISPATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
EVENT_LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
JOB_START_BUCKETS = (0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
JOB_START_STAGES = ("playbook_spawned", "playbook_on_start")
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"
log = logging.getLogger(__name__)


class Histogram:
    """A process histogram with fixed buckets (thread-safe observe; cumulative buckets when rendered)."""

    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self._lock = threading.Lock()
        self._counts = [0] * len(buckets)
        self._sum = 0.0
        self._count = 0

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        with self._lock:
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    self._counts[i] += 1
                    break
            self._sum += value
            self._count += 1

    def render(self, name: str, help_text: str) -> list[str]:
        return [f"# HELP {name} {help_text}", f"# TYPE {name} histogram", *self.series(name)]

    def series(self, name: str, labels: str = "") -> list[str]:
        """The sample lines; `labels` ('key="value"') is put before `le` and on _sum and _count."""
        with self._lock:
            counts, total, count = list(self._counts), self._sum, self._count
        lead = f"{labels}," if labels else ""
        own = f"{{{labels}}}" if labels else ""
        lines = []
        running = 0
        for bound, n in zip(self.buckets, counts, strict=True):
            running += n
            lines.append(f'{name}_bucket{{{lead}le="{bound:g}"}} {running}')
        lines += [
            f'{name}_bucket{{{lead}le="+Inf"}} {count}',
            f"{name}_sum{own} {total:.3f}",
            f"{name}_count{own} {count}",
        ]
        return lines


class Metrics:
    """Process counters (jobs and their durations are read from the store at scrape time)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.events_ingested = 0
        self.event_lag = Histogram(EVENT_LAG_BUCKETS)
        self.job_start = {until: Histogram(JOB_START_BUCKETS) for until in JOB_START_STAGES}

    def add_events(self, n: int) -> None:
        with self._lock:
            self.events_ingested += n

    def observe_event_lag(self, seconds: float) -> None:
        """An event sent to a live SSE client: its Ansible `created` time to the moment this process wrote it."""
        self.event_lag.observe(seconds)

    def observe_job_start(self, until: str, seconds: float) -> None:
        """A job this process ran: seconds from its creation `until` one of JOB_START_STAGES."""
        self.job_start[until].observe(seconds)

    def job_start_lines(self) -> list[str]:
        name = "smcp_job_start_seconds"
        lines = [
            f"# HELP {name} Jobs this process ran: from the job's creation until its ansible-playbook process was "
            'spawned (until="playbook_spawned": dispatch, job user, files, ansible-runner, launcher, ssh-agent) or '
            "until Ansible's playbook_on_start event (until=\"playbook_on_start\": ansible-playbook's own "
            "start-up too).",
            f"# TYPE {name} histogram",
        ]
        for until, hist in self.job_start.items():
            lines += hist.series(name, f'until="{until}"')
        return lines

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
        lines += self.event_lag.render(
            "smcp_event_lag_seconds",
            "Ansible event created (worker clock) -> written to a live SSE client by this process "
            "(events created after the stream opened).",
        )
        lines += self.job_start_lines()
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


@dataclass(frozen=True)
class WorkerSnapshot:
    """What one smcp-worker process knows of itself, without the store."""

    worker: str
    host: str
    slots: int
    running: int
    heartbeat_age: float | None  # seconds since this process last renewed its leases; None: not yet
    heartbeat_failures: int
    events_ingested: int


def render_worker(snap: WorkerSnapshot, extra: list[str] | None = None) -> str:
    """The process figures of one smcp-worker (the fleet's figures come from smcp-api's /metrics), then `extra`
    lines (its Metrics' job start histograms)."""
    labels = f'worker="{_label(snap.worker)}",host="{_label(snap.host)}"'
    lines = [
        "# HELP smcp_worker_process_info The worker id (the owner of its jobs' leases) and host of this process.",
        "# TYPE smcp_worker_process_info gauge",
        f"smcp_worker_process_info{{{labels}}} 1",
        "# HELP smcp_worker_process_slots Jobs this process runs at the same time at most (SMCP_WORKERS).",
        "# TYPE smcp_worker_process_slots gauge",
        f"smcp_worker_process_slots {snap.slots}",
        "# HELP smcp_worker_process_jobs_running Jobs this process runs now.",
        "# TYPE smcp_worker_process_jobs_running gauge",
        f"smcp_worker_process_jobs_running {snap.running}",
        "# HELP smcp_worker_process_heartbeat_age_seconds Seconds since this process last renewed its leases in "
        "the store (-1: not yet).",
        "# TYPE smcp_worker_process_heartbeat_age_seconds gauge",
        "smcp_worker_process_heartbeat_age_seconds "
        + ("-1" if snap.heartbeat_age is None else f"{max(0.0, snap.heartbeat_age):.3f}"),
        "# HELP smcp_worker_process_heartbeat_failures_total Lease renewals of this process that failed.",
        "# TYPE smcp_worker_process_heartbeat_failures_total counter",
        f"smcp_worker_process_heartbeat_failures_total {snap.heartbeat_failures}",
        "# HELP smcp_events_ingested_total Ansible events persisted by this process.",
        "# TYPE smcp_events_ingested_total counter",
        f"smcp_events_ingested_total {snap.events_ingested}",
        *(extra or []),
    ]
    return "\n".join(lines) + "\n"


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = 10  # a client that sends nothing frees its thread
    server_version = "smcp-worker"
    sys_version = ""

    def do_GET(self) -> None:
        if self.path.split("?", 1)[0] != "/metrics":
            self.send_error(404, "only /metrics is served here")
            return
        try:
            body = self.server.render().encode()
        except Exception:
            log.exception("rendering the worker's metrics failed")
            self.send_error(500, "rendering the metrics failed (see the worker's log)")
            return
        self.send_response(200)
        self.send_header("Content-Type", TEXT_FORMAT)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("metrics: %s %s", self.address_string(), format % args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 16

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, render: Callable[[], str]) -> None:
        self.address_family = family
        self.render = render
        super().__init__(address, _Handler)


class MetricsServer:
    """`GET /metrics` on `address`:`port` in a daemon thread (the standard library's HTTP server).

    The socket is bound when the object is made (an address in use raises OSError at once, before the worker
    starts); `start()` serves, `stop()` closes. Port 0 picks a free port (`port` tells which)."""

    def __init__(self, address: str, port: int, render: Callable[[], str]) -> None:
        family = socket.AF_INET6 if ipaddress.ip_address(address).version == 6 else socket.AF_INET
        self._server = _Server((address, port), family, render)
        self._thread = threading.Thread(target=self._server.serve_forever, name="smcp-metrics", daemon=True)

    def set_render(self, render: Callable[[], str]) -> None:
        self._server.render = render

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
        self._server.server_close()


def monotonic_age(then: float | None) -> float | None:
    """Seconds since a `time.monotonic()` reading (None stays None)."""
    return None if then is None else time.monotonic() - then
