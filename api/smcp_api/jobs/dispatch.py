"""How a recorded job reaches a worker slot: the embedded default, or RabbitMQ through Celery.

- Embedded (`broker_url` empty, the default): smcp-api's own thread pool (jobs/worker.py) polls the store and
  is woken after each commit. One process, no broker.
- Broker (`broker_url` = amqp://...): smcp-api starts no worker; after the job's commit it publishes the job id
  (`CeleryPublisher`) to the durable quorum queue `smcp.jobs` (jobs/celery_app.py). `smcp-worker` processes
  (`BrokerWorker`, started by smcp_api.worker_main) take one message per free slot, claim the job with a
  guarded state change (jobs/leases.py: a redelivered or duplicate message finds it claimed and is dropped)
  and run it. The database stays the source of truth: a publish that failed or a message that was lost
  leaves the job pending, and the sweep of one smcp-worker at a time publishes it again once it has been
  pending for `broker_republish_after` seconds. Cancel needs no message: the running job's worker reads the
  job's cancel flag from the store every second.
"""

from __future__ import annotations

import fcntl
import logging
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from celery import Celery
from kombu.utils.url import maybe_sanitize_url
from sqlalchemy import select, text
from sqlalchemy.engine import make_url

from smcp_api.db import session_scope
from smcp_api.jobs import leases
from smcp_api.jobs.celery_app import QUEUE, TASK, make_celery
from smcp_api.jobs.worker import RunningJobs
from smcp_api.models import Job, utcnow

if TYPE_CHECKING:
    from smcp_api.services import Services

log = logging.getLogger(__name__)
JOB_ID = re.compile(r"[0-9a-f]{32}")
SWEEP_LIMIT = 500
"""Most jobs one sweep publishes again (the oldest first)."""
SWEEP_LOCK_KEY = 0x736D6370  # 'smcp': PostgreSQL advisory lock of the sweep


def broker_label(url: str) -> str:
    """The broker URL for messages: without its passwords (each URL of a `;` failover list: kombu's sanitizer
    masks only the first one's)."""
    return ";".join(str(maybe_sanitize_url(part)) for part in url.split(";"))


class CeleryPublisher:
    """smcp-api's side with a broker: publishes the ids of committed jobs; runs nothing itself."""

    def __init__(self, services: Services, app: Celery | None = None) -> None:
        self.services = services
        self.app = app or make_celery(services.settings.broker_url)

    def publish(self, job_id: str) -> None:
        """Publish `job_id` to `smcp.jobs` and wait for the broker's confirm; raises when the broker refuses."""
        self.app.send_task(TASK, args=[job_id], queue=QUEUE)

    def notify(self, job_id: str | None = None) -> None:
        """After the commit of a new job: publish it. A failure is logged, not raised (the job is recorded; the
        sweep publishes it again)."""
        if job_id is None:
            return
        try:
            self.publish(job_id)
        except Exception as exc:
            log.warning(
                "job %s: publishing to the broker %s failed (%s: %s); it stays pending and an smcp-worker's sweep "
                "publishes it again after %s s",
                job_id,
                broker_label(self.services.settings.broker_url),
                type(exc).__name__,
                exc,
                self.services.settings.broker_republish_after,
            )

    def cancel(self, job_id: str) -> None:
        """Nothing to send: the worker running the job reads its cancel flag from the store."""

    def stop(self, timeout: float = 30.0) -> None:
        self.app.close()


def publisher(services: Services) -> CeleryPublisher | None:
    """What smcp-api hands new jobs to when a broker is set (it then starts no worker of its own)."""
    return CeleryPublisher(services) if services.settings.broker_url else None


