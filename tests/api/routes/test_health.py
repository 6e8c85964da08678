"""/healthz and /metrics."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from smcp_api.models import Job
from sqlalchemy import create_engine, update


def _metric(text: str, name: str) -> str:
    """The value of one sample line (`name value`) of a Prometheus text page."""
    found = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.rsplit(" ", 1)[0] == name]
    assert len(found) == 1, (name, text)
    return found[0]


def test_metrics_prometheus_text_counts_jobs_by_status(api):
    cred = api.credential()
    host = api.host("m1", cred["id"])
    api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]})
    r = api.get("/metrics", role="viewer")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert _metric(r.text, 'smcp_jobs{status="pending"}') == "1"
    assert _metric(r.text, 'smcp_jobs{status="running"}') == "0"
    assert "# TYPE smcp_job_duration_seconds histogram" in r.text
    assert api.client.get("/metrics").status_code == 401


def test_metrics_duration_histogram_from_finished_jobs(api):
    cred = api.credential()
    host = api.host("m1", cred["id"])
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for seconds in (3, 45):
        job = api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]}).json()
        with api.services.sessions() as s:  # what the worker records when a job ends
            s.execute(
                update(Job)
                .where(Job.id == job["id"])
                .values(status="successful", started_at=start, finished_at=start + timedelta(seconds=seconds))
            )
            s.commit()
    text = api.get("/metrics", role="viewer").text
    bucket = 'smcp_job_duration_seconds_bucket{operation="preflight",le="%s"}'
    assert [_metric(text, bucket % le) for le in ("1", "5", "30", "60", "+Inf")] == ["0", "1", "1", "2", "2"]
    assert _metric(text, 'smcp_job_duration_seconds_sum{operation="preflight"}') == "48.000"
    assert _metric(text, 'smcp_job_duration_seconds_count{operation="preflight"}') == "2"
    assert _metric(text, 'smcp_jobs{status="successful"}') == "2"


def test_metrics_count_the_events_a_worker_ingests(live_api):
    cred = live_api.credential()
    host = live_api.host("local0", cred["id"])
    assert _metric(live_api.get("/metrics").text, "smcp_events_ingested_total") == "0"
    job = live_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]}).json()
    done = live_api.wait_job(job["id"])
    assert done["status"] == "successful", done["status_reason"]
    stored = live_api.get(f"/api/v1/jobs/{job['id']}/events?limit=5000").json()
    assert len(stored) > 10
    assert _metric(live_api.get("/metrics").text, "smcp_events_ingested_total") == str(len(stored))


def test_healthz_ok_when_the_store_answers(api):
    r = api.client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "db": "ok"}


def test_healthz_503_when_the_store_does_not_answer(api, monkeypatch):
    # A store that refuses connections (nothing listens on port 1); its password must not reach the answer.
    down = create_engine("postgresql+psycopg://smcp:hunter2-secret@127.0.0.1:1/smcp", pool_pre_ping=False)
    monkeypatch.setattr(api.services, "engine", down)
    r = api.client.get("/healthz")
    assert r.status_code == 503
    assert r.json() == {"status": "degraded", "db": "OperationalError"}
    assert "hunter2" not in r.text
    down.dispose()


def test_openapi_documents_every_route(api):
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary") and op.get("description"), (method, path)
            if path != "/healthz":
                assert "401" in op["responses"], (method, path)
    assert "503" in spec["paths"]["/healthz"]["get"]["responses"]
