"""Event lag as a metric (issue 14, Deliver 7): `smcp_event_lag_seconds`, a histogram of the time from an
Ansible event's `created` (the worker's clock) to the moment the replica serving an SSE client writes it to that
client, for live events only (created after the stream opened: a replay of old events is no lag).

Real parts as in test_live_events.py: uvicorn, SQLite or PostgreSQL, the worker's EventSink as the writer (on
PostgreSQL another instance, so the event comes through NOTIFY). The lag checked is a lower bound the test
itself creates (an event handed to the sink a known time after its `created`), never a duration measured
against a limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from smcp_api.jobs import runner

from tests.api.test_live_events import (  # noqa: F401  (fixtures)
    Replica,
    Stream,
    _event,
    _running_job,
    _sleeping,
    _token,
    _until,
    replicas,
    writer,
)

HELD = 0.3  # seconds between an event's `created` and its hand-over to the sink


def _lag(replica: Replica) -> dict[str, float]:
    r = httpx.get(f"{replica.base}/metrics", headers={"Authorization": f"Bearer {_token(replica)}"}, timeout=10)
    assert r.status_code == 200, r.text
    return {
        key: float(value)
        for key, value in (line.rsplit(" ", 1) for line in r.text.splitlines() if line and line[0] != "#")
        if key.startswith("smcp_event_lag_seconds")
    }


def test_live_events_are_observed_replayed_ones_are_not(
    replicas: Callable[..., Replica],  # noqa: F811
    writer: Any,  # noqa: F811
    db_url: str,
) -> None:
    replica = replicas(event_flush_seconds=0.05)
    source = writer if db_url.startswith("postgresql") else replica.services
    job_id = _running_job(source)
    sink = runner.EventSink(source, job_id, [])
    old = _event(1)
    old["created"] = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None).isoformat()
    sink(old)
    sink.flush()
    before = _lag(replica)
    assert before['smcp_event_lag_seconds_bucket{le="+Inf"}'] == 0
    assert before["smcp_event_lag_seconds_count"] == 0

    stream = Stream(replica, _token(replica), job_id)
    try:
        assert stream.next()[1] == 1  # the replay: an hour old, not counted
        _until(lambda: _sleeping(replica, job_id), "the stream never waited")
        live = _event(2)  # created now, handed over HELD seconds later (a lag of at least HELD)
        time.sleep(HELD)
        sink(live)
        assert stream.next()[1] == 2
    finally:
        stream.close()
    after = _lag(replica)
    assert after["smcp_event_lag_seconds_count"] == 1
    assert after['smcp_event_lag_seconds_bucket{le="+Inf"}'] == 1
    assert after['smcp_event_lag_seconds_bucket{le="0.25"}'] == 0  # below HELD: not in a smaller bucket
    assert after["smcp_event_lag_seconds_sum"] >= HELD
