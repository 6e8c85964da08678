"""upgrade, remove_node and reset through the API: refusals (422) before any job is recorded, the per-cluster
lock (409), and what a successful job changes in the store (the cluster's version, removed hosts detached).

The worker runs collection playbooks named upgrade/remove_node/reset that only record their extra vars and
--limit; the plan and the versions come from the real collection (plugins/module_utils).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from smcp_api import collection, versions
from smcp_api.models import Job

from tests.api.conftest import PLAYBOOKS, REPO

TABLE = collection.module_utils("versions")
NEWEST = TABLE.supported_versions()[-1]
MAJOR, MINOR, _ = (int(x) for x in NEWEST.split("."))
PREVIOUS = TABLE.newest_patch(f"{MAJOR}.{MINOR - 1}")
OLDEST = TABLE.newest_patch(f"{MAJOR}.{MINOR - 2}")

RECORDER = """---
- name: Record the {name} job
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Write the extra vars and limit
      ansible.builtin.copy:
        dest: "{{{{ playbook_dir }}}}/../record-{name}.json"
        mode: "0600"
        content: >-
          {{{{ {{'limit': ansible_limit | default(''), 'play_hosts': ansible_play_hosts_all | sort,
                'version': smcp_kubernetes_version | default(''),
                'batch': smcp_batch_size | default(''),
                'confirm': reset_confirm | default(''),
                'renew_days': certs_renew_days | default('')}} | to_json }}}}
      run_once: true
