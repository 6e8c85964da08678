"""The worker: a bounded in-process thread pool fed from the store (so restarts recover from the DB)."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from sqlalchemy import delete, select, update

from smcp_api.db import session_scope
from smcp_api.jobs.runner import run_job
from smcp_api.jobstates import INTERRUPTED
from smcp_api.models import Job, Lock, utcnow

if TYPE_CHECKING:
    from smcp_api.services import Services

log = logging.getLogger(__name__)


def recover_interrupted(services: Services) -> list[str]:
    """At start: jobs left running by a dead service are failed ('interrupted'); their events stay.

    What such a job left on this host (processes of the job users, job directories) is removed first.
    """
    services.isolation().recover()
    with session_scope(services.sessions) as session:
        ids = list(session.scalars(select(Job.id).where(Job.status == "running")))
        if ids:
            session.execute(
                update(Job)
                .where(Job.id.in_(ids))
                .values(status="failed", status_reason=INTERRUPTED, finished_at=utcnow())
            )
            session.execute(delete(Lock).where(Lock.job_id.in_(ids)))
    for job_id in ids:
        log.warning("job %s was running when the service stopped: marked failed (interrupted)", job_id)
    return ids


class Worker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.size = services.settings.workers
        self.pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="smcp-job")
        self.slots = threading.Semaphore(self.size)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.flags: dict[str, threading.Event] = {}
        self.flags_lock = threading.Lock()
        self.thread = threading.Thread(target=self._loop, name="smcp-dispatcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def notify(self) -> None:
        self.wake.set()

    def cancel(self, job_id: str) -> None:
        with self.flags_lock:
            flag = self.flags.get(job_id)
        if flag is not None:
            flag.set()

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.wake.set()
        with self.flags_lock:
            for flag in self.flags.values():
                flag.set()
        self.thread.join(timeout)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _claim(self) -> str | None:
        with session_scope(self.services.sessions) as session:
            query = select(Job.id).where(Job.status == "pending").order_by(Job.created_at).limit(1)
            if session.bind is not None and session.bind.dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            job_id = session.scalar(query)
            if job_id is None:
                return None
            claimed = session.execute(
                update(Job)
                .where(Job.id == job_id, Job.status == "pending")
                .values(status="running", started_at=utcnow())
            ).rowcount  # type: ignore[attr-defined]
            return job_id if claimed else None

    def _loop(self) -> None:
        while not self.stopping.is_set():
            self.wake.wait(self.services.settings.poll_interval)
            self.wake.clear()
            while not self.stopping.is_set() and self.slots.acquire(blocking=False):
                try:
                    job_id = self._claim()
                except Exception:
                    log.exception("claiming a job failed")
                    job_id = None
                if job_id is None:
                    self.slots.release()
                    break
                flag = threading.Event()
                with self.flags_lock:
                    self.flags[job_id] = flag
                self.pool.submit(self._run, job_id, flag)

    def _run(self, job_id: str, flag: threading.Event) -> None:
        try:
            run_job(self.services, job_id, flag, self.stopping)
        except Exception:
            log.exception("job %s crashed", job_id)
        finally:
            with self.flags_lock:
                self.flags.pop(job_id, None)
            self.slots.release()
            self.wake.set()
