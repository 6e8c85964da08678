"""Jobs without the worker: validation, per-cluster lock, Idempotency-Key, cancel, restart recovery, events, SSE."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from smcp_api.models import Job, JobEvent, Lock
from sqlalchemy import insert, select, update


@pytest.fixture
def setup(api):
    cred = api.credential()
    hosts = [api.host(f"n{i}", cred["id"], address=f"192.0.2.{10 + i}") for i in range(3)]
    cluster = api.cluster("c1", [hosts[0]["id"], hosts[1]["id"]])
    return {"hosts": hosts, "cluster": cluster}


def test_create_is_202_pending(api, setup):
    r = api.post("/api/v1/jobs", role="operator", json={"operation": "preflight", "cluster_id": setup["cluster"]["id"]})
    assert r.status_code == 202
    job = r.json()
    assert job["status"] == "pending" and job["operation"] == "preflight"
    assert job["params"]["forks"] == 20 and job["counters"] == {"events": 0, "tasks": 0}
    assert api.get(f"/api/v1/jobs/{job['id']}", role="viewer").json()["id"] == job["id"]
    assert [j["id"] for j in api.get("/api/v1/jobs?status=pending").json()] == [job["id"]]
    assert api.get("/api/v1/jobs?status=running").json() == []


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({"operation": "reset", "cluster_id": "C"}, "operation reset is not available in this build"),
        ({"operation": "preflight"}, "a job needs a target"),
        ({"operation": "preflight", "host_ids": ["nope"]}, "host_ids[0]: host 'nope' does not exist"),
        ({"operation": "preflight", "cluster_id": "nope"}, "cluster_id: cluster 'nope' does not exist"),
        ({"operation": "etcd_backup", "host_ids": ["H0"]}, "operation etcd_backup works on a cluster; set cluster_id"),
        ({"operation": "preflight", "host_ids": ["H0"], "params": {"forks": 0}}, "params.forks"),
        ({"operation": "preflight", "host_ids": ["H0"], "params": {"forks": 201}}, "params.forks"),
        ({"operation": "preflight", "host_ids": ["H0"], "params": {"batch_size": 101}}, "params.batch_size"),
        ({"operation": "preflight", "host_ids": ["H0"], "params": {"limit": "a;rm"}}, "params.limit"),
        (
            {"operation": "preflight", "host_ids": ["H0"], "params": {"extra_vars": {"smcp_pod_cidr": 5}}},
            "params.extra_vars.smcp_pod_cidr: 5 is not a str",
        ),
        (
            {"operation": "preflight", "host_ids": ["H0"], "params": {"extra_vars": {"ansible_user": "root"}}},
            "connection variables are set by the API",
        ),
        ({"operation": "preflight", "cluster_id": "C", "host_ids": ["H2"]}, "host 'n2' is not part of cluster 'c1'"),
        ({"operation": "dance", "host_ids": ["H0"]}, "operation"),
    ],
)
def test_bad_job_is_422_and_records_nothing(api, setup, body, needle):
    ids = {"C": setup["cluster"]["id"], **{f"H{i}": h["id"] for i, h in enumerate(setup["hosts"])}}
    body = json.loads(json.dumps(body))
    if "cluster_id" in body:
        body["cluster_id"] = ids.get(body["cluster_id"], body["cluster_id"])
    if "host_ids" in body:
        body["host_ids"] = [ids.get(h, h) for h in body["host_ids"]]
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert api.get("/api/v1/jobs").json() == []


def test_one_mutating_job_per_cluster(api, setup):
    cid = setup["cluster"]["id"]
    first = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cid}).json()
    r = api.post("/api/v1/jobs", json={"operation": "etcd_backup", "cluster_id": cid})
    assert r.status_code == 409
    detail = r.json()["detail"]
    assert "cluster 'c1' is busy" in detail and first["id"] in detail and f"/api/v1/jobs/{first['id']}/cancel" in detail
    # a host of the busy cluster is busy too; a read-only preflight is not blocked
    r = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [setup["hosts"][0]["id"]]})
    assert r.status_code == 409
    assert api.post("/api/v1/jobs", json={"operation": "preflight", "cluster_id": cid}).status_code == 202
    # a host outside the cluster is free
    r = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "host_ids": [setup["hosts"][2]["id"]]})
    assert r.status_code == 202
    # cancel releases the lock
    assert api.post(f"/api/v1/jobs/{first['id']}/cancel").status_code == 202
    assert api.post("/api/v1/jobs", json={"operation": "etcd_backup", "cluster_id": cid}).status_code == 202


def test_idempotency_key(api, setup):
    body = {"operation": "prepare_hosts", "cluster_id": setup["cluster"]["id"]}
    first = api.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
    again = api.post("/api/v1/jobs", json=body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 202
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["idempotent-replay"] == "true"
    other = api.post("/api/v1/jobs", json={**body, "params": {"forks": 3}}, headers={"Idempotency-Key": "k-1"})
    assert other.status_code == 422
    assert "Idempotency-Key 'k-1' was already used with a different request" in other.json()["detail"]
    assert len(api.get("/api/v1/jobs").json()) == 1
    # the same key on another resource is another request
    r = api.post("/api/v1/hosts/" + setup["hosts"][2]["id"] + "/check", headers={"Idempotency-Key": "k-1"})
    assert r.status_code == 422


def test_idempotency_key_on_create_routes(api, private_key):
    key = private_key()
    a = api.post("/api/v1/credentials", json={"name": "k", "private_key": key}, headers={"Idempotency-Key": "x"})
    b = api.post("/api/v1/credentials", json={"name": "k", "private_key": key}, headers={"Idempotency-Key": "x"})
    assert a.status_code == b.status_code == 201 and a.json() == b.json()
    t1 = api.post("/api/v1/tokens", json={"name": "t", "role": "viewer"}, headers={"Idempotency-Key": "y"})
    t2 = api.post("/api/v1/tokens", json={"name": "t", "role": "viewer"}, headers={"Idempotency-Key": "y"})
    assert t1.json()["id"] == t2.json()["id"] and t1.json()["token"] and t2.json()["token"] is None


def test_cancel_pending_and_finished(api, setup):
    job = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": setup["cluster"]["id"]}).json()
    assert api.post(f"/api/v1/jobs/{job['id']}/cancel", role="viewer").status_code == 403
    r = api.post(f"/api/v1/jobs/{job['id']}/cancel", role="operator")
    assert r.status_code == 202 and r.json()["status"] == "canceled"
    assert r.json()["status_reason"] == "canceled before it started"
    r = api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 409 and "already finished (canceled)" in r.json()["detail"]
    assert api.post("/api/v1/jobs/nope/cancel").status_code == 404


def test_restart_marks_running_jobs_interrupted_and_keeps_events(start_api, private_key):
    first = start_api()
    cred = first.credential()
    host = first.host("h1", cred["id"])
    cluster = first.cluster("c1", [host["id"]])
    job = first.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]}).json()
    with first.services.sessions() as s:  # what a worker would have done before the service died
        s.execute(update(Job).where(Job.id == job["id"]).values(status="running", started_at=datetime.now(UTC)))
        s.execute(insert(JobEvent), [_event(job["id"], n) for n in (1, 2, 3)])
        s.commit()
    first.stop()
    second = start_api()
    got = second.get(f"/api/v1/jobs/{job['id']}").json()
    assert got["status"] == "failed" and got["status_reason"].startswith("interrupted")
    assert got["finished_at"] is not None
    assert [e["counter"] for e in second.get(f"/api/v1/jobs/{job['id']}/events").json()] == [1, 2, 3]
    with second.services.sessions() as s:
        assert s.scalars(select(Lock)).all() == []
    r = second.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
    assert r.status_code == 202


def _event(job_id, n, event="runner_on_ok"):
    return {
        "job_id": job_id,
        "counter": n,
        "event": event,
        "host": "h1",
        "task": f"task {n}",
        "play": "p",
        "stdout": f"line {n}",
        "data": {"res": {"n": n}},
        "created_at": datetime.now(UTC),
    }


@pytest.fixture
def finished_job(api, setup):
    job = api.post("/api/v1/jobs", json={"operation": "preflight", "cluster_id": setup["cluster"]["id"]}).json()
    with api.services.sessions() as s:
        s.execute(insert(JobEvent), [_event(job["id"], n) for n in range(1, 8)])
        done = {"status": "successful", "rc": 0, "finished_at": datetime.now(UTC)}
        s.execute(update(Job).where(Job.id == job["id"]).values(**done))
        s.commit()
    return job


def test_events_stdout_and_paging(api, finished_job):
    jid = finished_job["id"]
    events = api.get(f"/api/v1/jobs/{jid}/events?after=2&limit=3", role="viewer").json()
    assert [e["counter"] for e in events] == [3, 4, 5]
    assert events[0]["task"] == "task 3" and events[0]["data"] == {"res": {"n": 3}} and events[0]["stdout"] == "line 3"
    r = api.get(f"/api/v1/jobs/{jid}/stdout")
    assert r.headers["content-type"].startswith("text/plain")
    assert r.text.splitlines() == [f"line {n}" for n in range(1, 8)]
    assert api.get("/api/v1/jobs/nope/events").status_code == 404


def _sse(response):
    messages, current = [], {}
    for line in response.iter_lines():
        if not line:
            if current:
                messages.append(current)
            current = {}
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(": ")
        current[field] = value
    return messages


def test_sse_stream_and_resume(api, finished_job):
    url = f"/api/v1/jobs/{finished_job['id']}/events/stream"
    with api.client.stream("GET", url, headers=api.headers("viewer")) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        messages = _sse(r)
    events = [m for m in messages if m.get("event") not in (None, "end")]
    assert [int(m["id"]) for m in events] == list(range(1, 8))
    assert json.loads(events[0]["data"])["task"] == "task 1"
    assert messages[-1]["event"] == "end" and json.loads(messages[-1]["data"])["status"] == "successful"
    with api.client.stream("GET", url, headers={**api.headers("viewer"), "Last-Event-ID": "5"}) as r:
        resumed = _sse(r)
    assert [int(m["id"]) for m in resumed if m.get("event") not in (None, "end")] == [6, 7]
    with api.client.stream("GET", url + "?after=6", headers=api.headers("viewer")) as r:
        assert [m["id"] for m in _sse(r) if m.get("event") == "runner_on_ok"] == ["7"]
    r = api.get(url, headers={"Last-Event-ID": "abc"})
    assert r.status_code == 422 and "Last-Event-ID" in r.json()["detail"]
    assert api.get("/api/v1/jobs/nope/events/stream").status_code == 404


def test_host_check_shortcut(api, setup):
    r = api.post(f"/api/v1/hosts/{setup['hosts'][2]['id']}/check", role="operator")
    assert r.status_code == 202
    assert r.json()["operation"] == "preflight" and r.json()["host_ids"] == [setup["hosts"][2]["id"]]