"""


@pytest.fixture
def ops_collections(reachable_dir: Callable[[], Path]) -> Path:
    root = reachable_dir() / "upg-collections"
    coll = root / "ansible_collections" / "smcp" / "platform"
    (coll / "playbooks").mkdir(parents=True)
    for name, text in PLAYBOOKS.items():
        (coll / "playbooks" / f"{name}.yml").write_text("---" + text)
    for name in ("upgrade", "remove_node", "reset", "certs"):
        (coll / "playbooks" / f"{name}.yml").write_text(RECORDER.format(name=name))
    (coll / "roles").symlink_to(REPO / "roles")
    (coll / "plugins").symlink_to(REPO / "plugins")
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    for path in (root, *root.rglob("*")):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o755)
    coll.chmod(0o1777)  # the recorder runs as a job user and writes its record here
    return root


def record(collections: Path, name: str) -> dict[str, Any]:
    path = collections / "ansible_collections" / "smcp" / "platform" / f"record-{name}.json"
    return json.loads(path.read_text())  # type: ignore[no-any-return]


def new_cluster(api: Any, version: str = PREVIOUS) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    cred = api.credential()
    names = ["cp1", "w1", "w2"]
    hosts = {n: api.host(n, cred["id"], address=f"192.0.2.{10 + i}") for i, n in enumerate(names)}
    body = {
        "name": "upg",
        "kubernetes_version": version,
        "hosts": [
            {"host_id": hosts["cp1"]["id"], "roles": ["etcd", "control_plane"]},
            {"host_id": hosts["w1"]["id"], "roles": ["workers"]},
            {"host_id": hosts["w2"]["id"], "roles": ["workers"]},
        ],
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 201, r.text
    return r.json(), hosts


def job_count(api: Any) -> int:
    with api.services.sessions() as session:
        return session.query(Job).count()


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ({}, "params.extra_vars.smcp_kubernetes_version: give the target version"),
        ({"smcp_kubernetes_version": "1.99.0"}, "Kubernetes 1.99.0 is not supported; use one of 1.33.x"),
        (
            {"smcp_kubernetes_version": "1.35.7"},
            "Kubernetes 1.35.7 is not in the versions table; use one of 1.35.0, 1.35.1",
        ),
        ({"smcp_kubernetes_version": "latest"}, "is not a Kubernetes version"),
        ({"smcp_kubernetes_version": OLDEST}, f"upgrade refused (downgrade): target {OLDEST} is older than"),
        (
            {"smcp_kubernetes_version": NEWEST, "upgrade_batch_size": "0%"},
            "params.extra_vars.upgrade_batch_size: batch size '0%' is neither a count nor a percentage",
        ),
        ({"smcp_kubernetes_version": NEWEST, "upgrade_batch_size": 0}, "must be at least 1"),
        ({"smcp_kubernetes_version": NEWEST, "upgrade_allow_multi_hop": "yes"}, "'yes' is not a bool"),
    ],
)
def test_bad_upgrade_is_422_before_any_job(start_api, ops_collections, extra, needle):
    api = start_api(collections_path=ops_collections)
    cluster, _ = new_cluster(api)
    r = api.post(
        "/api/v1/jobs", json={"operation": "upgrade", "cluster_id": cluster["id"], "params": {"extra_vars": extra}}
    )
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert job_count(api) == 0


def test_two_minors_need_multi_hop(start_api, ops_collections):
    api = start_api(collections_path=ops_collections)
    cluster, _ = new_cluster(api, version=OLDEST)
    body = {
        "operation": "upgrade",
        "cluster_id": cluster["id"],
        "params": {"extra_vars": {"smcp_kubernetes_version": NEWEST}},
    }
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 422 and "upgrade refused (skipped_minor)" in r.text and "upgrade_allow_multi_hop" in r.text
    body["params"]["extra_vars"]["upgrade_allow_multi_hop"] = True
    assert api.post("/api/v1/jobs", json=body).status_code == 202


def test_upgrade_runs_records_the_new_version_and_locks_the_cluster(start_api, ops_collections):
    api = start_api(start_worker=True, collections_path=ops_collections)
    cluster, _ = new_cluster(api)
    body = {
        "operation": "upgrade",
        "cluster_id": cluster["id"],
        "params": {"batch_size": 2, "extra_vars": {"smcp_kubernetes_version": f"v{NEWEST}"}},
    }
    r = api.post("/api/v1/jobs", role="operator", json=body)
    assert r.status_code == 202, r.text
    second = api.post("/api/v1/jobs", json=body)  # the cluster is locked by the first (pending or running)
    assert second.status_code == 409 and "is busy with upgrade job" in second.text
    job = api.wait_job(r.json()["id"])
    assert job["status"] == "successful", api.get(f"/api/v1/jobs/{job['id']}/stdout").text[-3000:]
    seen = record(ops_collections, "upgrade")
    assert seen["version"] == f"v{NEWEST}" and seen["batch"] == 2 and seen["play_hosts"] == ["cp1", "w1", "w2"]
    assert api.get(f"/api/v1/clusters/{cluster['id']}").json()["kubernetes_version"] == NEWEST
    again = api.post("/api/v1/jobs", json=body)  # now at target: nothing to do, refused before any job exists
    assert again.status_code == 422 and "nothing to do" in again.text, again.text


def test_reset_needs_confirmation(start_api, ops_collections):
    api = start_api(start_worker=True, collections_path=ops_collections)
    cluster, _ = new_cluster(api)
    for extra in ({}, {"reset_confirm": False}, {"reset_confirm": "true"}):
        r = api.post(
            "/api/v1/jobs", json={"operation": "reset", "cluster_id": cluster["id"], "params": {"extra_vars": extra}}
        )
        assert r.status_code == 422, r.text
        assert "reset_confirm" in r.text
    assert job_count(api) == 0
    r = api.post(
        "/api/v1/jobs",
        json={"operation": "reset", "cluster_id": cluster["id"], "params": {"extra_vars": {"reset_confirm": True}}},
    )
    assert r.status_code == 202
    assert api.wait_job(r.json()["id"])["status"] == "successful"
    assert record(ops_collections, "reset")["confirm"] is True


def test_remove_node_guards_and_detaches_the_removed_host(start_api, ops_collections):
    api = start_api(start_worker=True, collections_path=ops_collections)
    cluster, hosts = new_cluster(api)
    only_cp = {"operation": "remove_node", "cluster_id": cluster["id"], "host_ids": [hosts["cp1"]["id"]]}
    r = api.post("/api/v1/jobs", json=only_cp)
    assert r.status_code == 422 and "leaves cluster 'upg' without a control plane (cp1)" in r.text
    assert job_count(api) == 0
    r = api.post("/api/v1/jobs", json={**only_cp, "host_ids": [hosts["w2"]["id"]]})
    assert r.status_code == 202, r.text
    assert api.wait_job(r.json()["id"])["status"] == "successful"
    assert record(ops_collections, "remove_node")["limit"] == "w2"
    assert api.get(f"/api/v1/hosts/{hosts['w2']['id']}").json()["cluster_id"] is None
    assert api.get(f"/api/v1/hosts/{hosts['w1']['id']}").json()["cluster_id"] == cluster["id"]


def test_versions_come_from_the_collection_table():
    assert versions.supported_versions() == TABLE.supported_versions()
    assert versions.normalise(f"v{NEWEST}") == NEWEST
    assert versions.exact(NEWEST) == NEWEST
    minors = ", ".join(f"{m}.x" for m in TABLE.supported_minors())
    with pytest.raises(ValueError, match=f"use one of {minors}"):
        versions.normalise("1.20.1")
    with pytest.raises(ValueError, match="not in the versions table"):
        versions.exact(f"{MAJOR}.{MINOR}.99")


def test_certs_is_a_cluster_operation(start_api, ops_collections):
    api = start_api(start_worker=True, collections_path=ops_collections)
    cluster, hosts = new_cluster(api)
    r = api.post("/api/v1/jobs", json={"operation": "certs", "host_ids": [hosts["w1"]["id"]]})
    assert r.status_code == 422 and "operation certs works on a cluster; set cluster_id" in r.text
    bad = {"operation": "certs", "cluster_id": cluster["id"], "params": {"extra_vars": {"certs_renew_days": "60"}}}
    r = api.post("/api/v1/jobs", json=bad)
    assert r.status_code == 422 and "params.extra_vars.certs_renew_days: '60' is not a int" in r.text
    bad["params"]["extra_vars"]["certs_renew_days"] = 60
    r = api.post("/api/v1/jobs", role="operator", json=bad)
    assert r.status_code == 202, r.text
    assert api.wait_job(r.json()["id"])["status"] == "successful"
    assert record(ops_collections, "certs")["renew_days"] == 60
