"""Hosts: create, validate, patch, delete; JSON and YAML bodies."""

from __future__ import annotations

import pytest


def test_create_get_patch_delete(api):
    cred = api.credential()
    host = api.host("node-1", cred["id"], roles=["etcd", "workers"], labels={"zone": "a"}, ssh_port=2222)
    assert host["cluster_id"] is None and host["last_preflight"] is None
    got = api.get(f"/api/v1/hosts/{host['id']}", role="viewer").json()
    assert got["labels"] == {"zone": "a"} and got["ssh_port"] == 2222 and got["roles"] == ["etcd", "workers"]
    r = api.patch(f"/api/v1/hosts/{host['id']}", role="operator", json={"address": "192.0.2.7", "labels": {}})
    assert r.status_code == 200
    assert r.json()["address"] == "192.0.2.7" and r.json()["ssh_port"] == 2222
    assert api.delete(f"/api/v1/hosts/{host['id']}").status_code == 204
    assert api.get(f"/api/v1/hosts/{host['id']}").status_code == 404


@pytest.mark.parametrize(
    ("patch", "needle"),
    [
        ({"address": "bad address!"}, "neither an IP address nor a DNS name"),
        ({"vars": {"ansible_host": "x"}}, "use the host's 'address' field"),
        ({"vars": {"1bad": 1}}, "variable name '1bad' is not valid"),
        ({"roles": ["etcd", "etcd"]}, "repeat an entry"),
        ({"roles": ["master"]}, "roles.0"),
        ({"ssh_port": 70000}, "ssh_port"),
        ({"credential_id": "nope"}, "credential_id: credential 'nope' does not exist"),
        ({"colour": "blue"}, "colour: unknown field; remove it"),
    ],
)
def test_bad_input_names_field_and_fix(api, patch, needle):
    cred = api.credential()
    body = {"name": "h", "address": "192.0.2.1", "credential_id": cred["id"], **patch}
    r = api.post("/api/v1/hosts", json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert api.get("/api/v1/hosts").json() == []


def test_yaml_body_and_malformed_bodies(api):
    cred = api.credential()
    doc = f"name: y1\naddress: 192.0.2.9\ncredential_id: {cred['id']}\nroles: [workers]\nvars:\n  smcp_sandbox: true\n"
    r = api.post("/api/v1/hosts", content=doc, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["vars"] == {"smcp_sandbox": True}
    r = api.post("/api/v1/hosts", content="name: [broken", headers={"Content-Type": "application/yaml"})
    assert r.status_code == 422
    assert "malformed YAML at line 2, column 1" in r.json()["detail"]  # the end of the document
    assert "flow sequence that starts at line 1, column 7" in r.json()["detail"]
    r = api.post("/api/v1/hosts", content='{"name": ', headers={"Content-Type": "application/json"})
    assert r.status_code == 422
    assert "malformed JSON" in r.json()["detail"][0]["msg"]
    assert [h["name"] for h in api.get("/api/v1/hosts").json()] == ["y1"]


def test_duplicate_name_409_and_patch_null_422(api):
    cred = api.credential()
    host = api.host("dup", cred["id"])
    r = api.post("/api/v1/hosts", json={"name": "dup", "address": "192.0.2.2", "credential_id": cred["id"]})
    assert r.status_code == 409
    r = api.patch(f"/api/v1/hosts/{host['id']}", json={"address": None})
    assert r.status_code == 422 and "address: null is not allowed" in r.json()["detail"]


def test_host_in_cluster_cannot_be_deleted(api):
    cred = api.credential()
    host = api.host("cp1", cred["id"], address="192.0.2.10")
    api.cluster("c1", [host["id"]])
    r = api.delete(f"/api/v1/hosts/{host['id']}")
    assert r.status_code == 409
    assert "belongs to cluster" in r.json()["detail"]
