"""Job leases (issue 14): owner and heartbeat, guarded finishing, recovery of expired leases only, replicas.

Real parts only: the store is SQLite or PostgreSQL (conftest), replicas are app instances with their own worker id
sharing one database, and the jobs run the local stand-in playbooks (prepare_hosts waits 120 s).
"""

from __future__ import annotations

import os
import pwd
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from smcp_api.jobs import isolation, leases
from smcp_api.jobstates import INTERRUPTED
from smcp_api.models import Job, JobEvent, Lock
from smcp_api.models import Worker as WorkerRow
from sqlalchemy import func, insert, select, update

LEASE = 2.0  # seconds: recovery within about 2 leases (the expiry, then the next periodic recovery)


def _cluster_job(api, name="c1"):
    cred = api.credential(f"{name}-key")
    host = api.host(f"{name}-h1", cred["id"])
    cluster = api.cluster(name, [host["id"]])
    r = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
    assert r.status_code == 202, r.text
    return cluster, r.json()


def _locks(api, job_id):
    with api.services.sessions() as s:
        return s.scalars(select(Lock.key).where(Lock.job_id == job_id)).all()


def _wait_started(api, job_id, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not any(e["event"] == "runner_on_start" for e in api.get(f"/api/v1/jobs/{job_id}/events").json()):
        assert time.monotonic() < deadline, api.get(f"/api/v1/jobs/{job_id}").json()
        time.sleep(0.1)


def test_claim_sets_owner_and_heartbeat_once(start_api):
    api = start_api(lease_ttl=LEASE)
    _cluster, job = _cluster_job(api)
    assert job["owner"] is None and job["heartbeat_at"] is None
    assert leases.claim(api.services, job["id"], "replica-a:1:aa")
    assert not leases.claim(api.services, job["id"], "replica-b:2:bb")  # a second delivery never runs it again
    assert leases.claim_next(api.services, "replica-b:2:bb") is None
    got = api.get(f"/api/v1/jobs/{job['id']}").json()
    assert got["status"] == "running" and got["owner"] == "replica-a:1:aa"
    assert got["heartbeat_at"] == got["started_at"]


def test_finish_is_guarded_by_owner_and_state(start_api):
    api = start_api(lease_ttl=LEASE)
    _cluster, job = _cluster_job(api)
    assert leases.claim_next(api.services, "replica-a:1:aa") == job["id"]
    # another worker cannot finish it: nothing changes, the lock stays
    assert not leases.finish(api.services, job["id"], "successful", None, 0, owner="replica-b:2:bb")
    assert api.get(f"/api/v1/jobs/{job['id']}").json()["status"] == "running" and _locks(api, job["id"])
    # its lease ends; the owner's late finish must not overwrite the recovery
    with api.services.sessions() as s:
        s.execute(update(Job).where(Job.id == job["id"]).values(heartbeat_at=datetime.now(UTC) - timedelta(minutes=5)))
        s.commit()
    assert leases.recover_expired(api.services) == [job["id"]]
    assert not leases.finish(api.services, job["id"], "successful", None, 0, owner="replica-a:1:aa")
    got = api.get(f"/api/v1/jobs/{job['id']}").json()
    assert (got["status"], got["status_reason"], got["rc"]) == ("failed", INTERRUPTED, None)


def test_recovery_takes_only_expired_leases_and_keeps_events(start_api):
    api = start_api(lease_ttl=LEASE)
    _c1, alive = _cluster_job(api, "c1")
    _c2, dead = _cluster_job(api, "c2")
    assert leases.claim(api.services, alive["id"], "other-host:10:aa")
    assert leases.claim(api.services, dead["id"], "other-host:11:bb")
    stale = datetime.now(UTC) - timedelta(seconds=LEASE + 1)
    with api.services.sessions() as s:
        s.execute(update(Job).where(Job.id == dead["id"]).values(heartbeat_at=stale))
        s.execute(
            insert(JobEvent),
            [{"job_id": dead["id"], "counter": n, "event": "runner_on_ok", "stdout": f"line {n}"} for n in (1, 2)],
        )
        s.commit()
    assert leases.recover_expired(api.services) == [dead["id"]]
    assert api.get(f"/api/v1/jobs/{alive['id']}").json()["status"] == "running" and _locks(api, alive["id"])
    got = api.get(f"/api/v1/jobs/{dead['id']}").json()
    assert got["status"] == "failed" and got["status_reason"] == INTERRUPTED and not _locks(api, dead["id"])
    assert [e["counter"] for e in api.get(f"/api/v1/jobs/{dead['id']}/events").json()] == [1, 2]
    assert leases.recover_expired(api.services) == []  # nothing twice


def test_heartbeat_renews_its_jobs_and_stops_a_job_it_lost(start_api):
    api = start_api(lease_ttl=LEASE)
    _cluster, job = _cluster_job(api)
    lost: list[str] = []
    beat = leases.Heartbeat(api.services, "replica-a:1:aa", slots=1, running=lambda: [job["id"]], on_lost=lost.append)
    beat.start()
    try:
        assert leases.claim(api.services, job["id"], "replica-a:1:aa")
        old = datetime.now(UTC) - timedelta(seconds=LEASE + 1)
        with api.services.sessions() as s:
            s.execute(update(Job).where(Job.id == job["id"]).values(heartbeat_at=old))
            s.commit()
        assert beat.beat() == [] and lost == []
        assert leases.recover_expired(api.services) == []  # renewed: not expired
        with api.services.sessions() as s:  # the worker's row is there for metrics and liveness
            row = s.get(WorkerRow, "replica-a:1:aa")
            assert row is not None and row.slots == 1 and row.heartbeat_at > old
            s.execute(update(Job).where(Job.id == job["id"]).values(heartbeat_at=old))
            s.commit()
        assert leases.recover_expired(api.services) == [job["id"]]  # e.g. this process stalled longer than a lease
        assert beat.beat() == [job["id"]] and lost == [job["id"]]  # its playbook is stopped
    finally:
        beat.stop()
    with api.services.sessions() as s:
        assert s.get(WorkerRow, "replica-a:1:aa") is None  # a clean stop forgets the worker


def test_a_replica_starting_leaves_a_running_job_alone_until_its_lease_ends(start_api):
    """The reproduction of issue 14: B starts (without and with workers) while A runs a mutating job."""
    a = start_api(start_worker=True, lease_ttl=LEASE)
    cluster, job = _cluster_job(a)
    _wait_started(a, job["id"])
    locks = _locks(a, job["id"])
    assert locks
    b0 = start_api(workers=0, lease_ttl=LEASE)
    b2 = start_api(start_worker=True, workers=2, lease_ttl=LEASE)
    time.sleep(LEASE * 2)  # several heartbeats and periodic recoveries of every replica
    for replica in (a, b0, b2):
        got = replica.get(f"/api/v1/jobs/{job['id']}").json()
        assert got["status"] == "running" and got["owner"] == a.services.worker_id, got
    assert _locks(b0, job["id"]) == locks
    r = b0.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
    assert r.status_code == 409 and job["id"] in r.json()["detail"], r.text
    # A stops renewing (as if its process hung or lost the database): B takes over within about two leases
    a.services.heartbeat.stop(forget=False)
    stopped = time.monotonic()
    got = b0.wait_job(job["id"], statuses=("failed",), timeout=LEASE * 4)
    waited = time.monotonic() - stopped
    assert got["status_reason"] == INTERRUPTED and _locks(b0, job["id"]) == []
    assert waited >= LEASE * 0.5, waited  # not before the lease could end (recovery is lease-based)
    again = b0.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
    assert again.status_code == 202, again.text


def test_cancel_from_another_replica_reaches_the_owning_worker(start_api):
    worker = start_api(start_worker=True, lease_ttl=LEASE)
    api_only = start_api(workers=0, lease_ttl=LEASE)
    _cluster, job = _cluster_job(api_only)
    api_only.services.worker = None  # this replica has no worker to tell: only the store carries the request
    _wait_started(worker, job["id"])
    r = api_only.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 202, r.text
    done = api_only.wait_job(job["id"], timeout=30)
    assert (done["status"], done["status_reason"]) == ("canceled", "canceled on request"), done
    assert done["owner"] == worker.services.worker_id and _locks(api_only, job["id"]) == []


@pytest.mark.parametrize("workers", [0, 2])
def test_startup_recovery_ignores_live_owners(start_api, workers):
    api = start_api(lease_ttl=LEASE)
    _cluster, job = _cluster_job(api)
    assert leases.claim(api.services, job["id"], "elsewhere:1:aa")  # fresh heartbeat, another machine
    start_api(workers=workers, start_worker=bool(workers), lease_ttl=LEASE)
    with api.services.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Job).where(Job.status == "running")) == 1


