"""smcp-worker's own /metrics (issue 14, Deliver 7): slots, running jobs and the age of its last lease renewal,
served by a real `smcp-worker` process on a real RabbitMQ and store (the fixtures of test_dispatch_broker.py);
and the endpoint's options, checked before anything starts.

Waits are bounded (a figure that never comes fails the test); nothing is timed.
"""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import pytest
from smcp_api import worker_main
from smcp_api.models import Worker
from sqlalchemy import select

from tests.api.test_dispatch_broker import (  # noqa: F401  (fixtures)
    LEASE_TTL,
    _local_hosts,
    _remove_worker_job_users,
    broker,
    broker_api,
    rabbit,
    start_worker,
)

BOUND = 60.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _scrape(port: int) -> dict[str, str] | None:
    try:
        r = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    except httpx.HTTPError:
        return None
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return dict(line.rsplit(" ", 1) for line in r.text.splitlines() if line and not line.startswith("#"))


def _until(what: Any, message: str) -> Any:
    deadline = time.monotonic() + BOUND
    while not (got := what()):
        assert time.monotonic() < deadline, message
        time.sleep(0.1)
    return got


def test_the_worker_serves_its_slots_running_jobs_and_heartbeat(broker_api, start_worker):  # noqa: F811
    port = _free_port()
    worker = start_worker(slots=3, SMCP_WORKER_METRICS_PORT=str(port))
    lines = _until(lambda: _scrape(port), f"no /metrics on port {port}: {worker.text()[-2000:]}")
    with broker_api.services.sessions() as s:
        (worker_id,) = s.scalars(select(Worker.id).where(Worker.slots == 3)).all()
    info = [k for k in lines if k.startswith("smcp_worker_process_info{")]
    assert info == [f'smcp_worker_process_info{{worker="{worker_id}",host="{socket.gethostname()}"}}']
    assert lines["smcp_worker_process_slots"] == "3"
    assert lines["smcp_worker_process_jobs_running"] == "0"
    assert 0 <= float(lines["smcp_worker_process_heartbeat_age_seconds"]) < LEASE_TTL
    assert lines["smcp_worker_process_heartbeat_failures_total"] == "0"

    host = _local_hosts(broker_api)[0]
    job = broker_api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [host["id"]]}).json()
    broker_api.wait_job(job["id"], statuses=("running",), timeout=BOUND)
    _until(
        lambda: (_scrape(port) or {}).get("smcp_worker_process_jobs_running") == "1",
        "the running job is not counted",
    )
    # the heartbeat renews every LEASE_TTL/3: the age falls back (a sample lower than the one before)
    ages = [float(lines["smcp_worker_process_heartbeat_age_seconds"])]

    def renewed() -> bool:
        ages.append(float((_scrape(port) or {})["smcp_worker_process_heartbeat_age_seconds"]))
        return ages[-1] < ages[-2]

    _until(renewed, "the worker never renewed its leases (the age never fell back)")
    assert max(ages) < LEASE_TTL
    assert broker_api.post(f"/api/v1/jobs/{job['id']}/cancel").status_code == 202
    broker_api.wait_job(job["id"], timeout=BOUND)
    _until(
        lambda: (_scrape(port) or {}).get("smcp_worker_process_jobs_running") == "0",
        "the ended job is still counted",
    )
    after = _scrape(port) or {}
    assert int(after["smcp_events_ingested_total"]) > 0
    # the job's start: spawned (the launcher's mark) and Ansible's playbook_on_start, once each, in that order
    spawned, started = 'until="playbook_spawned"', 'until="playbook_on_start"'
    assert after[f"smcp_job_start_seconds_count{{{spawned}}}"] == "1"
    assert after[f"smcp_job_start_seconds_count{{{started}}}"] == "1"
    assert 0 < float(after[f"smcp_job_start_seconds_sum{{{spawned}}}"])
    assert float(after[f"smcp_job_start_seconds_sum{{{spawned}}}"]) <= float(
        after[f"smcp_job_start_seconds_sum{{{started}}}"]
    )
    assert httpx.get(f"http://127.0.0.1:{port}/other", timeout=5).status_code == 404


def test_metrics_port_zero_serves_nothing(broker_api, start_worker):  # noqa: F811
    port = _free_port()
    worker = start_worker(SMCP_WORKER_METRICS_PORT="0", SMCP_WORKER_METRICS_ADDRESS="127.0.0.1")

    def started() -> list[str]:
        with broker_api.services.sessions() as s:
            return list(s.scalars(select(Worker.id).where(Worker.slots == 2)))

    _until(started, "the worker never started")
    assert worker.process.poll() is None, worker.text()
    assert "metrics on" not in worker.text()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5)


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    """Enough settings for smcp-worker to parse its options; the broker is never reached (the checks come first)."""
    for name in ("SMCP_WORKER_METRICS_PORT", "SMCP_WORKER_METRICS_ADDRESS", "SMCP_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SMCP_BROKER_URL", "amqp://smcp:s3cret@127.0.0.1:1/smcp")
    monkeypatch.setenv("SMCP_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("argv", "env", "said"),
    [
        (["--metrics-port", "http"], {}, "--metrics-port: 'http' is not a TCP port; give 1-65535"),
        (["--metrics-port", "70000"], {}, "--metrics-port: '70000' is not a TCP port"),
        ([], {"SMCP_WORKER_METRICS_PORT": "-1"}, "SMCP_WORKER_METRICS_PORT: '-1' is not a TCP port"),
        (["--metrics-address", "any"], {}, "--metrics-address: 'any' is not an IP address"),
        ([], {"SMCP_WORKER_METRICS_ADDRESS": "localhost"}, "SMCP_WORKER_METRICS_ADDRESS: 'localhost' is not an IP"),
    ],
)
def test_bad_metrics_options_are_refused_naming_the_option(worker_env, monkeypatch, capsys, argv, env, said):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit) as exc:
        worker_main.main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert said in err and "s3cret" not in err


def test_a_metrics_port_in_use_stops_the_worker_before_it_starts(worker_env, capsys):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(SystemExit) as exc:
            worker_main.main(["--metrics-port", str(port)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert f"cannot serve /metrics on 127.0.0.1 port {port}" in err and "choose a free port" in err
