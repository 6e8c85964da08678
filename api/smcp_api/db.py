"""Engine, sessions and schema migrations (Alembic runs inside the service at start)."""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from smcp_api.fsmodes import create_private_file, private_dir, tighten_file

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_GATE_TIMEOUT = 30.0


def make_engine(url: str) -> Engine:
    """An engine for SQLite (file, WAL, immediate write transactions) or PostgreSQL (psycopg 3)."""
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:" and not path.startswith("file:"):
            private_files(Path(path))
        engine = sa.create_engine(url, connect_args={"check_same_thread": False, "timeout": 60})

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        # One transaction at a time, queued on a Python lock (woken at once) rather than on SQLite's busy handler
        # (sleeps up to 100 ms per retry: a long latency tail under concurrent clients). No owner thread (a
        # session may be closed by another thread than the one that began it); a timeout, never a deadlock.
        gate = threading.Lock()

        @sa.event.listens_for(engine, "begin")
        def _sqlite_begin(conn: sa.Connection) -> None:
            held = gate.acquire(timeout=SQLITE_GATE_TIMEOUT)
            conn.info["smcp_gate"] = held
            try:
                # IMMEDIATE: take the write lock up front, so two writers never dead-end on a lock upgrade.
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _release(conn)
                raise

        def _release(conn: sa.Connection) -> None:
            if conn.info.pop("smcp_gate", False):
                gate.release()

        sa.event.listen(engine, "commit", _release)
        sa.event.listen(engine, "rollback", _release)

        return engine
    return sa.create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def private_files(db: Path) -> None:
    """The SQLite file 0600 in a 0700 directory, before SQLite opens it.

    SQLite creates the -wal and -shm files with the database file's mode, so they follow; existing ones
    (and an existing database or directory with looser modes) are tightened.
    """
    private_dir(db.parent)
    create_private_file(db)
    for suffix in ("-wal", "-shm", "-journal"):
        tighten_file(db.with_name(db.name + suffix))


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit on success, roll back on any error."""
    with factory() as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def alembic_config(engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["engine"] = engine
    return cfg


STARTUP_LOCK_KEY = 0x736D6370  # "smcp": the PostgreSQL advisory lock of start-up work


@contextmanager
def startup_lock(engine: Engine) -> Iterator[None]:
    """Start-up work (migrations, the bootstrap admin, the secret key) one process at a time, across machines.

    PostgreSQL: a session-level advisory lock on a connection of its own; SQLite: an flock on `<db>.lock` beside
    the database file (processes sharing a SQLite file share a machine). Waits for the holder, never fails on it.
    """
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT pg_advisory_lock(:key)"), {"key": STARTUP_LOCK_KEY})
            conn.commit()
            try:
                yield
            finally:
                conn.execute(sa.text("SELECT pg_advisory_unlock(:key)"), {"key": STARTUP_LOCK_KEY})
                conn.commit()
        return
    path = engine.url.database if engine.dialect.name == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        yield
        return
    lock = Path(path).with_name(Path(path).name + ".lock")
    create_private_file(lock)
    fd = os.open(lock, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # drops the lock


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent; replicas starting at once migrate one at a time)."""
    with startup_lock(engine):
        command.upgrade(alembic_config(engine), "head")
