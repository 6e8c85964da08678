"""Inventory generation: groups from roles, host vars (sandbox settings), known_hosts, 0600 key files."""

from __future__ import annotations

import json
import stat

from smcp_api.jobs import inventory
from smcp_api.models import Job


def test_inventory_from_the_store(api, tmp_path):
    cred = api.credential()
    sandbox_vars = {"smcp_sandbox": True}  # ansible_* connection variables are refused (varpolicy)
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    a = api.host("a", cred["id"], address="192.0.2.1", ssh_port=2200, vars=sandbox_vars, known_hosts=f"a {host_key}")
    b = api.host("b", cred["id"], address="192.0.2.2", vars={})
    cluster = api.cluster("inv", [a["id"], b["id"]], pod_cidr="10.50.0.0/16", options={"smcp_sandbox": True})
    with api.services.sessions() as s:
        job = Job(operation="preflight", cluster_id=cluster["id"], host_ids=[b["id"]], params={"batch_size": 3})
        files = inventory.build(s, job, api.services.vault, tmp_path)
    inv = json.loads(files.inventory_path.read_text())
    assert inv == files.inventory
    top = inv["all"]
    assert top["vars"]["smcp_cluster_name"] == "inv" and top["vars"]["smcp_pod_cidr"] == "10.50.0.0/16"
    assert top["vars"]["smcp_service_cidr"] == "10.96.0.0/12" and top["vars"]["smcp_sandbox"] is True
    assert top["children"]["etcd"]["hosts"] == {"a": {}} and top["children"]["control_plane"]["hosts"] == {"a": {}}
    assert set(top["children"]["workers"]["hosts"]) == {"a", "b"}
    ha = top["hosts"]["a"]
    assert ha["ansible_host"] == "192.0.2.1" and ha["ansible_port"] == 2200 and ha["ansible_user"] == "smcp"
    assert ha["smcp_sandbox"] is True
    assert ha["ansible_ssh_common_args"].startswith("-o UserKnownHostsFile=")
    assert ha["ansible_ssh_common_args"].endswith("-o StrictHostKeyChecking=yes")
    assert (tmp_path / "known_hosts" / "a").read_text() == f"[192.0.2.1]:2200 {host_key}\n"  # as ssh looks it up
    assert "ansible_ssh_common_args" not in top["hosts"]["b"]
    key = tmp_path / "keys" / cred["id"]
    assert ha["ansible_ssh_private_key_file"] == str(key)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and "PRIVATE KEY" in key.read_text()
    assert stat.S_IMODE(files.inventory_path.stat().st_mode) == 0o600
    assert files.limit == "b" and files.extravars == {"smcp_batch_size": 3}
    assert [k.strip() for k in files.secrets] == [key.read_text().strip()]
