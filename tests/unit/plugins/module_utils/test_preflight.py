"""module_utils/preflight: parsers, support table, every node check's failure path, collect() on a fake host."""

from __future__ import annotations

import copy
import fcntl
import ipaddress
import os
import subprocess
import sys
import textwrap

import pytest
from ansible_collections.smcp.platform.plugins.module_utils.preflight import checks, data, parsers, report
from ansible_collections.smcp.platform.plugins.module_utils.preflight import facts as pf_facts
from ansible_collections.smcp.platform.plugins.module_utils.preflight import host as pf_host
from ansible_collections.smcp.platform.plugins.module_utils.preflight import problems as pf_problems

# ----------------------------------------------------------------- fixtures


def good_facts() -> dict:
    """Facts of a healthy Debian 12 host that passes every check."""
    return {
        "os": dict(
            parsers.parse_os_release('ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n'),
            **parsers.os_support({"id": "debian", "version_id": "12"}),
        ),
        "arch": "x86_64",
        "cpus": 4,
        "memory_mb": 8192,
        "swap": {"total_mb": 0, "devices": []},
        "kernel_release": "6.1.0-18-amd64",
        "disk": {"/": {"free_mb": 50000, "dev": 1}, "/var": {"free_mb": 50000, "dev": 1}},
        "cgroup": {"version": 2, "hybrid": False, "controllers": ["cpu", "cpuset", "io", "memory", "pids"]},
        "kernel": {
            "overlay": True,
            "overlay_module": True,
            "br_netfilter": True,
            "br_netfilter_module": True,
            "ip_forward": "1",
            "bridge_nf_call_iptables": "1",
        },
        "time_sync": {"state": "synchronized", "daemons": ["chronyd"]},
        "hostname": "cp1",
        "addresses": ["127.0.0.1", "10.0.0.11", "::1"],
        "networks": ["10.0.0.0/24"],
        "listening_ports": [22],
        "port_conflicts": {},
        "pkg_locks": {},
        "existing": {"kubernetes": [], "container_runtime": []},
    }


def settings(**overrides) -> dict:
    base = {"roles": ["control_plane", "etcd", "worker"], "node_ip": "10.0.0.11", "sandbox": False}
    base.update(overrides)
    return base


def problems_of(facts: dict, **overrides) -> list[pf_problems.Problem]:
    return checks.evaluate(facts, settings(**overrides))


def only(problems: list[pf_problems.Problem], check: str, severity: str = data.FAILURE) -> pf_problems.Problem:
    """Exactly one problem, with this id and severity."""
    assert [(p.check, p.severity) for p in problems] == [(check, severity)], [p.message() for p in problems]
    return problems[0]


def test_good_host_passes_every_check():
    assert problems_of(good_facts()) == []


def test_every_node_check_has_a_function():
    assert len(checks._NODE_CHECKS) == len(data.NODE_CHECK_IDS)
    assert set(data.NODE_CHECK_IDS).isdisjoint(data.CLUSTER_CHECK_IDS)


# ----------------------------------------------------------- message format


def test_message_format_is_stable():
    p = pf_problems.Problem("memory", "too little memory", found="512 MiB", need="at least 1700 MiB", fix="add memory")
    assert p.message("n1") == "n1: [memory] too little memory (found 512 MiB, need at least 1700 MiB); fix: add memory"
    assert p.message() == "[memory] too little memory (found 512 MiB, need at least 1700 MiB); fix: add memory"
    assert pf_problems.Problem("x", "bad").message("h") == "h: [x] bad"
    d = p.as_dict("n1")
    assert d["id"] == "memory" and d["severity"] == "failure" and d["msg"].startswith("n1: [memory]")


def test_warn_only_downgrades_only_the_named_checks():
    facts = good_facts()
    facts["swap"] = {"total_mb": 2048, "devices": ["/swapfile"]}
    facts["memory_mb"] = 512
    problems = problems_of(facts, warn_only=["swap"])
    by_id = {p.check: p for p in problems}
    assert by_id["swap"].severity == data.WARNING and "downgraded" in by_id["swap"].what
    assert by_id["memory"].severity == data.FAILURE


def test_unknown_check_ids():
    assert pf_problems.unknown_check_ids(["swap", "memroy", "etcd_count"]) == ["memroy"]
    assert pf_problems.unknown_check_ids(None) == []


# ------------------------------------------------------------ support table


