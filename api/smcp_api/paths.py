"""Where smcp finds the collection and keeps its state on the machine."""

from __future__ import annotations

import os
from pathlib import Path


def repo_root() -> Path:
    """The collection root (the working tree in development: galaxy.yml lives there)."""
    env = os.environ.get("SMCP_COLLECTION_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "galaxy.yml").is_file():
            return parent
    raise RuntimeError("cannot find the smcp.platform collection; set SMCP_COLLECTION_ROOT")


def state_dir() -> Path:
    """Machine-level state (sandboxes, caches). Override with SMCP_STATE_DIR."""
    return Path(os.environ.get("SMCP_STATE_DIR", "/var/lib/smcp"))


def cache_dir() -> Path:
    """Rebuildable caches (sandbox image rootfs, apt packages). Override with SMCP_CACHE_DIR."""
    return Path(os.environ.get("SMCP_CACHE_DIR", "/var/cache/smcp"))