def test_metrics_show_workers_heartbeats_running_jobs_and_dispatch_latency(start_api):
    api = start_api(lease_ttl=LEASE)
    _cluster, job = _cluster_job(api)
    assert leases.claim(api.services, job["id"], "replica-a:1:aa")
    with api.services.sessions() as s:  # created 0.3 s before it was claimed
        started = s.scalar(select(Job.started_at).where(Job.id == job["id"]))
        s.execute(update(Job).where(Job.id == job["id"]).values(created_at=started - timedelta(seconds=0.3)))
        s.execute(
            insert(WorkerRow),
            [
                {
                    "id": "replica-a:1:aa",
                    "host": "replica-a",
                    "pid": 1,
                    "local": "elsewhere",
                    "slots": 3,
                    "heartbeat_at": datetime.now(UTC) - timedelta(seconds=7),
                }
            ],
        )
        s.commit()
    text = api.get("/metrics").text
    lines = dict(line.rsplit(" ", 1) for line in text.splitlines() if line and not line.startswith("#"))
    assert lines['smcp_jobs_running{worker="replica-a:1:aa"}'] == "1"
    assert lines[f'smcp_jobs_running{{worker="{api.services.worker_id}"}}'] == "0"  # this process: no job
    assert 7 <= float(lines['smcp_worker_heartbeat_age_seconds{worker="replica-a:1:aa",host="replica-a"}']) < 60
    assert lines['smcp_worker_slots{worker="replica-a:1:aa"}'] == "3"
    assert lines['smcp_job_dispatch_seconds_bucket{le="0.25"}'] == "0"
    assert lines['smcp_job_dispatch_seconds_bucket{le="0.5"}'] == "1"
    assert lines["smcp_job_dispatch_seconds_count"] == "1"


