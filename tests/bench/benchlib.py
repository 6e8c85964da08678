"""What the API benchmarks share: a free port, a percentile, a throw-away PostgreSQL (scripts/pg.sh).

The benchmarks run as scripts (`.venv/bin/python tests/bench/NAME.py`), so this folder is on sys.path.
"""

from __future__ import annotations

import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of `values` (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


@contextmanager
def postgres(name: str) -> Iterator[str]:
    """A PostgreSQL server in /tmp/smcp-pg-NAME-<random> for the block; yields its SQLAlchemy URL."""
    pgdir = Path("/tmp") / f"smcp-pg-{name}-{uuid.uuid4().hex[:8]}"
    out = subprocess.run([str(REPO / "scripts/pg.sh"), "start", str(pgdir)], capture_output=True, text=True, check=True)
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REPO / "scripts/pg.sh"), "stop", str(pgdir)], check=False)
