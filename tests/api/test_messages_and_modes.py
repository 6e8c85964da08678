"""422 messages a new user reads (the field named once, a hint to quote numbers) and owner-only data files."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from smcp_api.core.config import Settings
from smcp_api.main import create_app
from smcp_api.versions import supported_versions

from tests.api.conftest import REPO

YAML = {"Content-Type": "application/yaml"}


def _messages(response: Any) -> list[str]:
    detail = response.json()["detail"]
    return [detail] if isinstance(detail, str) else [str(item["msg"]) for item in detail]


def _repeats_field(message: str) -> bool:
    """'pod_cidr: pod_cidr ...', 'hosts.0.roles: roles ...', 'vars: vars.x: ...': the field named twice in a row."""
    field, sep, rest = message.partition(": ")
    if not sep or " " in field:
        return False
    last = re.split(r"[.\[]", field)[-1].rstrip("]")
    return re.match(rf"(?:{re.escape(field)}|{re.escape(last)})\b", rest) is not None


def test_repeat_detector_catches_the_known_shapes() -> None:
    assert _repeats_field("pod_cidr: pod_cidr '10.0.0.1/8' has host bits set")
    assert _repeats_field("hosts.0.roles: roles ['etcd', 'etcd'] repeat an entry")
    assert not _repeats_field("pod_cidr '10.0.0.1/8' has host bits set; use the network address 10.0.0.0/8")
    assert _repeats_field("vars: vars.ansible_connection: connection variables are refused")
    assert not _repeats_field("vars.ansible_connection: connection variables are refused")
    assert not _repeats_field("address: '999.1.1.1' is neither an IP address nor a DNS name")


@pytest.fixture
def hosts(api: Any) -> list[dict[str, Any]]:
    cred = api.credential()
    return [api.host(f"n{i}", cred["id"], address=f"192.0.2.{10 + i}", vars={}) for i in range(2)]


def test_no_422_message_names_its_field_twice(api: Any, hosts: list[dict[str, Any]]) -> None:
    cred_id = hosts[0]["credential_id"]
    cluster = {
        "name": "c1",
        "kubernetes_version": "1.35.0",
        "hosts": [{"host_id": hosts[0]["id"], "roles": ["etcd", "control_plane"]}],
    }
    bad: list[tuple[str, dict[str, Any]]] = [
        ("/api/v1/hosts", {"name": "x", "address": "no such/address", "credential_id": cred_id}),
        ("/api/v1/hosts", {"name": "x", "address": "192.0.2.99", "credential_id": cred_id, "roles": ["etcd", "etcd"]}),
        ("/api/v1/hosts", {"name": "x", "address": "192.0.2.99", "credential_id": cred_id, "vars": {"1bad": 1}}),
        ("/api/v1/hosts", {"name": "x", "address": "192.0.2.99", "credential_id": cred_id, "ssh_port": 0}),
        (
            "/api/v1/hosts",
            {"name": "x", "address": "192.0.2.99", "credential_id": cred_id, "vars": {"ansible_connection": "local"}},
        ),
        ("/api/v1/hosts", {"name": "x", "address": "192.0.2.99", "credential_id": cred_id, "extra": 1}),
        ("/api/v1/hosts", {"address": "192.0.2.99", "credential_id": cred_id}),
        ("/api/v1/clusters", {**cluster, "pod_cidr": "10.244.0.1/16"}),
        ("/api/v1/clusters", {**cluster, "pod_cidr": "banana", "service_cidr": "10.96.0.1/12"}),
        ("/api/v1/clusters", {**cluster, "pod_cidr": "10.96.0.0/16"}),
        ("/api/v1/clusters", {**cluster, "kubernetes_version": "1.34.2"}),
        ("/api/v1/clusters", {**cluster, "kubernetes_version": 1.34}),
        ("/api/v1/clusters", {**cluster, "control_plane_endpoint": "nohostport"}),
        ("/api/v1/clusters", {**cluster, "options": {"smcp_lb_mode": "vip"}}),
        ("/api/v1/clusters", {**cluster, "hosts": [{"host_id": hosts[0]["id"], "roles": ["etcd", "etcd"]}]}),
        ("/api/v1/clusters", {**cluster, "hosts": [{"host_id": hosts[0]["id"], "roles": ["workers"]}]}),
        ("/api/v1/clusters", {**cluster, "cni": "weave"}),
        ("/api/v1/jobs", {"operation": "preflight"}),
        ("/api/v1/jobs", {"operation": "preflight", "host_ids": [hosts[0]["id"]], "params": {"forks": 0}}),
        ("/api/v1/tokens", {"name": "t", "role": "root"}),
        ("/api/v1/credentials", {"name": "k", "private_key": "not a key"}),
    ]
    seen: list[str] = []
    for path, body in bad:
        r = api.post(path, json=body)
        assert 400 <= r.status_code < 500, (path, body, r.text)
        seen += _messages(r)
    doubled = [m for m in seen if _repeats_field(m)]
    assert doubled == [], doubled
    assert len(seen) >= len(bad)
    assert all("body: " not in m for m in seen), seen  # a rule about several fields names them, not "body"


def test_unquoted_version_in_yaml_says_quote_it_and_names_the_releases(api: Any, hosts: list[dict[str, Any]]) -> None:
    doc = (
        f"name: c1\nkubernetes_version: 1.34\nhosts:\n  - host_id: {hosts[0]['id']}\n    roles: [etcd, control_plane]\n"
    )
    r = api.post("/api/v1/clusters", content=doc, headers=YAML)
    assert r.status_code == 422, r.text
    (msg,) = _messages(r)
    assert msg.startswith("kubernetes_version: 1.34 was read as a number")
    assert 'quote it, e.g. kubernetes_version: "1.34.4"' in msg
    assert all(v in msg for v in supported_versions())
    assert api.get("/api/v1/clusters").json() == []


# ------------------------------------------------------------------------------------------- file modes
def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _start(tmp_path: Path, fake_collections: Path) -> tuple[TestClient, Path]:
    data = tmp_path / "data"
    conf = Settings(data_dir=data, collections_path=fake_collections, ansible_config=REPO / "ansible.cfg")
    client = TestClient(create_app(conf, start_worker=False))
    client.__enter__()
    return client, data


def test_data_files_are_owner_only_after_start(tmp_path: Path, fake_collections: Path) -> None:
    old = os.umask(0o022)  # a usual umask: the modes must not depend on it
    try:
        client, data = _start(tmp_path, fake_collections)
    finally:
        os.umask(old)
    try:
        token = (data / "admin.token").read_text().strip()
        assert client.get("/api/v1/hosts", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert _mode(data) == 0o700
        files = [data / n for n in ("smcp.db", "smcp.db-wal", "smcp.db-shm", "secret.key", "admin.token")]
        assert {f.name: _mode(f) for f in files} == {f.name: 0o600 for f in files}
    finally:
        client.__exit__(None, None, None)


def test_loose_existing_data_dir_and_files_are_tightened(tmp_path: Path, fake_collections: Path) -> None:
    client, data = _start(tmp_path, fake_collections)
    client.__exit__(None, None, None)
    os.chmod(data, 0o755)
    for name in ("smcp.db", "secret.key"):
        os.chmod(data / name, 0o644)
    client, data = _start(tmp_path, fake_collections)
    try:
        assert _mode(data) == 0o700
        assert {n: _mode(data / n) for n in ("smcp.db", "secret.key")} == {"smcp.db": 0o600, "secret.key": 0o600}
    finally:
        client.__exit__(None, None, None)
