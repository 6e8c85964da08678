"""The optional firewall (on for mol-host-prep-3, an etcd + worker node): exactly its roles' ports."""

from __future__ import annotations

import pytest

testinfra_hosts = ["mol-host-prep-3"]


@pytest.fixture
def listeners(host):
    """TCP listeners on a port the node's roles open (2379, etcd) and on one they do not (6443, API server)."""
    ports = (2379, 6443)
    for port in ports:
        started = host.run(f"sudo -n systemd-run --unit smcp-verify-listen-{port} python3 -m http.server {port}")
        assert started.rc == 0, started.stderr
    host.run("sleep 1")
    yield ports
    for port in ports:
        host.run(f"sudo -n systemctl stop smcp-verify-listen-{port}")


def test_ruleset_holds_exactly_the_roles_ports(host):
    assert host.service("smcp-firewall").is_enabled
    ruleset = host.check_output("sudo -n nft list table inet smcp_firewall")
    assert "policy drop" in ruleset
    assert "elements = { 22, 2379-2380, 10250, 10256, 30000-32767 }" in ruleset
    assert "6443" not in ruleset


def test_open_and_closed_ports_from_another_node(host, get_host, listeners):
    address = host.ansible.get_variables()["ansible_host"]
    peer = get_host("mol-host-prep-1")

    def connects(port: int) -> bool:
        return peer.run(f"timeout 3 bash -c 'echo > /dev/tcp/{address}/{port}'").rc == 0

    assert connects(22)
    assert connects(2379)
    assert not connects(6443)
    # The listener on 6443 is up: the firewall, not a missing service, refused the peer.
    assert host.run("timeout 3 bash -c 'echo > /dev/tcp/127.0.0.1/6443'").rc == 0
