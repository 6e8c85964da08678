"""create_cluster and add_nodes: the right playbook (smcp.platform.cluster / scale) with the cluster's inventory.

The worker runs collection playbooks named cluster.yml and scale.yml that record what they were given (play
hosts, groups, the cluster's smcp_* variables, --limit) instead of building a cluster; the 422 guards refuse
bad load-balancer settings and an add_nodes without hosts before any job is recorded.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from smcp_api.jobs import inventory
from smcp_api.jobs.service import collection_dir
from smcp_api.models import Job

from tests.api.conftest import PLAYBOOKS, REPO

RECORDED = [
    "smcp_cluster_name",
    "smcp_kubernetes_version",
    "smcp_cni",
    "smcp_pod_cidr",
    "smcp_service_cidr",
    "smcp_lb_mode",
    "smcp_lb_vip",
    "smcp_lb_port",
    "smcp_control_plane_endpoint",
    "smcp_sandbox",
]

RECORDER = """---
- name: Record what the {name} job ran with
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{{{ ansible_playbook_python }}}}"
  tasks:
    - name: Write the play hosts, groups, cluster variables and limit
      ansible.builtin.copy:
        dest: "{{{{ playbook_dir }}}}/../record-{name}.json"
        mode: "0600"
        content: >-
          {{{{ {{'playbook': '{name}', 'play_hosts': ansible_play_hosts_all | sort,
                'limit': ansible_limit | default(''),
                'groups': {{'etcd': groups['etcd'] | sort, 'control_plane': groups['control_plane'] | sort,
                            'workers': groups['workers'] | sort}},
                'vars': dict(_names | zip(_names | map('extract', hostvars[inventory_hostname])
                                                 | map('default', None)))}} | to_json }}}}
      vars:
        _names: {names}
      run_once: true
"""


@pytest.fixture
def ops_collections(reachable_dir: Callable[[], Path]) -> Path:
    """A collections path whose smcp.platform has the real roles' specs and recording cluster/scale playbooks."""
    root = reachable_dir() / "ops-collections"
    coll = root / "ansible_collections" / "smcp" / "platform"
    (coll / "playbooks").mkdir(parents=True)
    for name, text in PLAYBOOKS.items():
        (coll / "playbooks" / f"{name}.yml").write_text("---" + text)
    for name in ("cluster", "scale"):
        (coll / "playbooks" / f"{name}.yml").write_text(RECORDER.format(name=name, names=json.dumps(RECORDED)))
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


