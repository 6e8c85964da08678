"""One set of rules: the API refuses exactly what the collection's netrules (and so preflight) refuse.

The table is the unit tests' (tests/unit/plugins/module_utils/test_netrules.py): every value goes through
HTTP and through the module_utils function; a refusal names the same field, value and fix, and nothing is stored.
Also: the same address and SSH port twice is a 409 naming the other host; an upgrade to the version a
cluster runs is a 422 saying there is nothing to do.
"""

from __future__ import annotations

from typing import Any

import pytest
from smcp_api import collection

from tests.api.test_upgrade_ops import PREVIOUS, job_count, new_cluster, ops_collections  # noqa: F401
from tests.unit.plugins.module_utils.test_netrules import NODES, RULE_TABLE

RULES = collection.module_utils("netrules")


def messages(r: Any) -> str:
    detail = r.json()["detail"]
    return detail if isinstance(detail, str) else " | ".join(item["msg"] for item in detail)


def shared_findings(kind: str, value: Any) -> list[Any]:
    if kind == "hostname":
        return list(RULES.check_hostname(value))
    if kind == "address":
        return list(RULES.check_address(value))
    return list(RULES.check_networks(value[0], value[1], nodes=NODES))


@pytest.mark.parametrize(("kind", "value", "accepted"), RULE_TABLE)
def test_api_and_module_utils_agree(api, kind, value, accepted):
    found = shared_findings(kind, value)
    assert (found == []) is accepted
    cred = api.credential()
    if kind in ("hostname", "address"):
        body = {"name": value if kind == "hostname" else "h1", "credential_id": cred["id"]}
        body["address"] = value if kind == "address" else "192.0.2.50"
        r = api.post("/api/v1/hosts", json=body)
        assert r.status_code == (201 if accepted else 422), r.text
        stored = api.get("/api/v1/hosts").json()
        assert len(stored) == (1 if accepted else 0)
    else:
        hosts = [api.host(f"n{i}", cred["id"], address=f"192.0.2.{10 + i}") for i in range(NODES)]
        body = {
            "name": "c1",
            "kubernetes_version": "1.35.0",
            "pod_cidr": value[0],
            "service_cidr": value[1],
            "hosts": [{"host_id": h["id"], "roles": ["etcd", "control_plane", "workers"]} for h in hosts],
        }
        r = api.post("/api/v1/clusters", json=body)
        assert r.status_code == (201 if accepted else 422), r.text
        assert len(api.get("/api/v1/clusters").json()) == (1 if accepted else 0)
        assert all(h["cluster_id"] is None for h in api.get("/api/v1/hosts").json()) is not accepted
    if not accepted:
        text = messages(r)
        assert any(f.message() in text for f in found), (text, [f.message() for f in found])


def test_node_count_and_node_mask_come_from_the_cluster(api):
    cred = api.credential()
    hosts = [api.host(f"n{i}", cred["id"], address=f"192.0.2.{10 + i}") for i in range(5)]
    body = {
        "name": "c1",
        "kubernetes_version": "1.35.0",
        "pod_cidr": "10.244.0.0/22",
        "hosts": [{"host_id": hosts[0]["id"], "roles": ["etcd", "control_plane"]}]
        + [{"host_id": h["id"], "roles": ["workers"]} for h in hosts[1:]],
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 422, r.text
    assert "pod_cidr: '10.244.0.0/22 for 5 nodes' has room for 4 node ranges (/24 each)" in messages(r)
    assert api.get("/api/v1/clusters").json() == []
    # smaller node ranges (the preflight role's option) make room
    r = api.post("/api/v1/clusters", json={**body, "options": {"preflight_node_cidr_mask_v4": 25}})
    assert r.status_code == 201, r.text


def test_same_address_and_port_is_409_naming_the_other_host(api):
    cred = api.credential()
    first = api.host("first", cred["id"], address="2001:db8::5")
    body = {"name": "second", "address": "2001:DB8:0::5", "credential_id": cred["id"]}
    r = api.post("/api/v1/hosts", json=body)
    assert r.status_code == 409, r.text
    assert r.json()["detail"].startswith(
        f"address: 2001:DB8:0::5 (SSH port 22) is already host 'first' ({first['id']}); give each host its own address"
    )
    assert [h["name"] for h in api.get("/api/v1/hosts").json()] == ["first"]
    # another SSH port on the same address (hosts behind one NAT or tunnel) is another host
    second = api.post("/api/v1/hosts", json={**body, "ssh_port": 2222})
    assert second.status_code == 201, second.text
    r = api.patch(f"/api/v1/hosts/{second.json()['id']}", json={"ssh_port": 22})
    assert r.status_code == 409 and "is already host 'first'" in r.json()["detail"]
    # DNS names compare case-insensitively
    named = api.host("named", cred["id"], address="node1.example.org")
    r = api.patch(f"/api/v1/hosts/{second.json()['id']}", json={"address": "NODE1.example.org", "ssh_port": 22})
    assert r.status_code == 409 and f"is already host 'named' ({named['id']})" in r.json()["detail"]
    stored = {h["name"]: (h["address"], h["ssh_port"]) for h in api.get("/api/v1/hosts").json()}
    assert stored["second"] == ("2001:DB8:0::5", 2222)
    # a host keeps its own address when it changes something else
    assert api.patch(f"/api/v1/hosts/{first['id']}", json={"address": "2001:db8::5"}).status_code == 200


def test_upgrade_to_the_running_version_is_422_nothing_to_do(start_api, ops_collections):  # noqa: F811
    api = start_api(collections_path=ops_collections)
    cluster, _ = new_cluster(api, version=PREVIOUS)
    body = {
        "operation": "upgrade",
        "cluster_id": cluster["id"],
        "params": {"extra_vars": {"smcp_kubernetes_version": PREVIOUS}},
    }
    r = api.post("/api/v1/jobs", json=body)
    assert r.status_code == 422, r.text
    assert (
        f"params.extra_vars.smcp_kubernetes_version: cluster 'upg' already runs Kubernetes {PREVIOUS}; "
        "there is nothing to do; choose a newer release: "
    ) in r.json()["detail"]
    assert job_count(api) == 0
