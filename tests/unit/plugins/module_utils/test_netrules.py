"""module_utils/netrules: host names, addresses and cluster networks (the rules the API and preflight share).

RULE_TABLE is also fed to the API (tests/api/routes/test_netrules.py), so both sides see the same values.
"""

from __future__ import annotations

import pytest
from ansible_collections.smcp.platform.plugins.module_utils import netrules as nr
from ansible_collections.smcp.platform.plugins.module_utils import preflight_cluster as pc
from ansible_collections.smcp.platform.plugins.module_utils.preflight import parsers

# (kind, value, accepted): kind is hostname, address, or networks (pod, service) for a cluster of 3 nodes.
RULE_TABLE = [
    ("hostname", "cp1", True),
    ("hostname", "node-1.example.com", True),
    ("hostname", "a" * 63, True),
    ("hostname", "a" * 64, False),
    ("hostname", "Node1", False),
    ("hostname", "node_1", False),
    ("hostname", "-node", False),
    ("hostname", "node..x", False),
    ("hostname", "a." * 32 + "b", False),  # 65 characters: more than Linux keeps
    ("address", "192.0.2.10", True),
    ("address", "2001:db8::10", True),
    ("address", "127.0.0.1", True),
    ("address", "node1.example.org", True),
    ("address", "Node1.Example.org", True),
    ("address", "999.1.1.1", False),
    ("address", "10.0.0.256", False),
    ("address", "1.2.3", False),
    ("address", "0.0.0.0", False),
    ("address", "224.0.0.1", False),
    ("address", "bad address!", False),
    ("address", "-node.example.org", False),
    ("networks", ("10.244.0.0/16", "10.96.0.0/12"), True),
    ("networks", ("fd00:10:244::/56", "fd00:10:96::/112"), True),
    ("networks", ("10.244.0.0/22", "10.96.0.0/28"), True),  # 4 node ranges for 3 nodes; 16 services
    ("networks", ("10.244.0.0/32", "10.96.0.0/12"), False),  # smaller than one node's /24
    ("networks", ("10.244.0.0/23", "10.96.0.0/12"), False),  # 2 node ranges for 3 nodes
    ("networks", ("10.0.0.0/7", "172.20.0.0/16"), False),  # more than 16 bits over the node mask
    ("networks", ("127.0.0.0/16", "10.96.0.0/12"), False),  # loopback
    ("networks", ("169.254.0.0/16", "10.96.0.0/12"), False),  # link-local
    ("networks", ("10.244.0.0/16", "224.0.0.0/12"), False),  # multicast
    ("networks", ("fd00:10:244::/56", "10.96.0.0/12"), False),  # families differ
    ("networks", ("10.244.0.0/16", "10.0.0.0/8"), False),  # services: more than 20 host bits
    ("networks", ("10.244.0.0/16", "10.96.0.0/29"), False),  # services: fewer than 10 addresses
    ("networks", ("10.96.0.0/16", "10.96.0.0/12"), False),  # overlap
    ("networks", ("10.244.0.1/16", "10.96.0.0/12"), False),  # host bits
    ("networks", ("banana", "10.96.0.0/12"), False),
]
NODES = 3


def findings(kind, value):
    if kind == "hostname":
        return nr.check_hostname(value)
    if kind == "address":
        return nr.check_address(value)
    return nr.check_networks(value[0], value[1], nodes=NODES)


@pytest.mark.parametrize(("kind", "value", "accepted"), RULE_TABLE)
def test_rule_table(kind, value, accepted):
    found = findings(kind, value)
    assert (found == []) is accepted, found
    for finding in found:
        message = finding.message()
        assert message.startswith(finding.field + ": ") and finding.fix in message


