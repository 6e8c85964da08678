"""module_utils/preflight_cluster: cross-host checks, CIDR checks and the combined report."""

from __future__ import annotations

import pytest
from ansible_collections.smcp.platform.plugins.module_utils import preflight_cluster as pc
from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import CLUSTER_CHECK_IDS

GROUPS = {
    "etcd": ["cp1", "cp2", "cp3"],
    "control_plane": ["cp1", "cp2", "cp3"],
    "workers": ["w1"],
}
SETTINGS = {"pod_cidr": "10.244.0.0/16", "service_cidr": "10.96.0.0/12"}


def node(name: str, ip: str, networks=("10.0.0.0/24",), failures=(), warnings=()) -> dict:
    return {
        "node_name": name,
        "node_ip": ip,
        "roles": [],
        "facts": {"networks": list(networks)},
        "failures": list(failures),
        "warnings": list(warnings),
    }


def healthy() -> dict:
    return {h: node(h, f"10.0.0.{i + 1}") for i, h in enumerate(["cp1", "cp2", "cp3", "w1"])}


def ids(results=None, groups=None, **settings) -> list[str]:
    merged = dict(SETTINGS, **settings)
    return [p.check for _, p in pc.cluster_problems(results or healthy(), groups or GROUPS, merged)]


def test_healthy_cluster_has_no_problems():
    assert ids() == []
    report = pc.build_report(healthy(), GROUPS, SETTINGS)
    assert report["failed"] is False and report["failures"] == [] and report["warnings"] == []
    assert report["summary"].startswith("preflight passed: 0 failure(s), 0 warning(s)")


def test_duplicate_hostname_is_case_insensitive():
    results = healthy()
    results["w1"]["node_name"] = "CP1"
    problems = pc.cluster_problems(results, GROUPS, SETTINGS)
    assert [p.check for _, p in problems] == ["duplicate_hostname"]
    assert (
        problems[0][1].message("cluster").startswith("cluster: [duplicate_hostname] node name cp1 is used by several")
    )
    assert "cp1, w1" in problems[0][1].found


def test_duplicate_ip():
    results = healthy()
    results["cp2"]["node_ip"] = "10.0.0.1"
    assert ids(results) == ["duplicate_ip"]


@pytest.mark.parametrize(("members", "ok"), [(1, True), (2, False), (3, True), (4, False), (5, True), (0, False)])
def test_etcd_count_must_be_odd(members, ok):
    groups = dict(GROUPS, etcd=[f"e{i}" for i in range(members)])
    assert (ids(groups=groups) == []) is ok
    if not ok:
        assert ids(groups=groups) == ["etcd_count"]


def test_etcd_group_name_is_configurable():
    groups = {"kv": ["a"], "control_plane": ["cp1"], "workers": []}
    assert ids(groups=groups, etcd_group="kv") == []
    assert ids(groups=groups) == ["etcd_count"]


def test_control_plane_present():
    assert ids(groups=dict(GROUPS, control_plane=[])) == ["control_plane_present"]
    assert ids(groups={"etcd": ["a"], "workers": ["a"]}) == ["control_plane_present"]