@contextmanager
def sweep_lock(services: Services) -> Iterator[bool]:
    """True while this process alone sweeps: a PostgreSQL advisory lock, or a file lock beside the SQLite file
    (SQLite's processes share one machine). False when another process holds it."""
    engine = services.engine
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            held = bool(conn.scalar(text("SELECT pg_try_advisory_lock(:k)"), {"k": SWEEP_LOCK_KEY}))
            try:
                yield held
            finally:
                if held:
                    conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": SWEEP_LOCK_KEY})
                conn.commit()
        return
    database = make_url(str(engine.url)).database
    if not database or database == ":memory:":
        yield True
        return
    path = Path(database).with_name(Path(database).name + ".sweep.lock")
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class BrokerWorker:
    """smcp-worker's side: runs the jobs whose ids arrive, keeps their leases, publishes lost ones again.

    `handle(job_id)` is the Celery task's body (one call per message, in one of SMCP_WORKERS threads).
    """

    def __init__(self, services: Services, app: Celery) -> None:
        self.services = services
        self.app = app
        self.owner = services.worker_id
        self.stopping = threading.Event()
        self.jobs = RunningJobs(services, self.owner, self.stopping)
        self.republished: dict[str, float] = {}
        self.heartbeat = leases.Heartbeat(
            services, self.owner, slots=services.settings.workers, running=self.running, on_lost=self.cancel
        )
        self.sweeper = threading.Thread(target=self._sweep_loop, name="smcp-sweep", daemon=True)

        def run_job_task(job_id: str) -> str:
            return self.handle(job_id)

        app.task(name=TASK, ignore_result=True)(run_job_task)

    # -- lifecycle
    def start(self) -> None:
        leases.recover(self.services)  # jobs of dead workers (expired leases), leftovers on this machine
        self.heartbeat.start()
        self.sweeper.start()

    def shutting_down(self) -> None:
        """The worker stops: running jobs are stopped and end failed (as the embedded worker's do)."""
        self.stopping.set()
        self.jobs.stop_all()

    def stop(self) -> None:
        self.shutting_down()
        if self.sweeper.is_alive():
            self.sweeper.join(30)
        self.heartbeat.stop()

    def running(self) -> list[str]:
        return self.jobs.ids()

    def cancel(self, job_id: str) -> None:
        self.jobs.cancel(job_id)

    # -- the task
    def handle(self, job_id: object) -> str:
        """Claim the job and run it; what happened, for the worker's log."""
        if not isinstance(job_id, str) or not JOB_ID.fullmatch(job_id):
            log.warning("dropped a message that is not a job id: %r", str(job_id)[:80])
            return "invalid"
        if self.stopping.is_set():
            return "stopping"  # stays pending: another worker's sweep publishes it again
        if not leases.claim(self.services, job_id, self.owner):
            log.info("job %s: not pending any more (run or canceled already): message dropped", job_id)
            return "not pending"
        self.jobs.run(job_id, self.jobs.add(job_id))
        return "ran"

    # -- the sweep
    def queue_depth(self) -> int:
        """Messages ready in `smcp.jobs` (not counting those held by workers)."""
        with self.app.connection_for_write() as conn:
            _name, ready, _consumers = conn.default_channel.queue_declare(
                QUEUE, passive=True, durable=True, arguments={"x-queue-type": "quorum"}
            )
        return int(ready)

    def sweep(self) -> list[str]:
        """Publish again the jobs pending for longer than `broker_republish_after` that have no message ready
        (lost between commit and publish, or held by a busy worker); the ids published."""
        settings = self.services.settings
        with sweep_lock(self.services) as held:
            if not held:
                return []
            cutoff = utcnow() - timedelta(seconds=settings.broker_republish_after)
            with session_scope(self.services.sessions) as session:
                stale = list(
                    session.scalars(
                        select(Job.id)
                        .where(Job.status == "pending", Job.created_at < cutoff)
                        .order_by(Job.created_at)
                        .limit(SWEEP_LIMIT)
                    )
                )
            if not stale or self.queue_depth() >= len(stale):
                return []  # nothing stale, or as many messages wait in the queue: publishing more adds nothing
            now = time.monotonic()
            self.republished = {k: t for k, t in self.republished.items() if now - t < settings.broker_republish_after}
            due = [job_id for job_id in stale if job_id not in self.republished]
            for job_id in due:
                self.app.send_task(TASK, args=[job_id], queue=QUEUE)
                self.republished[job_id] = now
        if due:
            log.warning("sweep: %d pending job(s) published again: %s", len(due), ", ".join(due[:20]))
        return due

    def _sweep_loop(self) -> None:
        while not self.stopping.wait(self.services.settings.broker_sweep_interval):
            try:
                self.sweep()
            except Exception as exc:
                log.warning(
                    "sweep of pending jobs failed (%s: %s); next try in %s s",
                    type(exc).__name__,
                    exc,
                    self.services.settings.broker_sweep_interval,
                )
