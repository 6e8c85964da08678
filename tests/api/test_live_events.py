"""Live events (issue 14): SSE streams woken by the writers, not by their poll; resumable across replicas.

Real parts: the apps are served by uvicorn on 127.0.0.1 (the test client buffers a streamed body), the store is
SQLite or PostgreSQL (conftest), the writer is the worker's EventSink. The streams' poll fallback is set to 300 s
(`sse_poll_interval`), so an event that arrives came through a wake-up: PostgreSQL's NOTIFY when the writer is
another app instance, the in-process wake on SQLite. Waits are bounded (an event that never comes fails the
test), nothing is timed.
"""

from __future__ import annotations

import json
import queue
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
import uvicorn
from smcp_api import events
from smcp_api.jobs import leases, runner
from smcp_api.main import build_services, create_app
from smcp_api.models import Job, JobEvent
from sqlalchemy import select

LONG_POLL = 300.0  # the fallback never fires within a test
BOUND = 20.0  # seconds: an event or a state that does not come within this fails the test


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _until(what: Callable[[], Any], message: str, bound: float = BOUND) -> Any:
    deadline = time.monotonic() + bound
    while not (got := what()):
        assert time.monotonic() < deadline, message
        time.sleep(0.02)
    return got


class Replica:
    """One app instance served by uvicorn in a thread (its own engine, event hub and listener)."""

    def __init__(self, settings: Any) -> None:
        self.app = create_app(settings, start_worker=False)
        self.port = _free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(self.app, host="127.0.0.1", port=self.port, log_level="warning", timeout_graceful_shutdown=2)
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        _until(lambda: self.server.started, "uvicorn did not start")
        self.services = self.app.state.smcp
        self.base = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(30)