@pytest.mark.parametrize(
    ("os_release", "supported", "tested"),
    [
        ('ID=debian\nVERSION_ID="12"', True, True),
        ('ID=debian\nVERSION_ID="13"', True, False),
        ('ID=debian\nVERSION_ID="11"', False, False),
        ("ID=debian\n", False, False),  # testing/sid: no VERSION_ID
        ('ID=ubuntu\nVERSION_ID="22.04"', True, False),
        ('ID=ubuntu\nVERSION_ID="24.04"', True, False),
        ('ID=ubuntu\nVERSION_ID="20.04"', False, False),
        ('ID=ubuntu\nVERSION_ID="24.10"', False, False),
        ('ID="rhel"\nVERSION_ID="9.4"', True, False),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\nVERSION_ID="9.3"', True, False),
        ('ID="almalinux"\nVERSION_ID="9.5"', True, False),
        ('ID="centos"\nVERSION_ID="9"', True, False),
        ('ID="ol"\nVERSION_ID="9.2"', True, False),
        ('ID="rhel"\nVERSION_ID="8.9"', False, False),
        ("ID=fedora\nVERSION_ID=40", False, False),
        ('ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID="21.3"', False, False),
        ("", False, False),
    ],
)
def test_support_table(os_release, supported, tested):
    info = parsers.os_support(parsers.parse_os_release(os_release))
    assert (info["supported"], info["tested"]) == (supported, tested)


def test_os_check_failure_and_untested_warning():
    facts = good_facts()
    facts["os"] = dict(
        parsers.parse_os_release('ID=ubuntu\nVERSION_ID="20.04"\nPRETTY_NAME="Ubuntu 20.04.6 LTS"'),
        **parsers.os_support({"id": "ubuntu", "version_id": "20.04"}),
    )
    p = only(problems_of(facts), "os_supported")
    assert "found Ubuntu 20.04.6 LTS" in p.message() and "Debian 12/13" in p.need and "RHEL-family 9" in p.need
    facts["os"] = dict(facts["os"], **parsers.os_support({"id": "ubuntu", "version_id": "24.04"}))
    only(problems_of(facts), "os_supported", data.WARNING)


def test_os_release_parsing_handles_quotes_and_comments():
    parsed = parsers.parse_os_release(
        '# comment\nNAME=\'Rocky Linux\'\nID="rocky"\nID_LIKE="rhel centos"\nVERSION_ID=9.3\n'
    )
    assert parsed == {"id": "rocky", "id_like": ["rhel", "centos"], "version_id": "9.3", "pretty_name": "Rocky Linux"}
    assert parsers.os_support({"id": "linuxmint", "id_like": ["ubuntu", "debian"]})["family"] in ("Debian", "Ubuntu")


# --------------------------------------------------- every check's failure path


def test_arch():
    facts = good_facts()
    facts["arch"] = "ppc64le"
    assert "found ppc64le" in only(problems_of(facts), "arch").message()
    facts["arch"] = "aarch64"
    assert problems_of(facts) == []


def test_cpu_uses_largest_role_minimum_and_overrides():
    facts = good_facts()
    facts["cpus"] = 1
    p = only(problems_of(facts), "cpu")
    assert "control_plane" in p.what and p.need == "at least 2"
    assert problems_of(facts, roles=["worker", "etcd"]) == []
    assert problems_of(facts, min_cpus={"control_plane": 1}) == []
    only(problems_of(facts, roles=["worker"], min_cpus={"worker": 3}), "cpu")


def test_memory_minimums_per_role():
    facts = good_facts()
    facts["memory_mb"] = 1500
    p = only(problems_of(facts), "memory")
    assert (
        p.found == "1500 MiB" and p.need == "at least 1700 MiB" and "preflight_min_memory_mb['control_plane']" in p.fix
    )
    assert problems_of(facts, roles=["worker"]) == []
    assert problems_of(facts, min_memory_mb={"control_plane": 1024}) == []
    assert "machine's memory" in only(problems_of(facts, sandbox=True), "memory").what


def test_disk_checks_each_filesystem_once():
    facts = good_facts()
    facts["disk"] = {"/": {"free_mb": 100, "dev": 1}, "/var": {"free_mb": 100, "dev": 1}}
    p = only(problems_of(facts), "disk")
    assert p.found == "100 MiB free" and p.need == "at least 4096 MiB free"
    facts["disk"] = {"/": {"free_mb": 100000, "dev": 1}, "/var": {"free_mb": 3000, "dev": 2}}
    assert "/var" in only(problems_of(facts), "disk").what
    assert problems_of(facts, roles=["etcd"]) == []
    assert problems_of(facts, min_disk_mb={"control_plane": 1000, "worker": 1000}) == []


def test_swap_is_a_failure_with_sandbox_wording():
    facts = good_facts()
    facts["swap"] = {"total_mb": 1024, "devices": ["/dev/vda2"]}
    p = only(problems_of(facts), "swap")
    assert "1024 MiB on /dev/vda2" in p.found and "swapoff" in p.fix
    p = only(problems_of(facts, sandbox=True), "swap")
    assert "machine's swap" in p.what and "never turns swap off from a sandbox host" in p.fix


