"""What a running service holds: settings, database, vault and worker (app.state.smcp)."""

from __future__ import annotations

import os
import secrets
import socket
import threading
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from smcp_api.core.config import Settings
from smcp_api.db import make_engine, make_sessionmaker, migrate, startup_lock
from smcp_api.jobs.isolation import JobIsolation
from smcp_api.metrics import Metrics
from smcp_api.security import Vault, load_or_create_key


def new_worker_id() -> str:
    """An id for this process (`host:pid:random`): the owner of the jobs it runs, shown on a running job."""
    return f"{socket.gethostname()[:64]}:{os.getpid()}:{secrets.token_hex(4)}"


class JobQueue(Protocol):
    """What the routes and the lifespan ask of the worker (smcp_api.jobs.worker.Worker, or with a broker
    smcp_api.jobs.dispatch.CeleryPublisher; no import of them here, so that they can depend on this module).
    `notify(job_id)` follows the commit of a new job."""

    def notify(self, job_id: str | None = None) -> None: ...

    def cancel(self, job_id: str) -> None: ...

    def stop(self, timeout: float = ...) -> None: ...


class Stoppable(Protocol):
    def stop(self, forget: bool = ...) -> None: ...


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    metrics: Metrics = field(default_factory=Metrics)
    worker: JobQueue | None = None
    bootstrap_token: str | None = None
    worker_id: str = field(default_factory=new_worker_id)  # the owner of the jobs this process runs (leases)
    heartbeat: Stoppable | None = None
    _isolation: JobIsolation | None = field(default=None, repr=False)
    _isolation_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def isolation(self) -> JobIsolation:
        """The jobs directory and job users (set up on first use: creates missing job users as root)."""
        with self._isolation_lock:
            if self._isolation is None:
                self._isolation = JobIsolation.setup(
                    self.settings.jobs_dir, self.settings.workers, self.settings.job_user_prefix
                )
            return self._isolation


def build_services(settings: Settings) -> Services:
    """The store migrated to the newest schema, the vault's key loaded (created on first use)."""
    engine = make_engine(settings.database_url())
    migrate(engine)
    with startup_lock(engine):  # replicas sharing a data dir create one key, not one each
        key = load_or_create_key(settings.secret_key, settings.data_dir / "secret.key")
    return Services(settings=settings, engine=engine, sessions=make_sessionmaker(engine), vault=Vault(key))