class Stream:
    """An SSE client in a thread: messages (event name, id, data) in a queue, in order."""

    def __init__(self, replica: Replica, token: str, job_id: str, last_event_id: int | None = None) -> None:
        self.messages: queue.Queue[tuple[str, int, dict[str, Any]]] = queue.Queue()
        self.opened = threading.Event()
        self.closing = False
        headers = {"Authorization": f"Bearer {token}"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.thread = threading.Thread(
            target=self._read, args=(replica.base, headers, f"/api/v1/jobs/{job_id}/events/stream"), daemon=True
        )
        self.thread.start()
        assert self.opened.wait(BOUND), "the stream did not open"

    def _read(self, base: str, headers: dict[str, str], path: str) -> None:
        with httpx.Client(base_url=base, headers=headers, timeout=httpx.Timeout(5, read=None)) as client:
            with client.stream("GET", path) as r:
                assert r.status_code == 200
                name, ident, data = "", 0, ""
                for line in r.iter_lines():
                    self.opened.set()
                    if self.closing:
                        return
                    if line.startswith("event: "):
                        name = line[7:]
                    elif line.startswith("id: "):
                        ident = int(line[4:])
                    elif line.startswith("data: "):
                        data = line[6:]
                    elif line == "" and data:
                        self.messages.put((name, ident, json.loads(data)))
                        name, ident, data = "", 0, ""

    def next(self) -> tuple[str, int, dict[str, Any]]:
        try:
            return self.messages.get(timeout=BOUND)
        except queue.Empty:
            raise AssertionError(f"no SSE message within {BOUND} s (the stream was not woken)") from None

    def close(self) -> None:
        self.closing = True


def _token(replica: Replica) -> str:
    return replica.services.bootstrap_token or replica.services.settings.token_file().read_text().strip()


def _running_job(services: Any) -> str:
    with services.sessions() as session:
        job = Job(operation="preflight", status="running")
        session.add(job)
        session.commit()
        return job.id


def _event(counter: int) -> dict[str, Any]:
    return {
        "counter": counter,
        "event": "runner_on_ok",
        "stdout": f"ok: [h{counter}]",
        "created": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "event_data": {"host": "h1", "task": f"task {counter}"},
    }


def _sleeping(replica: Replica, job_id: str) -> bool:
    """The replica's stream of job_id waits for a wake-up (it has read everything there was)."""
    hub = events.hub(replica.services)
    with hub.lock:
        return any(w.waiting for w in hub.watches.get(job_id, ()))


@pytest.fixture
def replicas(settings: Any) -> Iterator[Callable[..., Replica]]:
    started: list[Replica] = []

    def start(**overrides: Any) -> Replica:
        replica = Replica(settings.model_copy(update={"sse_poll_interval": LONG_POLL, **overrides}))
        started.append(replica)
        return replica

    yield start
    for replica in reversed(started):
        replica.stop()


@pytest.fixture
def writer(settings: Any) -> Iterator[Any]:
    """Another process's store access (its own engine: its hub is not the replicas')."""
    services = build_services(settings.model_copy(update={"data_dir": settings.data_dir / "writer"}))
    yield services
    services.engine.dispose()


def test_a_new_event_wakes_the_stream(replicas: Callable[..., Replica], writer: Any, db_url: str) -> None:
    """PostgreSQL: the writer is another instance (only the NOTIFY reaches the stream); SQLite: the same process."""
    replica = replicas(event_flush_seconds=0.05)
    source = writer if db_url.startswith("postgresql") else replica.services
    job_id = _running_job(source)
    stream = Stream(replica, _token(replica), job_id)
    sink = runner.EventSink(source, job_id, [])
    try:
        for counter in (1, 2, 3):
            _until(lambda: _sleeping(replica, job_id), "the stream never waited")
            sink(_event(counter))  # saved by the sink's timer (no flush call here)
            name, ident, data = stream.next()
            assert (name, ident, data["task"]) == ("runner_on_ok", counter, f"task {counter}")
        _until(lambda: _sleeping(replica, job_id), "the stream never waited")
        leases.finish(source, job_id, "successful", None, 0, owner=None)  # the status change wakes it too: the end
        name, ident, data = stream.next()
        assert (name, ident, data["status"]) == ("end", 3, "successful")
    finally:
        stream.close()


def test_the_sink_saves_a_lone_event_within_its_flush_delay(replicas: Callable[..., Replica]) -> None:
    """A burst then silence: the last events are committed by the sink's timer, not left for the next call."""
    replica = replicas(event_flush_seconds=0.05, event_batch=1000)
    job_id = _running_job(replica.services)
    sink = runner.EventSink(replica.services, job_id, [])
    sink(_event(1))
    sink(_event(2))

    def saved() -> list[int]:
        with replica.services.sessions() as session:
            return list(session.scalars(select(JobEvent.counter).where(JobEvent.job_id == job_id)))

    assert _until(saved, "the buffered events were never saved") == [1, 2]
    with replica.services.sessions() as session:
        assert session.get(Job, job_id).event_count == 2


def test_resume_on_another_replica_gets_exactly_the_missing_events(
    replicas: Callable[..., Replica], writer: Any, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("replicas share PostgreSQL (SQLite is the one-process embedded default)")
    a, b = replicas(), replicas()
    job_id = _running_job(writer)
    sink = runner.EventSink(writer, job_id, [])
    for counter in range(1, 6):
        sink(_event(counter))
    sink.flush()
    first = Stream(a, _token(a), job_id)
    got = [first.next()[1] for _ in range(3)]
    first.close()
    assert got == [1, 2, 3]
    for counter in range(6, 9):
        sink(_event(counter))
    sink.flush()
    second = Stream(b, _token(a), job_id, last_event_id=got[-1])
    try:
        resumed = [second.next()[1] for _ in range(5)]
        assert resumed == [4, 5, 6, 7, 8]
        _until(lambda: _sleeping(b, job_id), "the stream on replica B never waited")
        sink(_event(9))
        sink.flush()
        assert second.next()[:2] == ("runner_on_ok", 9)  # live on B, from A's... the writer's NOTIFY
        leases.finish(writer, job_id, "failed", "boom", 2, owner=None)
        name, ident, data = second.next()
        assert (name, ident, data["status"], data["rc"]) == ("end", 9, "failed", 2)
    finally:
        second.close()


def test_the_listener_reconnects_after_its_connection_is_killed(
    replicas: Callable[..., Replica], writer: Any, db_url: str
) -> None:
    if not db_url.startswith("postgresql"):
        pytest.skip("the listener is PostgreSQL's")
    replica = replicas()
    job_id = _running_job(writer)
    stream = Stream(replica, _token(replica), job_id)
    hub = events.hub(replica.services)
    try:
        pid = _until(lambda: hub.backend_pid, "the listener never connected")
        with psycopg.connect(db_url, autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        _until(lambda: hub.connects >= 2 and hub.backend_pid not in (None, pid), "the listener did not reconnect")
        _until(lambda: _sleeping(replica, job_id), "the stream never waited")
        sink = runner.EventSink(writer, job_id, [])
        sink(_event(1))
        sink.flush()
        assert stream.next()[:2] == ("runner_on_ok", 1)  # woken through the new connection
    finally:
        stream.close()
