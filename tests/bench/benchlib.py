"""What the API benchmarks share: a free port, a percentile, a histogram read from /metrics, a throw-away
PostgreSQL (scripts/pg.sh).

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


def histogram(text: str, name: str, labels: str = "") -> dict[float, float]:
    """Cumulative bucket counts {le: count} of histogram `name` (with `labels`, e.g. 'until="x"') in a Prometheus
    text exposition."""
    lead = f'{name}_bucket{{{labels + "," if labels else ""}le="'
    out: dict[float, float] = {}
    for line in text.splitlines():
        if line.startswith(lead):
            le, _, value = line[len(lead) :].partition('"} ')
            out[float(le)] = float(value)  # float("+Inf") is inf
    return out


def hist_quantile(buckets: dict[float, float], q: float) -> float:
    """Like PromQL's histogram_quantile: linear within the bucket that holds the q-quantile (cumulative counts);
    nan without observations, the highest finite bound when it falls in +Inf."""
    bounds = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    if total <= 0:
        return float("nan")
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if bound == float("inf"):
                return lower
            return lower + (bound - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = bound, count
    return lower


@contextmanager
def postgres(name: str) -> Iterator[str]:
    """A PostgreSQL server in /tmp/smcp-pg-NAME-<random> for the block; yields its SQLAlchemy URL."""
    pgdir = Path("/tmp") / f"smcp-pg-{name}-{uuid.uuid4().hex[:8]}"
    out = subprocess.run([str(REPO / "scripts/pg.sh"), "start", str(pgdir)], capture_output=True, text=True, check=True)
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REPO / "scripts/pg.sh"), "stop", str(pgdir)], check=False)