@pytest.mark.parametrize(
    ("pod", "service", "expected"),
    [
        ("10.244.0.0/16", "10.96.0.0/12", []),
        ("10.244.0.0/16,fd00:10:244::/56", "10.96.0.0/12,fd00:10:96::/112", []),  # dual-stack
        ("10.244.0.0/33", "10.96.0.0/12", ["pod_cidr"]),
        ("banana", "10.96.0.0/12", ["pod_cidr"]),
        ("", "10.96.0.0/12", ["pod_cidr"]),
        ("10.244.1.0/16", "10.96.0.0/12", ["pod_cidr"]),  # host bits
        ("10.244.0.0/25", "10.96.0.0/12", ["pod_cidr"]),  # smaller than one node's /24
        ("10.244.0.0/23", "10.96.0.0/12", ["pod_cidr"]),  # 2 node ranges for 4 nodes
        ("10.244.0.0/16,10.245.0.0/16", "10.96.0.0/12", ["pod_cidr"]),  # two IPv4 networks
        ("10.244.0.0/16", "10.96.0.0/8", ["service_cidr"]),  # too large
        ("10.244.0.0/16", "10.96.0.0/30", ["service_cidr"]),  # too small
        ("10.244.0.0/16", "fd00:10:96::/112", ["service_cidr"]),  # families differ
        ("10.244.0.0/16", "10.96.0.0/12x", ["service_cidr"]),
        ("10.96.0.0/16", "10.96.0.0/12", ["cidr_overlap"]),  # pods inside services
        ("10.0.0.0/16", "10.96.0.0/12", ["cidr_overlap"]),  # pods over the node network 10.0.0.0/24
        ("10.244.0.0/16", "10.0.0.0/12", ["cidr_overlap"]),  # services over the node network
    ],
)
def test_cidr_checks(pod, service, expected):
    assert ids(pod_cidr=pod, service_cidr=service) == expected


def test_cidr_messages_name_the_values_and_fix():
    problems = dict(
        (p.check, p) for _, p in pc.cluster_problems(healthy(), GROUPS, dict(SETTINGS, pod_cidr="10.244.1.0/16"))
    )
    assert problems["pod_cidr"].fix == "use 10.244.0.0/16"
    problems = [p for _, p in pc.cluster_problems(healthy(), GROUPS, dict(SETTINGS, pod_cidr="10.0.0.0/16"))]
    assert "10.0.0.0/16 and 10.0.0.0/24 (on cp1, cp2, cp3, w1)" in problems[0].found
    expected = (
        "[cidr_overlap] smcp_pod_cidr overlaps a node network (found 10.0.0.0/16 and 10.0.0.0/24 (on cp1, cp2, cp3,"
        " w1), need disjoint networks); fix: choose a smcp_pod_cidr outside every node network"
    )
    assert problems[0].message() == expected


def test_node_ip_inside_a_cluster_network_outside_node_networks():
    results = healthy()
    results["w1"] = node("w1", "10.96.0.5", networks=["10.96.0.0/32"])
    results["w1"]["facts"]["networks"] = []
    found = [p for _, p in pc.cluster_problems(results, GROUPS, SETTINGS)]
    assert [p.check for p in found] == ["cidr_overlap"] and "10.96.0.5 in 10.96.0.0/12 (w1)" in found[0].found
    assert (found[0].what, found[0].need, found[0].fix) == (
        "smcp_service_cidr contains a node IP",
        "node IPs outside the pod and service networks",
        "choose a smcp_service_cidr that does not contain node addresses",
    )


def test_ipv6_node_network_overlap():
    results = healthy()
    results["w1"]["facts"]["networks"] = ["fd00:10:96::/64"]
    assert ids(results, pod_cidr="10.244.0.0/16,fd00:10:244::/56", service_cidr="10.96.0.0/12,fd00:10:96::/112") == [
        "cidr_overlap"
    ]


def test_pod_cidr_node_mask_is_configurable():
    assert ids(pod_cidr="10.244.0.0/23", node_mask_v4=26) == []


