"""The worker: a bounded in-process thread pool fed from the store (so restarts recover from the DB).

Claims, leases, guarded finishing and recovery live in jobs/leases.py (shared with other worker processes).
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from smcp_api.jobs import leases
from smcp_api.jobs.runner import run_job

if TYPE_CHECKING:
    from smcp_api.services import Services

log = logging.getLogger(__name__)


def recover_interrupted(services: Services) -> list[str]:
    """Jobs whose worker is gone (expired lease, no owner, or a dead process on this machine): failed
    ('interrupted'), locks released, events kept; then what dead processes left on this machine is removed.

    Jobs another live process runs are left alone (jobs/leases.py).
    """
    return leases.recover(services)


class RunningJobs:
    """The jobs one worker process runs now, each with its stop flag: shared by the embedded `Worker` and the
    broker's `BrokerWorker` (jobs/dispatch.py)."""

    def __init__(self, services: Services, owner: str, stopping: threading.Event) -> None:
        self.services = services
        self.owner = owner
        self.stopping = stopping
        self.flags: dict[str, threading.Event] = {}
        self.lock = threading.Lock()

    def add(self, job_id: str) -> threading.Event:
        """Track a claimed job; its stop flag (set by `cancel` or `stop_all`)."""
        flag = threading.Event()
        with self.lock:
            self.flags[job_id] = flag
        return flag

    def run(self, job_id: str, flag: threading.Event) -> None:
        """Run a claimed job to its end; a crash is logged, never raised; the job is no longer tracked after."""
        try:
            run_job(self.services, job_id, flag, self.stopping, owner=self.owner)
        except Exception:
            log.exception("job %s crashed", job_id)
        finally:
            with self.lock:
                self.flags.pop(job_id, None)

    def ids(self) -> list[str]:
        """The jobs running now (for the heartbeat)."""
        with self.lock:
            return list(self.flags)

    def cancel(self, job_id: str) -> None:
        with self.lock:
            flag = self.flags.get(job_id)
        if flag is not None:
            flag.set()

    def stop_all(self) -> None:
        with self.lock:
            for flag in self.flags.values():
                flag.set()


class Worker:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.owner = services.worker_id
        self.size = services.settings.workers
        self.pool = ThreadPoolExecutor(max_workers=self.size, thread_name_prefix="smcp-job")
        self.slots = threading.Semaphore(self.size)
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.jobs = RunningJobs(services, self.owner, self.stopping)
        self.thread = threading.Thread(target=self._loop, name="smcp-dispatcher", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def notify(self, job_id: str | None = None) -> None:
        """A job was recorded: scan now (the store tells which; `job_id` matters to a broker's publisher)."""
        self.wake.set()

    def cancel(self, job_id: str) -> None:
        self.jobs.cancel(job_id)

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self.wake.set()
        self.jobs.stop_all()
        self.thread.join(timeout)
        self.pool.shutdown(wait=True, cancel_futures=True)

    def running(self) -> list[str]:
        """The jobs this worker runs now (for the heartbeat)."""
        return self.jobs.ids()

    def _claim(self) -> str | None:
        return leases.claim_next(self.services, self.owner)

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
                self.pool.submit(self._run, job_id, self.jobs.add(job_id))

    def _run(self, job_id: str, flag: threading.Event) -> None:
        try:
            self.jobs.run(job_id, flag)
        finally:
            self.slots.release()
            self.wake.set()
