"""Dispatch on a real RabbitMQ through Celery: smcp-api (create_app with broker_url) publishes job ids, real
`smcp-worker` processes run the jobs on the same database (the stand-in playbooks of conftest.py).

The node comes from tests/api/rabbitmq.py (Debian's rabbitmq-server in a temp dir, own ports).
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from smcp_api.jobs import dispatch, isolation
from smcp_api.jobs.celery_app import QUEUE
from smcp_api.jobstates import INTERRUPTED
from smcp_api.models import Job, JobEvent, Lock
from sqlalchemy import func, select

from tests.api.rabbitmq import RabbitNode, rabbitmq_node

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(sys.executable).with_name("smcp-worker")
# Job users of the worker processes of this session (each process its own prefix: a slot's user belongs to one
# process); removed at the end of the session.
WORKER_USERS = f"smcpw{os.getpid() % 100000}-"
LEASE_TTL = 6.0  # every process of a test alike (a worker beats every 2 s; a loaded CI machine may delay one)


@pytest.fixture(scope="session")
def rabbit() -> Iterator[RabbitNode]:
    with rabbitmq_node() as node:
        yield node


@pytest.fixture(scope="session", autouse=True)
def _remove_worker_job_users() -> Iterator[None]:
    yield
    users = [e for e in pwd.getpwall() if e.pw_name.startswith(WORKER_USERS)]
    isolation.kill_user_processes({e.pw_uid for e in users})
    for entry in users:
        subprocess.run(["userdel", entry.pw_name], capture_output=True, check=False)


@pytest.fixture
def broker(rabbit: RabbitNode) -> RabbitNode:
    """The node with an empty smcp.jobs queue (a test never sees another test's messages)."""
    from kombu import Connection

    with Connection(rabbit.url) as conn:
        try:
            conn.default_channel.queue_purge(QUEUE)
        except Exception:  # not declared yet
            pass
    return rabbit


class WorkerProc:
    def __init__(self, process: subprocess.Popen[bytes], log: Path, prefix: str) -> None:
        self.process = process
        self.log = log
        self.prefix = prefix

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(30)


@pytest.fixture
def start_worker(settings, broker, reachable_dir, tmp_path) -> Iterator[Callable[..., WorkerProc]]:
    """Start a real `smcp-worker` on the test's database and broker; every one is stopped at the end."""
    started: list[WorkerProc] = []

    def start(name: str = "a", slots: int = 2, **env: str) -> WorkerProc:
        prefix = f"{WORKER_USERS}{len(started)}{name[:3]}"
        jobs_dir = reachable_dir() / "jobs"
        values = {
            "SMCP_BROKER_URL": broker.url,
            "SMCP_DB_URL": settings.database_url(),
            "SMCP_DATA_DIR": str(settings.data_dir),
            "SMCP_COLLECTIONS_PATH": str(settings.collections_path),
            "SMCP_ANSIBLE_CONFIG": str(settings.ansible_config),
            "SMCP_JOBS_DIR": str(jobs_dir),
            "SMCP_JOB_USER_PREFIX": prefix,
            "SMCP_WORKERS": str(slots),
            "SMCP_HOST_KEY_SCAN_TIMEOUT": "1",
            "SMCP_LEASE_TTL": str(LEASE_TTL),
            "SMCP_BROKER_SWEEP_INTERVAL": "0.5",
            "SMCP_BROKER_REPUBLISH_AFTER": "1",
            **env,
        }
        clean = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_")}
        log = tmp_path / f"worker-{len(started)}-{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [str(WORKER), "--log-level", "info"], env={**clean, **values}, stdout=out, stderr=subprocess.STDOUT
            )
        proc = WorkerProc(process, log, prefix)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill(signal.SIGTERM)


@pytest.fixture
def broker_api(start_api, broker):
    """smcp-api with the broker: publishes, runs nothing (its lease recovery runs every lease_ttl)."""
    return start_api(start_worker=True, broker_url=broker.url, lease_ttl=LEASE_TTL)


def _local_hosts(api, n=1):
    cred = api.credential()
    return [api.host(f"local{i}", cred["id"]) for i in range(n)]


def _events(api, job_id: str, kind: str) -> int:
    with api.services.sessions() as s:
        return s.scalar(
            select(func.count()).select_from(JobEvent).where(JobEvent.job_id == job_id, JobEvent.event == kind)
        )


def test_api_with_a_broker_publishes_and_a_worker_process_runs_the_job(broker_api, start_worker, broker):
    assert isinstance(broker_api.services.worker, dispatch.CeleryPublisher)  # no in-process worker
    worker = start_worker()
    hosts = _local_hosts(broker_api, 2)
    job = broker_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [h["id"] for h in hosts]})
    assert job.status_code == 202, job.text
    done = broker_api.wait_job(job.json()["id"], timeout=120)
    assert done["status"] == "successful", (done, worker.text()[-3000:])
    assert done["owner"].split(":")[1] == str(worker.process.pid)  # run by the smcp-worker process
    assert "published again" not in worker.text()  # reached it through the API's publish, not the sweep
    assert "smcp-worker" in worker.text() and "guest:guest" not in worker.text()  # the broker's password unlogged
    assert "hello from local0" in broker_api.get(f"/api/v1/jobs/{done['id']}/stdout").text
    queues = broker.queues()
    assert queues[QUEUE]["type"] == "quorum" and queues[QUEUE]["durable"] == "true"
    assert set(queues) == {QUEUE}  # nothing else on the broker (no remote-control or delayed-delivery queues)
    assert "SecurityWarning" not in worker.text()