def test_report_lists_every_hosts_problems_and_cluster_ones_in_one_message():
    results = healthy()
    results["cp1"]["failures"] = [
        {
            "id": "memory",
            "what": "too little memory for role control_plane",
            "found": "512 MiB",
            "need": "at least 1700 MiB",
            "fix": "add memory",
        }
    ]
    results["cp2"]["failures"] = [
        {"id": "swap", "what": "swap is on", "found": "1 MiB on /swap", "need": "no swap", "fix": "swapoff -a"}
    ]
    results["w1"]["warnings"] = [
        {
            "id": "ip_forward",
            "what": "net.ipv4.ip_forward is off",
            "found": "0",
            "need": "1",
            "fix": "none",
            "severity": "warning",
        }
    ]
    results["cp3"] = None  # unreachable
    report = pc.build_report(results, dict(GROUPS, etcd=["cp1", "cp2"]), dict(SETTINGS, service_cidr="10.244.0.0/12"))
    assert report["failed"] is True
    assert report["failures"] == [
        "cp1: [memory] too little memory for role control_plane (found 512 MiB, need at least 1700 MiB); "
        "fix: add memory",
        "cp2: [swap] swap is on (found 1 MiB on /swap, need no swap); fix: swapoff -a",
        "cp3: [unreachable] no preflight result for this host (found host unreachable or node_preflight failed, "
        "need a result from every host); fix: see this host's error above (SSH access, python3 on the host)",
        "cluster: [etcd_count] etcd needs an odd number of members to keep quorum through failures "
        "(found 2 in group etcd (cp1, cp2), need 1, 3, 5 or 7); fix: add or remove hosts in the etcd group",
        "cluster: [service_cidr] smcp_service_cidr has host bits set (found 10.244.0.0/12, need a network address); "
        "fix: use 10.240.0.0/12",
    ]
    assert report["warnings"] == ["w1: [ip_forward] net.ipv4.ip_forward is off (found 0, need 1); fix: none"]
    summary = report["summary"].splitlines()
    assert summary[0] == "preflight failed: 5 failure(s) (on cluster, cp1, cp2, cp3), 1 warning(s); no host was changed"
    assert summary[1] == "FAILURES:" and summary[2:7] == report["failures"]
    assert summary[7] == "WARNINGS:" and summary[8] == report["warnings"][0]
    assert "preflight_warn_only" in summary[-1]
    assert {p["host"] for p in report["problems"]} == {"cp1", "cp2", "cp3", "w1", "cluster"}


def test_report_warn_only_downgrades_node_and_cluster_checks():
    results = healthy()
    results["cp1"]["failures"] = [{"id": "swap", "what": "swap is on", "found": "1", "need": "0", "fix": "x"}]
    report = pc.build_report(results, dict(GROUPS, etcd=["cp1", "cp2"]), SETTINGS, warn_only=["swap", "etcd_count"])
    assert report["failed"] is False and report["failures"] == []
    assert len(report["warnings"]) == 2 and all("downgraded to a warning" in w for w in report["warnings"])
    assert report["summary"].startswith("preflight passed: 0 failure(s), 2 warning(s)")


def test_parse_cidrs_accepts_lists():
    nets, problems = pc.parse_cidrs(["10.244.0.0/16", "fd00::/56"], "pod_cidr", "smcp_pod_cidr")
    assert [str(n) for n in nets] == ["10.244.0.0/16", "fd00::/56"] and problems == []


def _scenario(check: str) -> dict:
    """Report of a cluster that fails exactly ``check``."""
    results, groups, settings = healthy(), dict(GROUPS), dict(SETTINGS)
    if check == "duplicate_hostname":
        results["w1"]["node_name"] = "cp2"
    elif check == "duplicate_ip":
        results["w1"]["node_ip"] = "10.0.0.2"
    elif check == "etcd_count":
        groups["etcd"] = ["cp1", "cp2"]
    elif check == "control_plane_present":
        groups["control_plane"] = []
    elif check == "pod_cidr":
        settings["pod_cidr"] = "10.244.0.0/30"
    elif check == "service_cidr":
        settings["service_cidr"] = "10.96.0.0/31"
    elif check == "cidr_overlap":
        settings["service_cidr"] = "10.244.0.0/20"
    elif check == "unreachable":
        results["w1"] = None
    return pc.build_report(results, groups, settings)


@pytest.mark.parametrize("check", sorted(CLUSTER_CHECK_IDS))
def test_every_cluster_check_id_has_a_failure_path(check):
    report = _scenario(check)
    assert report["failed"] and {p["id"] for p in report["problems"]} == {check}
    assert all(f"[{check}] " in line for line in report["failures"])
