"""Clusters: spec validation (versions, CIDRs, hosts), no partial records, delete."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def hosts(api):
    cred = api.credential()
    return [api.host(f"n{i}", cred["id"], address=f"192.0.2.{10 + i}") for i in range(3)]


def test_create_list_get_delete(api, hosts):
    c = api.cluster("prod", [h["id"] for h in hosts], cni="flannel", control_plane_endpoint="192.0.2.10:6443")
    assert c["kubernetes_version"] == "1.34.4" and c["cni"] == "flannel"
    assert c["pod_cidr"] == "10.244.0.0/16" and c["service_cidr"] == "10.96.0.0/12"
    assert {h["host_id"] for h in c["hosts"]} == {h["id"] for h in hosts}
    assert api.get("/api/v1/clusters", role="viewer").json()[0]["id"] == c["id"]
    assert api.get(f"/api/v1/hosts/{hosts[0]['id']}").json()["cluster_id"] == c["id"]
    assert api.delete(f"/api/v1/clusters/{c['id']}").status_code == 204
    assert api.get(f"/api/v1/hosts/{hosts[0]['id']}").json()["cluster_id"] is None


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"kubernetes_version": "1.20.1"}, "Kubernetes 1.20.1 is not supported; use one of 1.33.x, 1.34.x, 1.35.x"),
        ({"kubernetes_version": "latest"}, "use MAJOR.MINOR.PATCH"),
        ({"kubernetes_version": "1.34.2"}, "Kubernetes 1.34.2 is not in the versions table; use one of 1.34.3, 1.34.4"),
        ({"pod_cidr": "10.96.0.0/16"}, "pod_cidr: '10.96.0.0/16' overlaps service_cidr 10.96.0.0/12"),
        ({"pod_cidr": "10.244.0.1/16"}, "has host bits set (need a network address); use 10.244.0.0/16"),
        ({"service_cidr": "banana"}, "service_cidr: 'banana' is not a CIDR"),
        ({"pod_cidr": "192.0.2.0/24"}, "contains the address 192.0.2.10 of host 'n0'"),
        ({"control_plane_endpoint": "nohostport"}, "is not host:port"),
        ({"cni": "weave"}, "cni"),
        ({"options": {"smcp_sandbox": "yes"}}, "options.smcp_sandbox: 'yes' is not a bool"),
        ({"options": {"smcp_nonsense": 1}}, "options.smcp_nonsense: not an option of any smcp.platform role"),
        ({"hosts": [{"host_id": "missing", "roles": ["etcd", "control_plane"]}]}, "hosts[0].host_id: host 'missing'"),
        ({"hosts": []}, "hosts"),
        ({"extra": 1}, "extra: unknown field"),
    ],
)
def test_bad_spec_is_422_and_writes_nothing(api, hosts, change, needle):
    body = {
        "name": "bad",
        "kubernetes_version": "1.35.0",
        "hosts": [{"host_id": hosts[0]["id"], "roles": ["etcd", "control_plane"]}],
        **change,
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert api.get("/api/v1/clusters").json() == []
    assert all(h["cluster_id"] is None for h in api.get("/api/v1/hosts").json())


def test_etcd_members_must_be_odd(api, hosts):
    body = {
        "name": "even",
        "kubernetes_version": "1.35.1",
        "hosts": [{"host_id": h["id"], "roles": ["etcd", "control_plane"]} for h in hosts[:2]],
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 422
    assert "2 etcd members" in r.text


def test_host_already_in_a_cluster_is_409_and_nothing_is_written(api, hosts):
    api.cluster("one", [hosts[0]["id"]])
    body = {
        "name": "two",
        "kubernetes_version": "1.34.3",
        "hosts": [
            {"host_id": hosts[1]["id"], "roles": ["etcd", "control_plane"]},
            {"host_id": hosts[0]["id"], "roles": ["workers"]},
        ],
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 409
    assert "hosts[1].host_id: host 'n0' already belongs to cluster" in r.json()["detail"]
    assert [c["name"] for c in api.get("/api/v1/clusters").json()] == ["one"]
    assert api.get(f"/api/v1/hosts/{hosts[1]['id']}").json()["cluster_id"] is None


def test_duplicate_cluster_name_is_409_without_partial_records(api, hosts):
    api.cluster("same", [hosts[0]["id"]])
    body = {
        "name": "same",
        "kubernetes_version": "1.34.4",
        "hosts": [{"host_id": hosts[1]["id"], "roles": ["etcd", "control_plane"]}],
    }
    r = api.post("/api/v1/clusters", json=body)
    assert r.status_code == 409
    assert api.get(f"/api/v1/hosts/{hosts[1]['id']}").json()["cluster_id"] is None


def test_delete_while_job_pending_is_409(api, hosts):
    c = api.cluster("busy", [hosts[0]["id"]])
    job = api.post("/api/v1/jobs", json={"operation": "prepare_hosts", "cluster_id": c["id"]}).json()
    r = api.delete(f"/api/v1/clusters/{c['id']}")
    assert r.status_code == 409
    assert job["id"] in r.json()["detail"]


def test_collection_missing_is_503_naming_the_fix(api, hosts, monkeypatch):
    """The versions table comes from the collection: without it the API says where it looked."""
    from smcp_api import collection

    collection.collections_root.cache_clear()
    monkeypatch.setattr(collection, "candidates", lambda: [Path("/nonexistent")])
    body = {"name": "x", "kubernetes_version": "1.35.0", "hosts": [{"host_id": hosts[0]["id"], "roles": ["etcd"]}]}
    r = api.post("/api/v1/clusters", json=body)
    collection.collections_root.cache_clear()
    assert r.status_code == 503, r.text
    assert "SMCP_COLLECTIONS_PATH" in r.json()["detail"] and "/nonexistent" in r.json()["detail"]
    assert api.get("/api/v1/clusters").json() == []