def test_a_killed_replica_s_job_is_interrupted_by_a_survivor(start_api, settings, tmp_path):
    """kill -9 of the process running a job: another process (no worker of its own) ends it, frees its lock and
    removes what it left on this machine (the job's processes and directory)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {
        "PATH": os.environ["PATH"],
        "SMCP_DATA_DIR": str(settings.data_dir),
        "SMCP_DB_URL": str(settings.db_url),
        "SMCP_JOBS_DIR": str(settings.jobs_dir),
        "SMCP_JOB_USER_PREFIX": settings.job_user_prefix,
        "SMCP_COLLECTIONS_PATH": str(settings.collections_path),
        "SMCP_ANSIBLE_CONFIG": str(settings.ansible_config),
        "SMCP_WORKERS": "1",
        "SMCP_POLL_INTERVAL": "0.1",
        "SMCP_LEASE_TTL": str(LEASE),
    }
    log = tmp_path / "a.log"
    a = subprocess.Popen(
        [str(Path(sys.executable).parent / "smcp-api"), "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline and a.poll() is None, log.read_text()[-2000:]
                time.sleep(0.2)
        b = start_api(workers=0, lease_ttl=LEASE)  # the survivor: an API replica without workers
        cluster, job = _cluster_job(b)
        _wait_started(b, job["id"])
        running = b.get(f"/api/v1/jobs/{job['id']}").json()
        assert running["owner"].split(":")[1] == str(a.pid), running
        users = {u.pw_uid for u in pwd.getpwall() if u.pw_name.startswith(settings.job_user_prefix)}
        assert isolation.processes_of(users)  # the job's ansible-playbook runs as a job user
        os.kill(a.pid, signal.SIGKILL)
        a.wait()
        done = b.wait_job(job["id"], statuses=("failed",), timeout=LEASE * 4)
        assert done["status_reason"] == INTERRUPTED and _locks(b, job["id"]) == []
        deadline = time.monotonic() + LEASE * 4  # the next recovery ends what the dead process left
        while isolation.processes_of(users) or list(settings.jobs_dir.iterdir()):
            assert time.monotonic() < deadline, (isolation.processes_of(users), list(settings.jobs_dir.iterdir()))
            time.sleep(0.1)
        r = b.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
        assert r.status_code == 202, r.text
    finally:
        a.kill()
        a.wait()
