"""What a user relies on after the smoke converge (preflight + host_prep on a sandbox host).

Every check needs the host to answer: a command is run and its own output checked, so a connection
failure fails the test instead of passing as a "refused" result.
"""

from __future__ import annotations

import re

import pytest

testinfra_hosts = ["all"]


def test_the_host_answers(host):
    # The probe prints what only the host knows; a failed connection has no such output.
    assert host.check_output("cat /etc/hostname") == host.backend.get_hostname()


def test_prepared_packages_from_the_apt_cache_and_time_sync(host):
    for package in ("chrony", "conntrack", "socat"):
        assert host.package(package).is_installed, package
    chrony = host.service("chrony")
    assert chrony.is_running and chrony.is_enabled


def test_kernel_settings_persisted_and_network_ones_live(host):
    persisted = host.file("/etc/sysctl.d/90-smcp.conf").content_string
    assert re.search(r"^net\.ipv4\.ip_forward\s*=\s*1$", persisted, re.MULTILINE), persisted
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"
    assert {"overlay", "br_netfilter"} <= set(host.file("/etc/modules-load.d/90-smcp.conf").content_string.split())


def test_swap_kept_off_across_reboots(host):
    assert host.run("systemctl is-enabled swap.target").stdout.strip() == "masked"


def test_cluster_marker_and_name(host):
    assert host.file("/etc/smcp/cluster").content_string == "smcp\n"
    name = host.backend.get_hostname()
    assert host.check_output("hostname") == name
    assert re.search(rf"^\S+\s+{re.escape(name)}\b", host.file("/etc/hosts").content_string, re.MULTILINE)


def test_host_identity(host):
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert len(machine_id) == 32
    assert host.check_output("systemctl is-system-running || true") in ("running", "degraded")


def test_sudo_and_python(host):
    assert host.user().name == "smcp"
    assert host.check_output("sudo -n id -u") == "0"
    assert host.exists("python3")


def test_apt_goes_through_the_sandbox_gateway(host):
    proxy = host.file("/etc/apt/apt.conf.d/01smcp-proxy").content_string
    gateway = host.check_output("ip -4 route show dev eth0 scope link").split()[0].rsplit(".", 1)[0]
    assert f"http://{gateway}." in proxy


@pytest.mark.parametrize("target", ["192.0.2.1/80", "203.0.113.80/80", "1.1.1.1/443"])
def test_no_egress(host, target):
    # The probe's own exit code, printed by the host: only a probe that ran and failed counts as no egress.
    out = host.check_output(f"timeout 3 bash -c 'echo > /dev/tcp/{target}' 2>/dev/null; echo probe-rc=$?")
    match = re.search(r"probe-rc=(\d+)", out)
    assert match, out
    assert match.group(1) != "0", f"{target} is reachable from the sandbox host"
    # Refused/unreachable (1) or no answer within the probe's 3 s (124), not a probe that could not run.
    assert match.group(1) in ("1", "124"), out
