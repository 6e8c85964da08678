"""Inventory generation: groups from roles, host vars, pinned known_hosts, public key files only, !unsafe strings."""

from __future__ import annotations

import yaml
from smcp_api.jobs import inventory
from smcp_api.jobs.service import collection_dir
from smcp_api.models import Job


def test_inventory_from_the_store(api, tmp_path):
    cred = api.credential()
    host_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
    jinja = "{{ lookup('ansible.builtin.pipe', 'id') }}"
    a = api.host(
        "a",
        cred["id"],
        address="192.0.2.1",
        ssh_port=2200,
        vars={"smcp_sandbox": True, "smcp_node_ip": jinja},
        known_hosts=f"a {host_key}",
    )
    b = api.host("b", cred["id"], address="192.0.2.2", vars={})
    cluster = api.cluster("inv", [a["id"], b["id"]], pod_cidr="10.50.0.0/16", options={"smcp_sandbox": True})
    for sub in ("keys", "inventory"):
        (tmp_path / sub).mkdir()
    with api.services.sessions() as s:
        job = Job(operation="preflight", cluster_id=cluster["id"], host_ids=[b["id"]], params={"batch_size": 3})
        files = inventory.build(s, job, api.services.vault, tmp_path, collection_dir(api.services.settings))
    text = files.inventory_path.read_text()
    assert yaml.load(text, Loader=_UnsafeAsText) == files.inventory  # what Ansible reads is what was built
    assert "!unsafe" in text and "'!unsafe'" not in text
    # Every string value is tagged !unsafe, so Ansible never templates it (tests/api/test_security.py runs it).
    tags = _value_tags(yaml.compose(text))
    assert tags and set(tags) <= {"!unsafe", "tag:yaml.org,2002:bool", "tag:yaml.org,2002:int"}, set(tags)
    assert tags.count("!unsafe") >= 10
    top = files.inventory["all"]
    assert top["vars"]["smcp_cluster_name"] == "inv" and top["vars"]["smcp_pod_cidr"] == "10.50.0.0/16"
    assert top["vars"]["smcp_service_cidr"] == "10.96.0.0/12" and top["vars"]["smcp_sandbox"] is True
    assert "StrictHostKeyChecking=yes" in top["vars"]["ansible_ssh_common_args"]
    assert f"UserKnownHostsFile={tmp_path / 'known_hosts'}" in top["vars"]["ansible_ssh_common_args"]
    assert top["children"]["etcd"]["hosts"] == {"a": {}} and top["children"]["control_plane"]["hosts"] == {"a": {}}
    assert set(top["children"]["workers"]["hosts"]) == {"a", "b"}
    ha = top["hosts"]["a"]
    assert ha["ansible_host"] == "192.0.2.1" and ha["ansible_port"] == 2200 and ha["ansible_user"] == "smcp"
    assert ha["smcp_sandbox"] is True and ha["smcp_node_ip"] == jinja
    assert "ansible_ssh_common_args" not in ha  # one set of SSH options for the job, none from the host record
    assert files.pinned == {"a": f"[192.0.2.1]:2200 {host_key}\n"}  # as ssh looks it up; b is not pinned yet
    inventory.write_known_hosts(tmp_path, files.pinned)
    assert (tmp_path / "known_hosts").read_text() == f"[192.0.2.1]:2200 {host_key}\n"
    pub = tmp_path / "keys" / f"{cred['id']}.pub"
    assert ha["ansible_ssh_private_key_file"] == str(pub) and pub.read_text().startswith("ssh-ed25519 ")
    assert [p.name for p in (tmp_path / "keys").iterdir()] == [pub.name]  # the private key is never a file
    assert "PRIVATE KEY" in files.keys[cred["id"]]  # for the job's ssh-agent, through a FIFO
    assert [k.strip() for k in files.secrets] == [files.keys[cred["id"]].strip()]  # redacted from the output
    assert files.limit == "b" and files.extravars == {"smcp_batch_size": 3}


class _UnsafeAsText(yaml.SafeLoader):
    pass


_UnsafeAsText.add_constructor("!unsafe", lambda loader, node: loader.construct_scalar(node))


def _value_tags(node: yaml.Node) -> list[str]:
    """The tags of every scalar that is a mapping value or a sequence item (keys are names, not values)."""
    if isinstance(node, yaml.MappingNode):
        return [tag for _, value in node.value for tag in _value_tags(value)]
    if isinstance(node, yaml.SequenceNode):
        return [tag for item in node.value for tag in _value_tags(item)]
    return [node.tag]