def new_cluster(api: Any, names: list[str], **fields: Any) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    cred = api.credential()
    hosts = {n: api.host(n, cred["id"], address=f"192.0.2.{10 + i}") for i, n in enumerate(names)}
    roles = {names[0]: ["etcd", "control_plane"], names[1]: ["etcd", "control_plane"]}
    roles.update({names[2]: ["etcd", "control_plane", "workers"]} if len(names) > 2 else {})
    body = {
        "name": "ops",
        "kubernetes_version": "1.35.0",
        "hosts": [{"host_id": hosts[n]["id"], "roles": r} for n, r in roles.items()],
        **fields,
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 201, r.text
    return r.json(), hosts


def test_create_cluster_then_add_nodes(start_api, ops_collections):
    api = start_api(start_worker=True, collections_path=ops_collections)
    options = {"smcp_lb_mode": "vip", "smcp_lb_vip": "192.0.2.250", "smcp_lb_port": 8443, "smcp_sandbox": True}
    cluster, hosts = new_cluster(
        api, ["cp1", "cp2", "cp3", "w1"], cni="flannel", pod_cidr="10.50.0.0/16", options=options
    )
    r = api.post("/api/v1/jobs", role="operator", json={"operation": "create_cluster", "cluster_id": cluster["id"]})
    assert r.status_code == 202, r.text
    job = api.wait_job(r.json()["id"])
    assert job["status"] == "successful", api.get(f"/api/v1/jobs/{job['id']}/stdout").text[-3000:]
    created = record(ops_collections, "cluster")
    assert created["playbook"] == "cluster" and created["limit"] == ""
    assert created["play_hosts"] == ["cp1", "cp2", "cp3"]
    assert created["groups"] == {
        "etcd": ["cp1", "cp2", "cp3"],
        "control_plane": ["cp1", "cp2", "cp3"],
        "workers": ["cp3"],
    }
    assert created["vars"] == {
        "smcp_cluster_name": "ops",
        "smcp_kubernetes_version": "1.35.0",
        "smcp_cni": "flannel",
        "smcp_pod_cidr": "10.50.0.0/16",
        "smcp_service_cidr": "10.96.0.0/12",
        "smcp_lb_mode": "vip",
        "smcp_lb_vip": "192.0.2.250",
        "smcp_lb_port": 8443,
        "smcp_control_plane_endpoint": None,  # derived by role smcp from the VIP and the port
        "smcp_sandbox": True,
    }

    # w1 is registered but not a member yet: add_nodes joins it as a worker, with --limit w1 only.
    r = api.post(
        "/api/v1/jobs",
        role="operator",
        json={"operation": "add_nodes", "cluster_id": cluster["id"], "host_ids": [hosts["w1"]["id"]]},
    )
    assert r.status_code == 202, r.text
    assert api.wait_job(r.json()["id"])["status"] == "successful"
    added = record(ops_collections, "scale")
    assert added["playbook"] == "scale" and added["limit"] == "w1" and added["play_hosts"] == ["w1"]
    assert added["groups"]["workers"] == ["cp3", "w1"] and added["groups"]["control_plane"] == ["cp1", "cp2", "cp3"]
    assert added["vars"] == created["vars"]
    members = {h["host_id"]: h["roles"] for h in api.get(f"/api/v1/clusters/{cluster['id']}").json()["hosts"]}
    assert members[hosts["w1"]["id"]] == ["workers"]


def test_endpoint_without_mode_is_external(api, tmp_path):
    for sub in ("keys", "inventory"):
        (tmp_path / sub).mkdir()
    cluster, _ = new_cluster(api, ["cp1", "cp2", "cp3"], control_plane_endpoint="api.example.org:6443")
    with api.services.sessions() as s:
        job = Job(operation="create_cluster", cluster_id=cluster["id"], host_ids=[], params={})
        files = inventory.build(s, job, api.services.vault, tmp_path, collection_dir(api.services.settings))
    top = files.inventory["all"]["vars"]
    assert top["smcp_lb_mode"] == "external" and top["smcp_control_plane_endpoint"] == "api.example.org:6443"
    assert files.limit is None


@pytest.mark.parametrize(
    ("fields", "needle"),
    [
        ({"options": {"smcp_lb_mode": "vip"}}, "options.smcp_lb_vip: None is not an IP address"),
        ({"options": {"smcp_lb_mode": "vip", "smcp_lb_vip": "vip.example"}}, "'vip.example' is not an IP address"),
        ({"options": {"smcp_lb_mode": "external"}}, "smcp_lb_mode external needs the host:port of your load balancer"),
        (
            {"options": {"smcp_lb_mode": "local"}, "control_plane_endpoint": "192.0.2.9:6443"},
            "options.smcp_lb_mode is local",
        ),
        (
            {"options": {"smcp_lb_mode": "dns"}},
            "options.smcp_lb_mode: 'dns' is not one of ['local', 'vip', 'external']",
        ),
    ],
)
def test_bad_load_balancer_settings_are_422(api, fields, needle):
    cred = api.credential()
    host = api.host("cp1", cred["id"], address="192.0.2.10")
    body = {
        "name": "bad",
        "kubernetes_version": "1.35.0",
        "hosts": [{"host_id": host["id"], "roles": ["etcd", "control_plane"]}],
    }
    r = api.post("/api/v1/clusters", json={**body, **fields})
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert api.get("/api/v1/clusters").json() == []


def test_add_nodes_needs_hosts_and_the_playbook(start_api, ops_collections):
    api = start_api(collections_path=ops_collections)
    cluster, _ = new_cluster(api, ["cp1", "cp2", "cp3"])
    r = api.post("/api/v1/jobs", json={"operation": "add_nodes", "cluster_id": cluster["id"]})
    assert r.status_code == 422 and "operation add_nodes needs host_ids" in r.text
    (ops_collections / "ansible_collections" / "smcp" / "platform" / "playbooks" / "scale.yml").unlink()
    free = api.host("w9", api.credential("key2")["id"], address="192.0.2.99")
    r = api.post("/api/v1/jobs", json={"operation": "add_nodes", "cluster_id": cluster["id"], "host_ids": [free["id"]]})
    assert r.status_code == 422 and "operation add_nodes is not available in this build" in r.text
    assert "create_cluster" in r.text  # still offered
    assert api.get("/api/v1/jobs").json() == []