def test_cgroup_missing_controllers_v2_and_v1():
    facts = good_facts()
    facts["cgroup"] = {"version": 2, "hybrid": False, "controllers": ["cpu", "io", "pids"]}
    p = only(problems_of(facts), "cgroup")
    assert "cpuset, memory" not in p.found and "memory" in p.need
    facts["cgroup"] = {"version": 1, "hybrid": True, "controllers": list(data.REQUIRED_CGROUP_V1)}
    assert "deprecated" in only(problems_of(facts), "cgroup", data.WARNING).what
    facts["cgroup"]["controllers"] = ["cpu", "cpuacct"]
    severities = sorted(p.severity for p in problems_of(facts))
    assert severities == [data.FAILURE, data.WARNING]
    facts["cgroup"] = {"version": 0, "hybrid": False, "controllers": []}
    assert "no cgroup filesystem" in only(problems_of(facts), "cgroup").what


def test_overlay_missing_fails_loadable_warns():
    facts = good_facts()
    facts["kernel"].update(overlay=False, overlay_module=True)
    assert "host_prep loads it" in only(problems_of(facts), "kernel_overlay", data.WARNING).fix
    facts["kernel"].update(overlay_module=False)
    assert "no overlay support" in only(problems_of(facts), "kernel_overlay").what


def test_br_netfilter_missing_fails_loadable_warns_and_sysctl_off_warns():
    facts = good_facts()
    facts["kernel"].update(br_netfilter=False, br_netfilter_module=True, bridge_nf_call_iptables=None)
    only(problems_of(facts), "kernel_br_netfilter", data.WARNING)
    facts["kernel"].update(br_netfilter_module=False)
    only(problems_of(facts), "kernel_br_netfilter")
    facts["kernel"].update(br_netfilter=True, bridge_nf_call_iptables="0")
    assert "host_prep sets it" in only(problems_of(facts), "kernel_br_netfilter", data.WARNING).fix


@pytest.mark.parametrize(
    ("kernel", "sandbox", "found", "fix"),
    [
        ({"modules_supported": False}, False, "without loadable module support", "boot a kernel with br_netfilter"),
        ({"modules_disabled": True}, False, "kernel.modules_disabled=1", "load br_netfilter at boot"),
        ({"modprobe": False}, False, "no modprobe", "install the kmod package"),
        ({}, True, "sandbox host", "load it on the machine: modprobe br_netfilter"),
    ],
)
def test_a_module_that_cannot_be_loaded_fails_up_front(kernel, sandbox, found, fix):
    """Available in /lib/modules but host_prep's modprobe could not load it: a failure naming module and fix."""
    facts = good_facts()
    facts["kernel"].update(br_netfilter=False, bridge_nf_call_iptables=None, **kernel)
    problem = only(problems_of(facts, sandbox=sandbox), "kernel_br_netfilter")
    assert "br_netfilter is not loaded and cannot be loaded" in problem.what
    assert found in problem.found and fix in problem.fix
    facts["kernel"].update(br_netfilter=True)  # loaded or built in: nothing to load, nothing to report
    assert problems_of(facts, sandbox=sandbox) == []


def test_collect_reads_whether_modules_can_be_loaded(fake_root):
    kernel = report.run_preflight(FakeHost(fake_root), settings(node_ip="10.0.0.11"))["facts"]["kernel"]
    assert (kernel["modules_supported"], kernel["modules_disabled"], kernel["modprobe"]) == (False, False, False)
    write(fake_root, "/proc/modules", "overlay 151552 0 - Live 0x0\n")
    write(fake_root, "/proc/sys/kernel/modules_disabled", "1\n")
    write(fake_root, "/sbin/modprobe", "")
    kernel = report.run_preflight(FakeHost(fake_root), settings(node_ip="10.0.0.11"))["facts"]["kernel"]
    assert (kernel["modules_supported"], kernel["modules_disabled"], kernel["modprobe"]) == (True, True, True)


