"""Job states and the status reasons the service itself writes, defined once.

No imports beyond typing: the API, the worker, the metrics and the CLI's HTTP client all read it.
"""

from __future__ import annotations

from typing import Literal, get_args

JobStatus = Literal["pending", "running", "successful", "failed", "canceled", "error"]
STATES: tuple[str, ...] = get_args(JobStatus)
ACTIVE = frozenset({"pending", "running"})
FINISHED = frozenset(STATES) - ACTIVE

INTERRUPTED = (
    "interrupted: the worker running it stopped, or stopped renewing its lease, while the job ran "
    "(events up to then are kept; its locks are released: run it again)"
)
CANCELED_BEFORE_START = "canceled before it started"
CANCELED_ON_REQUEST = "canceled on request"
TIMED_OUT = "timed out"
