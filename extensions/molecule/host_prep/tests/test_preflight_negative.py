"""prepare_hosts must stop in preflight, before changing anything, with the expected messages.

Runs ansible-playbook against this scenario's sandbox hosts with bad settings. "Swap back on" is
simulated inside one host by bind-mounting a fake /proc/swaps in that host's own mount namespace:
the machine's swap is never touched.
"""

from __future__ import annotations

import subprocess

import pytest

pytestmark = pytest.mark.sandbox


def _assert_stopped_in_preflight(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "preflight failed" in output, output
    assert "no host was changed" in output, output
    for text in expected:
        assert text in output, output
    # Nothing after preflight ran: no host_prep or containerd task in the log.
    assert "smcp.platform.host_prep :" not in output
    assert "smcp.platform.containerd :" not in output


def test_swap_back_on(swap_on, prepare_hosts):
    assert "/dev/sdz9" in swap_on.file("/proc/swaps").content_string
    result = prepare_hosts()
    _assert_stopped_in_preflight(
        result, "mol-host-prep-1: [swap] swap is on (sandbox host: this is the machine's swap, shared by its kernel)"
    )


def test_duplicate_hostname(prepare_hosts):
    result = prepare_hosts("-e", "host_prep_hostname=same-name")
    _assert_stopped_in_preflight(
        result,
        "[duplicate_hostname] node name same-name is used by several hosts",
        "(found mol-host-prep-1, mol-host-prep-2, mol-host-prep-3, need one host)",
    )


def test_overlapping_cidrs(prepare_hosts):
    result = prepare_hosts("-e", "smcp_pod_cidr=10.96.0.0/16")
    _assert_stopped_in_preflight(
        result,
        "[cidr_overlap] smcp_pod_cidr overlaps smcp_service_cidr 10.96.0.0/12 (found 10.96.0.0/16, "
        "need disjoint networks)",
    )


def test_memory_minimum_not_met(prepare_hosts):
    result = prepare_hosts("-e", '{"preflight_min_memory_mb": {"control_plane": 9000000, "etcd": 9000000}}')
    _assert_stopped_in_preflight(
        result, "mol-host-prep-2: [memory] too little memory for role control_plane", "need at least 9000000 MiB"
    )