def test_further_modules_loaded_built_in_or_loadable(fake_root):
    """host_prep_kernel_modules beyond overlay and br_netfilter: each is checked by name."""
    write(fake_root, "/proc/modules", "ip_vs 200704 0 - Live 0x0\n")
    write(fake_root, "/usr/sbin/modprobe", "")
    write(fake_root, "/lib/modules/6.1.0-test/modules.builtin", "kernel/net/netfilter/nf_conntrack.ko\n")
    write(fake_root, "/lib/modules/6.1.0-test/modules.dep", "kernel/net/ipv4/ip_tables.ko.xz:\n")
    (fake_root / "sys/module/nf_nat").mkdir(parents=True)
    names = ["ip_vs", "nf_conntrack", "nf_nat", "ip_tables", "wireguard"]
    result = report.run_preflight(FakeHost(fake_root), settings(node_ip="10.0.0.11", kernel_modules=names))
    assert result["facts"]["kernel"]["modules"] == {
        "ip_vs": {"loaded": True, "available": False},
        "nf_conntrack": {"loaded": True, "available": True},
        "nf_nat": {"loaded": True, "available": False},
        "ip_tables": {"loaded": False, "available": True},
        "wireguard": {"loaded": False, "available": False},
    }
    assert [item["msg"] for item in result["failures"]] == [
        "[kernel_modules] kernel has no wireguard support (host_prep_kernel_modules) (found not built in, not in "
        "/lib/modules, need wireguard built in or as a module); fix: install a kernel with wireguard "
        "(e.g. the distribution's generic kernel)"
    ]
    assert [item["msg"].split(" (")[0] for item in result["warnings"]] == [
        "[kernel_modules] kernel module ip_tables is not loaded"
    ]
    # The same loadable module on a sandbox host: host_prep would not load it, so it fails now.
    result = report.run_preflight(
        FakeHost(fake_root), settings(node_ip="10.0.0.11", kernel_modules=["ip_tables"], sandbox=True)
    )
    assert [item["found"] for item in result["failures"] if item["id"] == "kernel_modules"] == [
        "sandbox host: host_prep loads no module into the machine's kernel"
    ]


def test_ip_forward_off_warns_unreadable_fails():
    facts = good_facts()
    facts["kernel"]["ip_forward"] = "0"
    assert only(problems_of(facts), "ip_forward", data.WARNING).found == "0"
    facts["kernel"]["ip_forward"] = None
    only(problems_of(facts), "ip_forward")


def test_time_sync_states():
    facts = good_facts()
    facts["time_sync"] = {"state": "unsynchronized", "daemons": ["chronyd"]}
    assert "chronyd" in only(problems_of(facts), "time_sync").found
    only(problems_of(facts, sandbox=True), "time_sync", data.WARNING)
    facts["time_sync"] = {"state": "unsynchronized", "daemons": []}
    assert "host_prep installs and starts chrony" in only(problems_of(facts), "time_sync", data.WARNING).fix
    facts["time_sync"] = {"state": "unknown", "daemons": []}
    only(problems_of(facts), "time_sync", data.WARNING)


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("cp1", True),
        ("node-1.example.com", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Node1", False),
        ("node_1", False),
        ("-node", False),
        ("node-", False),
        ("node..x", False),
        ("", False),
        (".".join(["a" * 60] * 5), False),
    ],
)
def test_hostname_rfc1123(name, valid):
    assert (parsers.hostname_problems(name) == []) is valid


def test_hostname_check_current_and_expected():
    facts = good_facts()
    facts["hostname"] = "CP_1"
    p = only(problems_of(facts), "hostname")
    assert "upper-case" in p.what and "'CP_1'" in p.found
    # host_prep will rename it: only a warning
    assert (
        "host_prep sets the hostname" in only(problems_of(facts, expected_hostname="cp1"), "hostname", data.WARNING).fix
    )
    assert "inventory host" in only(problems_of(facts, expected_hostname="Bad_Name"), "hostname").fix
    facts["hostname"] = "cp1"
    assert problems_of(facts, expected_hostname="cp1") == []


def test_node_ip_not_on_an_interface_and_names():
    facts = good_facts()
    p = only(problems_of(facts, node_ip="10.0.0.99"), "node_ip")
    assert "10.0.0.99" in p.found and "10.0.0.11" in p.found and "127.0.0.1" not in p.found
    p = only(problems_of(facts, node_ip="cp1.example", node_ip_addresses=["10.0.0.11"]), "node_ip")
    assert p.fix == "set smcp_node_ip to 10.0.0.11"
    assert problems_of(facts, node_ip="::1") == []
    assert problems_of(facts, node_ip="0:0:0:0:0:0:0:1") == []  # compared as addresses, not text
    p = only(problems_of(facts, node_ip="bad_name!"), "node_ip")
    assert p.what.startswith("node IP is neither an IP address nor a DNS name ('bad_name!' is not a DNS label")
    assert (p.found, p.need) == ("'bad_name!'", "an IP address on one of the node's interfaces")
    assert p.fix == "set smcp_node_ip (host_vars) to one of the local addresses: 10.0.0.11"


def holder(process: str, pid: int, address: str) -> dict:
    return {"process": process, "pid": pid, "address": address}


