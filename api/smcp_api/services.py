"""What a running service holds: settings, database, vault and worker (app.state.smcp)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from smcp_api.core.config import Settings
from smcp_api.jobs.isolation import JobIsolation
from smcp_api.metrics import Metrics
from smcp_api.security import Vault

if TYPE_CHECKING:
    from smcp_api.jobs.worker import Worker


@dataclass
class Services:
    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    vault: Vault
    metrics: Metrics = field(default_factory=Metrics)
    worker: Worker | None = None
    bootstrap_token: str | None = None
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
