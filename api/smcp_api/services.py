"""What a running service holds: settings, database, vault and worker (app.state.smcp)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from smcp_api.core.config import Settings
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