def test_ports_in_use_only_for_the_roles_ports():
    facts = good_facts()
    facts["port_conflicts"] = {
        "6443": [holder("haproxy", 812, "0.0.0.0:6443")],
        "2379": [holder("etcd", 90, "127.0.0.1:2379")],
    }
    problems = problems_of(facts, roles=["control_plane"])
    p = only(problems, "ports")
    assert "6443 (kube-apiserver)" in p.what and p.found == "haproxy[812] (0.0.0.0:6443)"
    assert len(problems_of(facts, roles=["control_plane", "etcd"])) == 2
    assert problems_of(facts, roles=["worker"]) == []
    facts["port_conflicts"] = {"9100": [holder("node_exporter", 5, ":::9100")]}
    only(problems_of(facts, roles=["worker"], extra_ports=[9100]), "ports")


def test_ports_held_by_own_components_are_expected_on_members_only():
    facts = good_facts()
    facts["port_conflicts"] = {
        "2379": [holder("etcd", 90, "10.0.0.11:2379")],
        "2380": [holder("etcd", 90, "10.0.0.11:2380")],
    }
    assert len(problems_of(facts, roles=["etcd"], cluster_name="prod")) == 2  # no marker: a foreign etcd
    facts["smcp_cluster"] = "prod"
    assert problems_of(facts, roles=["etcd"], cluster_name="prod") == []
    facts["port_conflicts"]["2379"].append(holder("haproxy", 7, "0.0.0.0:2379"))
    assert only(problems_of(facts, roles=["etcd"], cluster_name="prod"), "ports").found == "haproxy[7] (0.0.0.0:2379)"


def test_required_ports_table():
    assert checks.required_ports(["etcd"]) == [2379, 2380]
    assert checks.required_ports(["worker"]) == [10250, 10256]
    assert checks.required_ports(["control_plane"], [8080]) == [6443, 8080, 10250, 10256, 10257, 10259]


def test_pkg_lock_held():
    facts = good_facts()
    facts["pkg_locks"] = {"/var/lib/dpkg/lock-frontend": "unattended-upgr[733]"}
    p = only(problems_of(facts), "pkg_lock")
    assert "/var/lib/dpkg/lock-frontend by unattended-upgr[733]" in p.found


def test_existing_kubernetes_fails_runtime_warns():
    facts = good_facts()
    facts["existing"] = {"kubernetes": ["/etc/kubernetes/admin.conf"], "container_runtime": []}
    assert "admin.conf" in only(problems_of(facts), "existing_install").found
    facts["existing"] = {"kubernetes": [], "container_runtime": ["/usr/bin/dockerd"]}
    only(problems_of(facts), "existing_install", data.WARNING)


def test_existing_install_of_this_cluster_is_expected_another_cluster_fails():
    facts = good_facts()
    facts["existing"] = {"kubernetes": ["process etcd", "/var/lib/etcd/member"], "container_runtime": []}
    facts["smcp_cluster"] = "prod"
    assert problems_of(facts, cluster_name="prod") == []
    p = only(problems_of(facts, cluster_name="staging"), "existing_install")
    assert "another smcp cluster" in p.what and "'prod'" in p.found and "'staging'" in p.need
    facts["existing"]["kubernetes"] = []
    only(problems_of(facts, cluster_name="staging"), "existing_install")  # even a bare marker


def test_missing_facts_fail_closed():
    """A fact the module could not read never passes silently."""
    facts = good_facts()
    for key in ("cpus", "memory_mb", "arch"):
        broken = copy.deepcopy(facts)
        broken[key] = None
        assert {p.check for p in problems_of(broken)} == {"cpu" if key == "cpus" else key.replace("_mb", "")}


# ----------------------------------------------------------------- parsers

PROC_TCP = """\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:19EB 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1111 1 0 100 0 0 10 0
   1: 0100007F:0950 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 2222 1 0 100 0 0 10 0
   2: 0B00000A:E8E0 507100CB:0050 01 00000000:00000000 03:00000C95 00000000     0        0 0 3 0
"""
PROC_TCP6 = """\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when
   0: 00000000000000000000000000000000:2850 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 3333 1
   1: 0000000000000000FFFF00000B00000A:0016 00000000000000000000000000000000:0000 0A 0:0 00:0 0 0 0 4444 1
"""


def test_parse_listening_v4_v6():
    v4 = parsers.parse_listening(PROC_TCP)
    assert v4 == [
        {"address": "0.0.0.0", "port": 6635, "inode": "1111"},
        {"address": "127.0.0.1", "port": 2384, "inode": "2222"},
    ]
    v6 = parsers.parse_listening(PROC_TCP6, ipv6=True)
    assert v6[0] == {"address": "::", "port": 10320, "inode": "3333"}
    assert ipaddress.ip_address(v6[1]["address"]).ipv4_mapped == ipaddress.ip_address("10.0.0.11")
    assert v6[1]["port"] == 22


