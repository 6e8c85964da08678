"""End to end: the API runs the real collection playbooks through ansible-runner on real sandbox hosts.

Brings up its own sandbox (name apie2e, 2 hosts), registers the credential and hosts through the API (host keys
checked through the hosts' known_hosts), defines a cluster, runs each operation whose playbook the collection
ships among preflight and prepare_hosts, and checks status, per-host summary and the hosts' last preflight.
Then etcd_backup: etcd is deployed with ansible-playbook smcp.platform.etcd (no API operation runs that playbook
alone), the backup job runs through the API and its snapshot lands in the service's store (artifacts).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.api.sandbox_api import api_on_sandbox, sandbox_up

pytestmark = pytest.mark.sandbox

SANDBOX = "apie2e"
REPO = Path(__file__).resolve().parents[2]
OPERATIONS = [op for op in ("preflight", "prepare_hosts") if (REPO / "playbooks" / f"{op}.yml").is_file()]


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_up(SANDBOX, 2) as info:
        yield info


@pytest.fixture(scope="module")
def e2e_api(sandbox, tmp_path_factory, reachable_dir, job_user_prefix):
    tmp = tmp_path_factory.mktemp("e2e")
    with api_on_sandbox(sandbox, tmp, reachable_dir, job_user_prefix, "apie2e-key", labels={"sandbox": SANDBOX}) as (
        api,
        hosts,
    ):
        cluster = api.cluster("apie2e", [h["id"] for h in hosts], pod_cidr="10.244.0.0/16")
        yield api, hosts, cluster


@pytest.mark.parametrize("operation", OPERATIONS)
def test_collection_playbook_on_sandbox_hosts(e2e_api, operation):
    api, hosts, cluster = e2e_api
    r = api.post("/api/v1/jobs", role="operator", json={"operation": operation, "cluster_id": cluster["id"]})
    assert r.status_code == 202, r.text
    job = api.wait_job(r.json()["id"], timeout=900)
    stdout = api.get(f"/api/v1/jobs/{job['id']}/stdout").text
    assert job["status"] == "successful", stdout[-4000:]
    names = {h["name"] for h in hosts}
    assert set(job["host_summary"]) == names
    for stats in job["host_summary"].values():
        assert stats["failed"] == 0 and stats["unreachable"] == 0 and stats["ok"] > 0
    assert "PLAY RECAP" in stdout
    assert "PRIVATE KEY" not in stdout
    if operation == "preflight":
        for h in hosts:
            last = api.get(f"/api/v1/hosts/{h['id']}").json()["last_preflight"]
            assert last["status"] == "passed" and last["job_id"] == job["id"] and last["failures"] == []


def test_etcd_backup_through_the_api(e2e_api, sandbox):
    api, _hosts, cluster = e2e_api
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
    }
    first = sandbox.hosts[0].name  # the sandbox inventory's etcd group, like the API cluster's etcd member
    cmd = ["ansible-playbook", "-i", str(sandbox.inventory), "--limit", first, "smcp.platform.etcd"]
    cmd += ["-e", "etcd_single_node=true", "-e", "smcp_cluster_name=apie2e"]
    deploy = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert deploy.returncode == 0, deploy.stdout[-4000:] + deploy.stderr[-2000:]
    r = api.post("/api/v1/jobs", json={"operation": "etcd_backup", "cluster_id": cluster["id"]})
    assert r.status_code == 202, r.text
    job = api.wait_job(r.json()["id"], timeout=600)
    stdout = api.get(f"/api/v1/jobs/{job['id']}/stdout").text
    assert job["status"] == "successful", stdout[-4000:]
    kept = api.get("/api/v1/artifacts", params={"cluster": "apie2e", "kind": "etcd_snapshot"}).json()  # the store
    snapshots = [a for a in kept if a["name"].startswith("apie2e-etcd-") and a["name"].endswith(".db")]
    assert len(snapshots) == 1 and snapshots[0]["size"] > 0
    assert snapshots[0]["name"] + ".sha256" in {a["name"] for a in kept}
