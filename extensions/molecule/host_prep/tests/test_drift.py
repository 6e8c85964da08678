"""A re-run repairs drift on a prepared host (the state probes must not hide it), then reports no change.

Runs prepare_hosts limited to mol-host-prep-1 (same settings in the sandbox inventory as in the
scenario: etcd + control plane, containerd from the package, firewall off).
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.sandbox


def _recap_changed(output: str, host: str) -> int:
    match = re.search(rf"^{re.escape(host)}\s+: ok=\d+\s+changed=(\d+)", output, re.MULTILINE)
    assert match, output
    return int(match.group(1))


def test_rerun_repairs_drift(get_host, prepare_hosts):
    host = get_host("mol-host-prep-1")
    sysctl_file = host.file("/etc/sysctl.d/90-smcp.conf").content_string
    drift = host.run(
        "sudo -n sh -c 'echo vm.swappiness = 60 >> /etc/sysctl.d/90-smcp.conf"
        " && sysctl -qw net.ipv4.ip_forward=0 && systemctl stop chrony && rm /etc/crictl.yaml"
        " && chmod 0600 /etc/containerd/config.toml'"
    )
    assert drift.rc == 0, drift.stderr

    repaired = prepare_hosts("--limit", "mol-host-prep-1")
    output = repaired.stdout + repaired.stderr
    assert repaired.returncode == 0, output
    assert _recap_changed(output, "mol-host-prep-1") > 0
    assert host.file("/etc/sysctl.d/90-smcp.conf").content_string == sysctl_file
    assert host.file("/proc/sys/net/ipv4/ip_forward").content_string.strip() == "1"
    assert host.service("chrony").is_running
    assert host.file("/etc/crictl.yaml").exists
    assert host.file("/etc/containerd/config.toml").mode == 0o644

    again = prepare_hosts("--limit", "mol-host-prep-1")
    output = again.stdout + again.stderr
    assert again.returncode == 0, output
    assert _recap_changed(output, "mol-host-prep-1") == 0