def test_parse_meminfo_and_swaps():
    mem = parsers.parse_meminfo("MemTotal:        2048000 kB\nMemFree: 100 kB\nSwapTotal:       1048576 kB\n")
    assert mem == {"mem_total_mb": 2000, "swap_total_mb": 1024}
    swaps = "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n/dev/vda2 partition 1 0 -3\n"
    assert parsers.parse_swaps(swaps) == ["/swapfile", "/dev/vda2"]
    assert parsers.parse_swaps("Filename\tType\tSize\tUsed\tPriority\n") == []


def test_parse_proc_cgroups():
    table = parsers.parse_proc_cgroups(
        "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t4\t27\t0\nnet_cls\t0\t1\t1\n"
    )
    assert table == {"cpu": (1, True), "memory": (4, False), "net_cls": (0, True)}


FIB_TRIE = """\
Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
     +-- 10.0.0.0/24 2 0 2
           |-- 10.0.0.0
              /24 link UNICAST
           |-- 10.0.0.11
              /32 host LOCAL
        |-- 10.0.0.255
           /32 link BROADCAST
Local:
  +-- 0.0.0.0/0 3 0 5
           |-- 10.0.0.11
              /32 host LOCAL
"""
ROUTE = """\
Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT
eth0\t00000000\t0100000A\t0003\t0\t0\t0\t00000000\t0\t0\t0
eth0\t0000000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0
eth1\t0000A8C0\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0
eth0\t000010AC\t0100000A\t0003\t0\t0\t0\t0000FFFF\t0\t0\t0
"""
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
fe8000000000000000fc00fffe000001 04 40 20 80     eth0
fd000000000000000000000000000002 04 40 00 82     eth0
"""


def test_parse_addresses_and_networks():
    assert parsers.parse_fib_trie(FIB_TRIE) == ["127.0.0.1", "10.0.0.11"]
    assert parsers.parse_route(ROUTE) == ["10.0.0.0/24", "192.168.0.0/16"]
    assert parsers.parse_if_inet6(IF_INET6) == ["::1/128", "fe80::fc:ff:fe00:1/64", "fd00::2/64"]


def test_kernel_module_available():
    dep = "kernel/fs/overlayfs/overlay.ko.xz:\nkernel/net/bridge/br_netfilter.ko: kernel/net/bridge/bridge.ko\n"
    assert parsers.kernel_module_available("", dep, "overlay")
    assert parsers.kernel_module_available("kernel/net/bridge/br_netfilter.ko\n", "", "br_netfilter")
    assert not parsers.kernel_module_available("kernel/net/bridge/bridge.ko\n", "", "br_netfilter")
    assert not parsers.kernel_module_available("", "", "overlay")


# -------------------------------------------------------- collect on a fake host


class FakeHost(pf_host.HostView):
    """A HostView over a directory tree, with the non-file facts fixed."""

    def __init__(self, root, locks=None, cpus=2, clock="synchronized"):
        super().__init__(str(root))
        self._locks = locks or {}
        self._cpus = cpus
        self._clock = clock

    def cpus(self):
        return self._cpus

    def machine(self):
        return "x86_64"

    def kernel_release(self):
        return "6.1.0-test"

    def clock_state(self):
        return self._clock

    def lock_holder(self, path):
        return self._locks.get(path)

    def disk(self, path):
        return {"free_mb": 20000, "dev": 7}


def write(root, path, text=""):
    target = root / path.lstrip("/")
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(textwrap.dedent(text))


@pytest.fixture
def fake_root(tmp_path):
    write(tmp_path, "/etc/os-release", 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n')
    write(tmp_path, "/proc/meminfo", "MemTotal:        4096000 kB\nSwapTotal:             0 kB\n")
    write(tmp_path, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n")
    write(tmp_path, "/proc/filesystems", "nodev\tsysfs\nnodev\toverlay\n\text4\n")
    write(tmp_path, "/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory hugetlb pids\n")
    write(tmp_path, "/proc/sys/net/bridge/bridge-nf-call-iptables", "1\n")
    write(tmp_path, "/proc/sys/net/ipv4/ip_forward", "1\n")
    write(tmp_path, "/proc/sys/kernel/hostname", "cp1\n")
    write(tmp_path, "/proc/net/fib_trie", FIB_TRIE)
    write(tmp_path, "/proc/net/route", ROUTE)
    write(tmp_path, "/proc/net/if_inet6", IF_INET6)
    write(tmp_path, "/proc/net/tcp", PROC_TCP)
    write(tmp_path, "/proc/net/tcp6", "  sl  local_address\n")
    write(tmp_path, "/proc/1/comm", "systemd\n")
    write(tmp_path, "/proc/200/comm", "chronyd\n")
    write(tmp_path, "/proc/201/comm", "systemd-timesyn\n")  # comm is cut at 15 characters
    return tmp_path


def test_collect_and_run_on_a_healthy_fake_host(fake_root):
    result = report.run_preflight(FakeHost(fake_root), settings(node_ip="10.0.0.11", expected_hostname="cp1"))
    assert result["failures"] == [] and result["warnings"] == []
    facts = result["facts"]
    assert facts["os"]["supported"] and facts["os"]["tested"]
    assert facts["memory_mb"] == 4000 and facts["cpus"] == 2
    assert facts["cgroup"] == {
        "version": 2,
        "hybrid": False,
        "controllers": ["cpu", "cpuset", "hugetlb", "io", "memory", "pids"],
    }
    assert facts["kernel"]["overlay"] and facts["kernel"]["br_netfilter"]
    assert facts["time_sync"]["daemons"] == ["chronyd", "systemd-timesyn"]
    assert "10.0.0.11" in facts["addresses"] and "fd00::2" in facts["addresses"]
    assert facts["networks"] == ["10.0.0.0/24", "192.168.0.0/16", "fd00::/64"]
    assert facts["listening_ports"] == [2384, 6635]
    assert set(result["checks"].values()) == {"ok"} and set(result["checks"]) == set(data.NODE_CHECK_IDS)
    assert result["node_name"] == "cp1" and result["roles"] == ["control_plane", "etcd", "worker"]


def test_collect_on_a_broken_fake_host(fake_root):
    """A fresh, wrongly set-up host: every problem shows up in one result."""
    write(fake_root, "/etc/os-release", 'ID=centos\nVERSION_ID="7"\n')
    write(fake_root, "/proc/meminfo", "MemTotal:        1024000 kB\nSwapTotal:       1048576 kB\n")
    write(fake_root, "/proc/swaps", "Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1048572 0 -2\n")
    write(fake_root, "/proc/filesystems", "nodev\tsysfs\n")
    (fake_root / "sys/fs/cgroup/cgroup.controllers").unlink()
    write(fake_root, "/proc/cgroups", "#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t0\t1\t0\n")
    (fake_root / "proc/sys/net/bridge/bridge-nf-call-iptables").unlink()
    (fake_root / "proc/sys/net/bridge").rmdir()
    write(fake_root, "/lib/modules/6.1.0-test/modules.dep", "kernel/net/bridge/br_netfilter.ko:\n")
    write(fake_root, "/proc/modules", "bridge 311296 0 - Live 0x0\n")  # br_netfilter loadable: a warning
    write(fake_root, "/usr/sbin/modprobe", "")
    write(fake_root, "/proc/sys/net/ipv4/ip_forward", "0\n")
    write(fake_root, "/proc/sys/kernel/hostname", "CP_1\n")
    write(fake_root, "/proc/200/comm", "kubelet\n")
    write(fake_root, "/proc/201/comm", "sshd\n")  # no time daemon: host_prep installs chrony
    write(fake_root, "/etc/kubernetes/admin.conf", "x")
    write(fake_root, "/usr/bin/containerd", "")
    write(fake_root, "/etc/smcp/cluster", "other\n")
    # a socket on 6635 held by pid 300
    write(fake_root, "/proc/300/comm", "haproxy\n")
    (fake_root / "proc/300/fd").mkdir(parents=True)
    os.symlink("socket:[1111]", fake_root / "proc/300/fd/3")
    host = FakeHost(fake_root, cpus=1, clock="unsynchronized", locks={"/var/lib/dpkg/lock-frontend": 0})
    result = report.run_preflight(
        host, settings(node_ip="10.9.9.9", extra_ports=[6635], roles=["control_plane"], cluster_name="prod")
    )
    failed = {item["id"] for item in result["failures"]}
    warned = {item["id"] for item in result["warnings"]}
    assert failed == {
        "os_supported",
        "cpu",
        "memory",
        "swap",
        "cgroup",
        "kernel_overlay",
        "hostname",
        "node_ip",
        "ports",
        "pkg_lock",
        "existing_install",
    }
    assert {"kernel_br_netfilter", "ip_forward", "time_sync", "cgroup", "existing_install"} <= warned
    ports = next(item for item in result["failures"] if item["id"] == "ports")
    assert "haproxy[300] (0.0.0.0:6635)" in ports["found"]
    assert result["facts"]["smcp_cluster"] == "other"
    assert result["facts"]["port_conflicts"] == {
        "6635": [{"process": "haproxy", "pid": 300, "address": "0.0.0.0:6635"}]
    }
    existing = next(item for item in result["failures"] if item["id"] == "existing_install")
    assert "cluster 'other'" in existing["found"]
    assert result["checks"]["time_sync"] == "warning" and result["checks"]["disk"] == "ok"
    assert all(item["msg"].startswith(f"[{item['id']}] ") for item in result["failures"])


def test_node_ip_given_as_a_name_is_resolved(fake_root):
    class Resolving(FakeHost):
        def resolve(self, name):
            return ["10.0.0.11"] if name == "cp1.lan" else []

    result = report.run_preflight(Resolving(fake_root), settings(node_ip="cp1.lan"))
    assert [item["id"] for item in result["failures"]] == ["node_ip"]
    assert result["failures"][0]["fix"] == "set smcp_node_ip to 10.0.0.11"


# ------------------------------------------------------- real host primitives


HOLD_LOCK = (
    "import fcntl, sys, time\n"
    "f = open(sys.argv[1], 'r+')\n"
    "fcntl.lockf(f, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "time.sleep(30)\n"
)


def test_lock_holder_sees_a_lock_held_by_another_process(tmp_path):
    lock = tmp_path / "lock-frontend"
    lock.write_text("")
    view = pf_host.HostView()
    assert view.lock_holder(str(lock)) is None
    assert view.lock_holder(str(tmp_path / "absent")) is None
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            HOLD_LOCK,
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        assert view.lock_holder(str(lock)) == holder.pid
    finally:
        holder.kill()
        holder.wait()
    assert view.lock_holder(str(lock)) is None
    assert not (tmp_path / "absent").exists()  # testing never creates a lock file


def test_real_host_view_reads_this_machine():
    view = pf_host.HostView()
    assert view.cpus() >= 1
    assert view.clock_state() in ("synchronized", "unsynchronized", "unknown")
    assert view.hostname()
    facts = pf_facts.collect(view, ["/"], [])
    assert facts["memory_mb"] > 0 and "/" in facts["disk"]
    assert fcntl.F_GETLK  # the lock test relies on it


# One failing scenario per node check id: guards that every id (including ones added later) has a failure path.
FAILING = {
    "os_supported": lambda f: f["os"].update(supported=False),
    "arch": lambda f: f.update(arch="s390x"),
    "cpu": lambda f: f.update(cpus=1),
    "memory": lambda f: f.update(memory_mb=900),
    "disk": lambda f: f["disk"]["/"].update(free_mb=10),
    "swap": lambda f: f["swap"].update(total_mb=512, devices=["/swap.img"]),
    "cgroup": lambda f: f["cgroup"].update(controllers=["cpu"]),
    "kernel_overlay": lambda f: f["kernel"].update(overlay=False, overlay_module=False),
    "kernel_br_netfilter": lambda f: f["kernel"].update(br_netfilter=False, br_netfilter_module=False),
    "kernel_modules": lambda f: f["kernel"].update(modules={"ip_vs": {"loaded": False, "available": False}}),
    "ip_forward": lambda f: f["kernel"].update(ip_forward=None),
    "time_sync": lambda f: f["time_sync"].update(state="unsynchronized"),
    "hostname": lambda f: f.update(hostname="My_Host"),
    "node_ip": lambda f: f.update(addresses=["127.0.0.1"]),
    "ports": lambda f: f.update(port_conflicts={"10250": [{"process": "nginx", "pid": 9, "address": "0.0.0.0:10250"}]}),
    "pkg_lock": lambda f: f.update(pkg_locks={"/var/lib/rpm/.rpm.lock": "dnf[77]"}),
    "existing_install": lambda f: f["existing"].update(kubernetes=["/usr/bin/kubelet"]),
}


def test_every_node_check_id_has_a_failure_scenario():
    assert set(FAILING) == set(data.NODE_CHECK_IDS)


@pytest.mark.parametrize("check", sorted(FAILING))
def test_failure_path_and_warn_only_downgrade(check):
    facts = good_facts()
    FAILING[check](facts)
    failed = problems_of(facts)
    assert {p.check for p in failed} == {check} and all(p.severity == data.FAILURE for p in failed)
    assert all(p.message("n1").startswith(f"n1: [{check}] ") and "; fix: " in p.message() for p in failed)
    downgraded = problems_of(good_facts_with(FAILING[check]), warn_only=[check])
    assert downgraded and all(p.severity == data.WARNING for p in downgraded)


def good_facts_with(mutate) -> dict:
    facts = good_facts()
    mutate(facts)
    return facts