def test_messages_name_field_value_and_fix():
    (f,) = nr.check_address("999.1.1.1")
    assert f.message() == (
        "address: '999.1.1.1' is neither an IP address nor a DNS name (it looks like an IPv4 address but is not one, "
        "and a DNS name cannot end in an all-numeric label) (need an IP address or a DNS name); "
        "use e.g. 192.0.2.10, 2001:db8::10 or node1.example.org"
    )
    (f,) = nr.check_hostname("Node_1")
    assert f.field == "name" and "upper-case" in f.what and f.fix == "use e.g. 'node-1'"
    assert nr.check_hostname("Node..X_")[0].fix == "use e.g. 'node.x'"
    (f,) = nr.check_networks("10.244.0.0/23", "10.96.0.0/12", nodes=5)
    assert f.message() == (
        "pod_cidr: '10.244.0.0/23 for 5 nodes' has room for 2 node ranges (/24 each) (need at least 5 node ranges); "
        "use a larger network: a /21 or shorter prefix"
    )
    (f,) = nr.check_networks("fd00:10:244::/56", "10.96.0.0/12")
    assert f.field == "service_cidr" and "fd00:10:244::/56" in f.what
    (f,) = nr.check_networks("127.0.0.0/16", "10.96.0.0/12")
    assert f.rule == "reserved" and "loopback space 127.0.0.0/8" in f.what


def test_node_mask_is_a_parameter():
    assert nr.check_networks("10.244.0.0/24", "10.96.0.0/12", nodes=4, node_mask_v4=26) == []
    assert [f.rule for f in nr.check_networks("10.244.0.0/24", "10.96.0.0/12", nodes=5, node_mask_v4=26)] == [
        "pod_too_few_nodes"
    ]
    assert [f.rule for f in nr.check_networks("fd00::/48", "fd00:1::/112", node_mask_v6=80)] == ["pod_too_large"]


def test_service_limits_are_kubeadms():
    def ok(svc):
        pod = "10.244.0.0/16" if ":" not in svc else "fd00:10:244::/56"
        return nr.check_networks(pod, svc) == []

    assert ok("10.96.0.0/12") and not ok("10.96.0.0/11")
    assert ok("10.96.0.0/28") and not ok("10.96.0.0/29")
    assert ok("fd00:10:96::/108") and not ok("fd00:10:96::/107")
    assert ok("fd00:10:96::/124") and not ok("fd00:10:96::/125")


def test_address_key_compares_ips_and_names():
    assert nr.address_key("2001:DB8:0::10") == nr.address_key("2001:db8::10")
    assert nr.address_key("Node1.Example.org") == "node1.example.org"


@pytest.mark.parametrize(("kind", "value", "accepted"), [row for row in RULE_TABLE if row[0] == "networks"])
def test_preflight_cidr_checks_are_the_shared_rules(kind, value, accepted):
    """The cluster preflight (smcp_pod_cidr, smcp_service_cidr) refuses exactly what the rules refuse."""
    groups = {"etcd": ["cp1"], "control_plane": ["cp1"], "workers": ["w1", "w2"]}
    results = {
        h: {"node_name": h, "node_ip": f"192.0.2.{i + 1}", "facts": {"networks": ["192.0.2.0/24"]}}
        for i, h in enumerate(["cp1", "w1", "w2"])
    }
    settings = {"pod_cidr": value[0], "service_cidr": value[1]}
    problems = [p for _, p in pc.cluster_problems(results, groups, settings)]
    assert (problems == []) is accepted, [p.message() for p in problems]
    assert {p.check for p in problems} <= {"pod_cidr", "service_cidr", "cidr_overlap"}
    shared = nr.check_networks(value[0], value[1], NODES, pod_field="smcp_pod_cidr", service_field="smcp_service_cidr")
    assert [p.what for p in problems] == [f.field + " " + f.what for f in shared]


@pytest.mark.parametrize(("kind", "value", "accepted"), [row for row in RULE_TABLE if row[0] == "hostname"])
def test_preflight_hostname_check_is_the_shared_rule(kind, value, accepted):
    assert (parsers.hostname_problems(value) == []) is accepted
