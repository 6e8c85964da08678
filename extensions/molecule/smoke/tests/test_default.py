"""What a user of a sandbox host relies on after the smoke converge."""

from __future__ import annotations

import pytest

testinfra_hosts = ["all"]


def test_marker_file(host):
    marker = host.file("/etc/smcp-smoke")
    assert marker.is_file
    assert marker.mode == 0o644
    assert marker.content_string.startswith(f"smoke {host.backend.get_hostname()} ")


def test_package_from_the_apt_cache_and_service(host):
    assert host.package("cron").is_installed
    cron = host.service("cron")
    assert cron.is_running
    assert cron.is_enabled


def test_host_identity(host):
    assert host.check_output("hostname") == host.backend.get_hostname()
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
    cmd = host.run(f"timeout 3 bash -c 'echo > /dev/tcp/{target}'")
    assert cmd.rc != 0