def test_cancel_through_the_api_reaches_the_worker(broker_api, start_worker):
    worker = start_worker()
    hosts = _local_hosts(broker_api)
    job = broker_api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [hosts[0]["id"]]}).json()
    broker_api.wait_job(job["id"], statuses=("running",), timeout=60)
    deadline = time.monotonic() + 60
    while not _events(broker_api, job["id"], "runner_on_start"):  # the slow task (sleep 120) has started
        assert time.monotonic() < deadline, worker.text()[-3000:]
        time.sleep(0.1)
    assert broker_api.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202
    done = broker_api.wait_job(job["id"], timeout=60)
    assert done["status"] == "canceled", (done, worker.text()[-3000:])
    with broker_api.services.sessions() as s:
        assert s.scalars(select(Lock).where(Lock.job_id == job["id"])).all() == []


def test_a_message_delivered_again_never_runs_the_job_twice(broker_api, start_worker):
    worker = start_worker(slots=3)
    hosts = _local_hosts(broker_api)
    job = broker_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [hosts[0]["id"]]}).json()
    for _ in range(3):  # duplicates while it is pending or running (three slots take them at once)
        broker_api.services.worker.publish(job["id"])
    done = broker_api.wait_job(job["id"], timeout=120)
    assert done["status"] == "successful", (done, worker.text()[-3000:])
    broker_api.services.worker.publish(job["id"])  # and one after it finished
    deadline = time.monotonic() + 30
    while worker.text().count("not pending any more") < 4:
        assert time.monotonic() < deadline, worker.text()[-3000:]
        time.sleep(0.1)
    assert _events(broker_api, job["id"], "playbook_on_start") == 1


def test_a_lost_message_is_published_again_by_the_sweep(broker_api, start_worker, caplog):
    publisher = broker_api.services.worker

    def lost(job_id: str) -> None:
        raise ConnectionError("broker unreachable (simulated)")

    publisher.publish = lost  # the commit succeeds, the publish after it fails
    hosts = _local_hosts(broker_api)
    job = broker_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [hosts[0]["id"]]})
    assert job.status_code == 202, job.text
    assert "publishing to the broker" in caplog.text and "guest:guest" not in caplog.text
    time.sleep(1.5)
    assert broker_api.get(f"/api/v1/jobs/{job.json()['id']}").json()["status"] == "pending"
    worker = start_worker()  # sweeps every 0.5 s, publishes jobs pending for 1 s
    done = broker_api.wait_job(job.json()["id"], timeout=120)
    assert done["status"] == "successful", (done, worker.text()[-3000:])
    assert "published again" in worker.text()


def test_a_worker_killed_after_its_claim_leaves_the_job_to_lease_recovery(broker_api, start_worker):
    worker = start_worker()
    hosts = _local_hosts(broker_api)
    job = broker_api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [hosts[0]["id"]]}).json()
    running = broker_api.wait_job(job["id"], statuses=("running",), timeout=60)
    assert running["owner"].split(":")[1] == str(worker.process.pid)
    worker.kill(signal.SIGKILL)
    # the API process's lease recovery (every lease_ttl) ends it: its worker stopped beating
    done = broker_api.wait_job(job["id"], timeout=60)
    assert done["status"] == "failed" and done["status_reason"] == INTERRUPTED, done
    with broker_api.services.sessions() as s:
        assert s.scalars(select(Lock).where(Lock.job_id == job["id"])).all() == []
    # another worker runs the next job on those hosts; the interrupted one is never run again
    again = start_worker(name="b")
    again_job = broker_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [hosts[0]["id"]]}).json()
    assert broker_api.wait_job(again_job["id"], timeout=120)["status"] == "successful", again.text()[-3000:]
    with broker_api.services.sessions() as s:
        assert s.get(Job, job["id"]).status == "failed"  # never run again
    # the dead worker's playbook (its job user's `sleep`) outlived it: end it
    isolation.kill_user_processes({e.pw_uid for e in pwd.getpwall() if e.pw_name.startswith(worker.prefix)})


def test_one_process_sweeps_at_a_time(api):
    with dispatch.sweep_lock(api.services) as first:
        with dispatch.sweep_lock(api.services) as second:
            assert first is True and second is False
    with dispatch.sweep_lock(api.services) as again:
        assert again is True  # released


def test_a_stopped_worker_ends_its_running_job_interrupted(broker_api, start_worker):
    worker = start_worker()
    hosts = _local_hosts(broker_api)
    job = broker_api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [hosts[0]["id"]]}).json()
    broker_api.wait_job(job["id"], statuses=("running",), timeout=60)
    deadline = time.monotonic() + 60
    while not _events(broker_api, job["id"], "runner_on_start"):
        assert time.monotonic() < deadline, worker.text()[-3000:]
        time.sleep(0.1)
    worker.process.send_signal(signal.SIGTERM)  # a warm shutdown would wait for the job (sleep 120): it must not
    assert worker.process.wait(60) == 0, worker.text()[-3000:]
    done = broker_api.get(f"/api/v1/jobs/{job['id']}").json()
    assert done["status"] == "failed" and done["status_reason"] == INTERRUPTED, done
    assert done["owner"].split(":")[1] == str(worker.process.pid)  # finished by its own worker, not by recovery
    with broker_api.services.sessions() as s:
        assert s.scalars(select(Lock).where(Lock.job_id == job["id"])).all() == []
