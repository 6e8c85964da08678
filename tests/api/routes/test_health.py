"""/healthz and /metrics."""

from __future__ import annotations


def test_metrics_prometheus_text(api):
    cred = api.credential()
    host = api.host("m1", cred["id"])
    api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]})
    r = api.get("/metrics", role="viewer")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'smcp_jobs{status="pending"} 1' in text
    assert 'smcp_jobs{status="running"} 0' in text
    assert "# TYPE smcp_job_duration_seconds histogram" in text
    assert "smcp_events_ingested_total 0" in text


def test_openapi_documents_every_route(api):
    spec = api.client.get("/openapi.json").json()
    for path, item in spec["paths"].items():
        for method, op in item.items():
            assert op.get("summary") and op.get("description"), (method, path)
            if path != "/healthz":
                assert "401" in op["responses"], (method, path)
