"""smcp management plane: API service, smcpctl CLI, ansible-runner bridge and sandbox hosts."""

from __future__ import annotations

__version__ = "0.1.0"
