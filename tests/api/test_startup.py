"""Replicas starting at once (issue 14): migrations, the secret key and the bootstrap admin under a start-up lock,
and job users shared by several processes on one machine. Real processes, really concurrent.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from smcp_api.db import MIGRATIONS_DIR, make_engine
from smcp_api.jobs import isolation
from smcp_api.models import Token
from smcp_api.security import Vault
from sqlalchemy import select, text

from tests.api.conftest import HAVE_PG, REPO, _pg_database

# Imports first, then wait for the go file: both processes reach start-up within a millisecond of each other.
REPLICA = """
import json, sys, time
from pathlib import Path
from fastapi.testclient import TestClient
from smcp_api.core.config import Settings
from smcp_api.main import create_app
conf = json.loads(sys.argv[1])
go = Path(conf.pop("go"))
settings = Settings(**conf)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
with TestClient(create_app(settings, start_worker=False)) as client:
    services = client.app.state.smcp
    sealed = services.vault.encrypt("sealed by this replica").decode()
    print(json.dumps({"token": services.bootstrap_token is not None, "sealed": sealed}))
"""

# `smcp-api bootstrap` (run by the mgmt_plane role on each management host before the first start)
BOOTSTRAP = """
import json, sys, time
from pathlib import Path
from smcp_api.bootstrap import bootstrap
from smcp_api.core.config import Settings
conf = json.loads(sys.argv[1])
go = Path(conf.pop("go"))
scrape = Path(conf["data_dir"]) / "scrape.token"
settings = Settings(**conf)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
made = bootstrap(settings, scrape, "prometheus")
print(json.dumps({"token": made["admin_token"], "scrape": made["scrape_token"]}))
"""

HOLDER = """
import os, subprocess, sys, time
from pathlib import Path
from smcp_api.jobs import isolation
root, prefix = Path(sys.argv[1]), sys.argv[2]
jobs = isolation.JobIsolation.setup(root, 2, prefix)
user = jobs.pool.acquire()
path = isolation.make_job_dir(root, "job", user)
child = subprocess.Popen(["setpriv", f"--reuid={user.uid}", f"--regid={user.gid}", "--clear-groups", "sleep", "300"])
print(user.name, child.pid, flush=True)
time.sleep(300)
"""


def _head() -> str:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    head = ScriptDirectory.from_config(cfg).get_current_head()
    assert head is not None
    return head


def _start_at_once(confs: list[dict], go: Path, script: str = REPLICA) -> list[dict]:
    env = {**os.environ, "PYTHONPATH": str(REPO / "api")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, json.dumps({**conf, "go": str(go)})],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for conf in confs
    ]
    for proc in procs:  # both imported and waiting
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready", proc.stderr
    go.touch()
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


@pytest.mark.parametrize("script", [REPLICA, BOOTSTRAP], ids=["start", "bootstrap"])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_replicas_starting_at_once_on_a_fresh_store(
    backend, script, request, tmp_path, reachable_dir, job_user_prefix, fake_collections
):
    if backend == "postgres":
        if not HAVE_PG:
            pytest.skip("no PostgreSQL")
        url, drop = _pg_database(request.getfixturevalue("pg_server"))  # fresh: no schema at all
        request.addfinalizer(drop)
        data_dirs = [tmp_path / "a", tmp_path / "b"]  # two machines, one database
    else:
        url = f"sqlite:///{tmp_path / 'shared' / 'smcp.db'}"
        data_dirs = [tmp_path / "shared"] * 2  # two processes on one machine, one data dir
    jobs_dir = reachable_dir() / "jobs"
    confs = [
        {
            "data_dir": str(d),
            "db_url": url,
            "workers": 0,
            "jobs_dir": str(jobs_dir),
            "job_user_prefix": job_user_prefix,
            "collections_path": str(fake_collections),
        }
        for d in data_dirs
    ]
    results = _start_at_once(confs, tmp_path / "go", script)
    assert sorted(r["token"] for r in results) == [False, True]  # exactly one created the admin token
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            names = conn.execute(select(Token.name).order_by(Token.name)).scalars().all()
            assert names == ["bootstrap-admin", *(["prometheus"] if script == BOOTSTRAP else [])]
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
    finally:
        engine.dispose()
    if backend == "sqlite" and script == REPLICA:  # one secret key for both (each can read what the other stored), 0600
        key_file = tmp_path / "shared" / "secret.key"
        assert key_file.stat().st_mode & 0o777 == 0o600
        vault = Vault(key_file.read_bytes().strip())
        assert [vault.decrypt(r["sealed"].encode()) for r in results] == ["sealed by this replica"] * 2


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def test_job_users_are_shared_safely_between_processes_on_one_machine(reachable_dir, job_user_prefix):
    root = reachable_dir() / "jobs"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(root), job_user_prefix],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO / "api")},
    )
    try:
        assert holder.stdout is not None
        name, child = holder.stdout.readline().split()
        jobs = isolation.JobIsolation.setup(root, 2, job_user_prefix)
        # a live process's job user is neither handed out here nor cleaned up by recovery
        assert jobs.recover() == []
        assert _alive(int(child)) and (root / name).is_dir()
        mine = jobs.pool.acquire(timeout=2)
        assert mine.name != name
        with pytest.raises(isolation.IsolationError, match="no free job user"):
            jobs.pool.acquire(timeout=0.5)
        jobs.pool.release(mine)
        # the holder dies (kill -9): its job's process and directory are what recovery ends and removes
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert _alive(int(child))
        assert name in jobs.recover()
        deadline = time.monotonic() + 10
        while _alive(int(child)):
            assert time.monotonic() < deadline, "the dead holder's job process still runs"
            time.sleep(0.05)
        assert not (root / name).exists()
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_migration_0002_hands_jobs_running_before_it_to_recovery(backend, request, tmp_path):
    from alembic import command
    from smcp_api.core.config import Settings
    from smcp_api.db import alembic_config, migrate
    from smcp_api.jobs import leases
    from smcp_api.services import build_services

    if backend == "postgres":
        if not HAVE_PG:
            pytest.skip("no PostgreSQL")
        url, drop = _pg_database(request.getfixturevalue("pg_server"))
        request.addfinalizer(drop)
    else:
        url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0001")  # a store from before leases, with a job running
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO jobs (id, operation, status, host_ids, params, cancel_requested, created_at, "
                "started_at, host_summary, event_count, task_count) VALUES ('old1', 'preflight', 'running', "
                "'[]', '{}', false, :now, :now, '{}', 0, 0)"
            ),
            {"now": "2026-12-01 10:00:00"},
        )
    migrate(engine)
    command.downgrade(alembic_config(engine), "0001")  # reversible
    migrate(engine)
    engine.dispose()
    services = build_services(Settings(data_dir=tmp_path / "data", db_url=url))
    try:
        with services.engine.connect() as conn:
            row = conn.execute(text("SELECT owner, heartbeat_at FROM jobs WHERE id = 'old1'")).one()
            assert tuple(row) == (None, None)
            assert conn.execute(text("SELECT count(*) FROM workers")).scalar() == 0
        assert leases.recover_expired(services) == ["old1"]
    finally:
        services.engine.dispose()
