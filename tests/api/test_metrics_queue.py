"""Queue and lease metrics (issue 14, Deliver 7): the age of the oldest pending job, the oldest running job by
operation, the lease length and the running jobs whose lease has ended. The alert rules in
roles/mgmt_plane/files/rules/mgmt_plane.yml read them (tests/unit/test_mgmt_plane_rules.py).

Real store (SQLite and PostgreSQL, conftest); no worker runs, so the jobs stay as the test puts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smcp_api.jobs import leases
from smcp_api.models import Job
from sqlalchemy import update

LEASE = 30.0


def _job(api, name: str) -> str:
    cred = api.credential(f"{name}-key")
    host = api.host(f"{name}-h1", cred["id"])
    cluster = api.cluster(name, [host["id"]])
    r = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _metrics(api) -> dict[str, str]:
    r = api.get("/metrics")
    assert r.status_code == 200, r.text
    return dict(line.rsplit(" ", 1) for line in r.text.splitlines() if line and not line.startswith("#"))


def _set(api, job_id: str, **values: object) -> None:
    with api.services.sessions() as s:
        s.execute(update(Job).where(Job.id == job_id).values(**values))
        s.commit()


def test_an_idle_store_reports_an_empty_queue(start_api):
    lines = _metrics(start_api(lease_ttl=LEASE))
    assert lines["smcp_jobs_pending_oldest_age_seconds"] == "0.000"
    assert lines["smcp_lease_ttl_seconds"] == "30"
    assert lines["smcp_jobs_running_lease_expired"] == "0"
    assert not [k for k in lines if k.startswith("smcp_jobs_running_oldest_age_seconds")]


def test_queue_age_running_age_and_expired_leases(start_api):
    api = start_api(lease_ttl=LEASE)
    now = datetime.now(UTC)
    waiting, fresh, stale = _job(api, "c1"), _job(api, "c2"), _job(api, "c3")
    _job(api, "c4")  # pending, newer: the oldest one counts
    _set(api, waiting, created_at=now - timedelta(seconds=600))
    for job_id in (fresh, stale):
        assert leases.claim(api.services, job_id, "replica-a:1:aa")
    _set(api, fresh, started_at=now - timedelta(seconds=50), heartbeat_at=now)
    # its worker stopped renewing 100 s ago (3 leases): recovery has not run yet
    _set(api, stale, started_at=now - timedelta(seconds=7200), heartbeat_at=now - timedelta(seconds=100))
    lines = _metrics(api)
    assert 600 <= float(lines["smcp_jobs_pending_oldest_age_seconds"]) < 660
    assert 7200 <= float(lines['smcp_jobs_running_oldest_age_seconds{operation="prepare_hosts"}']) < 7260
    assert lines["smcp_jobs_running_lease_expired"] == "1"
    assert lines['smcp_jobs{status="pending"}'] == "2"

    _set(api, stale, heartbeat_at=now - timedelta(seconds=LEASE - 10))  # renewed within the lease
    assert _metrics(api)["smcp_jobs_running_lease_expired"] == "0"
