"""The worker and the ansible-runner bridge with real ansible-runner on local stand-in playbooks."""

from __future__ import annotations

import json
import time

from smcp_api.jobs import isolation
from smcp_api.models import Lock
from sqlalchemy import select


def _hosts(api, n=2):
    cred = api.credential()
    return cred, [api.host(f"local{i}", cred["id"], roles=["etcd", "control_plane"]) for i in range(n)]


def test_job_runs_to_success_with_summary_events_and_no_secrets(live_api, private_key, settings):
    key = private_key()
    cred = live_api.credential("k", key)
    hosts = [live_api.host(f"local{i}", cred["id"]) for i in range(2)]
    job = live_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [h["id"] for h in hosts]}).json()
    done = live_api.wait_job(job["id"])
    assert done["status"] == "successful", (
        done["status_reason"],
        live_api.get(f"/api/v1/jobs/{job['id']}/stdout").text[-1500:],
    )
    assert done["rc"] == 0 and done["started_at"] and done["finished_at"]
    assert set(done["host_summary"]) == {"local0", "local1"}
    assert all(s["ok"] == 3 and s["failed"] == 0 and s["unreachable"] == 0 for s in done["host_summary"].values())
    assert done["counters"]["tasks"] == 3 and done["counters"]["events"] > 10
    events = live_api.get(f"/api/v1/jobs/{job['id']}/events?limit=5000").json()
    assert [e["counter"] for e in events] == sorted(e["counter"] for e in events)
    assert events[-1]["event"] == "playbook_on_stats"
    stdout = live_api.get(f"/api/v1/jobs/{job['id']}/stdout").text
    assert "hello from local0 in no cluster" in stdout and "PLAY RECAP" in stdout
    everything = stdout + json.dumps(events)
    for line in key.strip().splitlines()[1:-1]:
        assert line not in everything  # the job only ever had the public half (its agent holds the key)
    assert "ssh-ed25519 " in everything  # what `cat` of the inventory's key file printed
    assert "s3cr3t-value" not in everything  # no_log result hidden
    assert "hidden due to the fact that 'no_log: true'" in everything
    assert list(settings.jobs_dir.iterdir()) == []  # private data dir removed
    host = live_api.get(f"/api/v1/hosts/{hosts[0]['id']}").json()
    assert host["last_preflight"]["status"] == "passed" and host["last_preflight"]["job_id"] == job["id"]
    metrics = live_api.get("/metrics").text
    assert 'smcp_jobs{status="successful"} 1' in metrics
    assert 'smcp_job_duration_seconds_count{operation="preflight"} 1' in metrics
    ingested = next(line for line in metrics.splitlines() if line.startswith("smcp_events_ingested_total"))
    assert int(ingested.split()[1]) == done["counters"]["events"]


def test_cluster_vars_and_groups_reach_the_inventory(live_api):
    _cred, hosts = _hosts(live_api, 1)
    cluster = live_api.cluster("vars-check", [hosts[0]["id"]], pod_cidr="10.32.0.0/16")
    job = live_api.post("/api/v1/jobs", json={"operation": "preflight", "cluster_id": cluster["id"]}).json()
    assert live_api.wait_job(job["id"])["status"] == "successful"
    assert "hello from local0 in vars-check" in live_api.get(f"/api/v1/jobs/{job['id']}/stdout").text


def test_failed_playbook_is_failed_with_summary(live_api):
    _cred, hosts = _hosts(live_api, 1)
    cluster = live_api.cluster("fails", [hosts[0]["id"]])
    job = live_api.post("/api/v1/jobs", json={"operation": "etcd_backup", "cluster_id": cluster["id"]}).json()
    done = live_api.wait_job(job["id"])
    assert done["status"] == "failed" and done["rc"] == 2
    assert done["host_summary"]["local0"]["failed"] == 1
    assert "ansible-playbook exited with rc 2" in done["status_reason"]
    with live_api.services.sessions() as s:
        assert s.scalars(select(Lock)).all() == []  # lock released


def test_cancel_running_job(live_api):
    _cred, hosts = _hosts(live_api, 1)
    cluster = live_api.cluster("slow", [hosts[0]["id"]])
    job = live_api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]}).json()
    deadline = time.monotonic() + 60
    while not any(e["event"] == "runner_on_start" for e in live_api.get(f"/api/v1/jobs/{job['id']}/events").json()):
        assert time.monotonic() < deadline, live_api.get(f"/api/v1/jobs/{job['id']}").json()
        time.sleep(0.1)
    r = live_api.post(f"/api/v1/jobs/{job['id']}/cancel")
    assert r.status_code == 202
    done = live_api.wait_job(job["id"], timeout=60)
    assert done["status"] == "canceled" and done["status_reason"] == "canceled on request", done
    users = live_api.services.isolation().pool.uids
    assert isolation.processes_of(users) == []  # no ansible worker (nor ssh-agent) left running
    r = live_api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]})
    assert r.status_code == 202  # the cluster is free again
    live_api.post(f"/api/v1/jobs/{r.json()['id']}/cancel")


def test_sse_follows_a_live_job_to_its_end(live_api):
    _cred, hosts = _hosts(live_api, 1)
    job = live_api.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [hosts[0]["id"]]}).json()
    url = f"/api/v1/jobs/{job['id']}/events/stream"
    ids, names, end = [], [], None
    with live_api.client.stream("GET", url, headers=live_api.headers("viewer")) as r:
        current: dict[str, str] = {}
        for line in r.iter_lines():
            if line:
                field, _, value = line.partition(": ")
                current[field] = value
                continue
            if current.get("event") == "end":
                end = json.loads(current["data"])
            elif "event" in current:
                ids.append(int(current["id"]))
                names.append(current["event"])
            current = {}
    assert end == {"status": "successful", "status_reason": None, "rc": 0}
    assert ids == sorted(ids) and len(ids) == len(set(ids))
    assert names[0] == "playbook_on_start" and names[-1] == "playbook_on_stats"


def test_stopping_the_service_fails_running_jobs_as_interrupted(start_api):
    api = start_api(start_worker=True)
    _cred, hosts = _hosts(api, 1)
    cluster = api.cluster("stop", [hosts[0]["id"]])
    job = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": cluster["id"]}).json()
    deadline = time.monotonic() + 60
    while not any(e["event"] == "runner_on_start" for e in api.get(f"/api/v1/jobs/{job['id']}/events").json()):
        assert time.monotonic() < deadline, api.get(f"/api/v1/jobs/{job['id']}").json()
        time.sleep(0.1)
    api.stop()
    again = start_api()
    done = again.get(f"/api/v1/jobs/{job['id']}").json()
    assert done["status"] == "failed" and done["status_reason"].startswith("interrupted")
    assert done["counters"]["events"] > 0
