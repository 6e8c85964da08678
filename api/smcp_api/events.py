"""Live job events: the SSE streams of a job wake when its events or its status change, on every replica.

- PostgreSQL: triggers (migration 0003) NOTIFY `smcp_job_events` in the transaction that inserts a job's
  events (payload `JOB_ID:LAST_COUNTER`) or changes its status (`JOB_ID:status`), whoever the writer is (a
  worker's EventSink, finishing, a cancel from any replica, lease recovery). Each process LISTENs on one
  dedicated connection (one daemon thread) and wakes that job's streams. A notification is delivered at commit,
  so a woken stream always finds the rows.
- SQLite (embedded, one process): the writers call `job_changed` after their commit.

A stream still polls now and then (`sse_poll_interval`, default 5 s): a lost notification (listener
reconnecting, a writer without a trigger) delays a stream, never stalls it. After a reconnect every stream of
the process is woken once (what was missed while the listener was away).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from smcp_api.services import Services

log = logging.getLogger(__name__)

CHANNEL = "smcp_job_events"
MAX_WATCHES = 10_000
"""Streams one process wakes; beyond that a stream only polls (bounded memory and wake-up work)."""
LISTEN_WAKE_SECONDS = 1.0
"""How often the listener thread looks up from its connection (to notice a stop)."""
RECONNECT_MAX_SECONDS = 5.0


class Watch:
    """One stream's wake-up: set from any thread, awaited in the stream's event loop."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.event = asyncio.Event()
        self.waiting = False  # inside wait() (read by tests: write only once the stream sleeps)

    def set_threadsafe(self) -> None:
        try:
            self.loop.call_soon_threadsafe(self.event.set)
        except RuntimeError:  # the stream's loop has closed
            pass

    def clear(self) -> None:
        self.event.clear()

    async def wait(self, timeout: float) -> bool:
        """True when woken, False after `timeout` seconds (the poll fallback)."""
        self.waiting = True
        try:
            await asyncio.wait_for(self.event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self.waiting = False
        return True


class EventHub:
    """The streams of one process (one engine) by job id, and the PostgreSQL listener that wakes them."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.lock = threading.Lock()
        self.watches: dict[str, set[Watch]] = {}
        self.count = 0
        self.stopping = threading.Event()
        self.connected = threading.Event()
        self.connects = 0
        self.backend_pid: int | None = None
        self.thread: threading.Thread | None = None
        if engine.dialect.name == "postgresql":
            self.thread = threading.Thread(target=self._listen, name="smcp-event-listener", daemon=True)
            self.thread.start()

    # -- streams

    @asynccontextmanager
    async def watch(self, job_id: str) -> AsyncIterator[Watch | None]:
        """A wake-up for `job_id` while the block runs; None when the process already wakes MAX_WATCHES."""
        watch = Watch(asyncio.get_running_loop())
        with self.lock:
            if self.count >= MAX_WATCHES:
                watch = None  # type: ignore[assignment]
            else:
                self.watches.setdefault(job_id, set()).add(watch)
                self.count += 1
        try:
            yield watch
        finally:
            if watch is not None:
                with self.lock:
                    waiting = self.watches.get(job_id)
                    if waiting is not None:
                        waiting.discard(watch)
                        if not waiting:
                            del self.watches[job_id]
                    self.count -= 1

    def wake(self, job_id: str) -> None:
        with self.lock:
            waiting = list(self.watches.get(job_id, ()))
        for watch in waiting:
            watch.set_threadsafe()

    def wake_all(self) -> None:
        with self.lock:
            waiting = [w for ws in self.watches.values() for w in ws]
        for watch in waiting:
            watch.set_threadsafe()

    # -- PostgreSQL

    def _dsn(self) -> str:
        return self.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def _listen(self) -> None:
        import psycopg

        backoff = 0.2
        while not self.stopping.is_set():
            try:
                with psycopg.connect(self._dsn(), autocommit=True, connect_timeout=10) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    self.backend_pid = conn.info.backend_pid
                    self.connects += 1
                    self.connected.set()
                    if self.connects > 1:
                        log.info("event listener reconnected (connection %d)", self.connects)
                    self.wake_all()  # what was committed while no one listened
                    backoff = 0.2
                    while not self.stopping.is_set():
                        for note in conn.notifies(timeout=LISTEN_WAKE_SECONDS):
                            self.wake(note.payload.partition(":")[0])
            except Exception as exc:  # a lost connection, a restarted server: reconnect
                if not self.stopping.is_set():
                    log.warning("event listener lost its connection (%s); reconnecting in %.1f s", exc, backoff)
            finally:
                self.connected.clear()
                self.backend_pid = None
            self.stopping.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)

    def stop(self) -> None:
        self.stopping.set()


_hubs: weakref.WeakKeyDictionary[Engine, EventHub] = weakref.WeakKeyDictionary()
_hubs_lock = threading.Lock()


def hub(services: Services) -> EventHub:
    """The process's hub for this store, started on first use (a stream); stopped when the engine is disposed."""
    engine = services.engine
    with _hubs_lock:
        found = _hubs.get(engine)
        if found is None or found.stopping.is_set():
            found = _hubs[engine] = EventHub(engine)
            if not sa.event.contains(engine, "engine_disposed", _disposed):
                sa.event.listen(engine, "engine_disposed", _disposed)
        return found


def _disposed(engine: Engine) -> None:
    with _hubs_lock:
        found = _hubs.pop(engine, None)
    if found is not None:
        found.stop()


def job_changed(services: Services, job_id: str) -> None:
    """After a commit that added events to `job_id` or changed its status: wake this process's streams of it.

    Only needed without PostgreSQL (there the triggers NOTIFY every replica, this one included).
    """
    if services.engine.dialect.name == "postgresql":
        return
    with _hubs_lock:
        found = _hubs.get(services.engine)
    if found is not None:
        found.wake(job_id)
