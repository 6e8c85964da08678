"""host_prep turns swap off when the host has it on, and leaves a host without swap alone.

A sandbox host shares the machine's kernel, so no real swap can be turned on or off there: swap is made to
look on inside one host (a fake /proc/swaps in its own mount namespace, fixture swap_on) and the role's
decision is checked from its output (on a sandbox host it reports the swapoff it would run; elsewhere it runs
`swapoff -a`). The machine's swap is never touched.
"""

from __future__ import annotations

import re

import pytest

pytestmark = pytest.mark.sandbox

TASK = "smcp.platform.host_prep : Turn swap off now"
# Where the state probe finds nothing to do, the converge phases (the swap task among them) are skipped in one step.
CONVERGE = "smcp.platform.host_prep : Bring the host to the wanted state (packages, kernel, time, identity, firewall)"


def _task_status(output: str, task: str, host: str) -> str | None:
    """The status line of a task for one host (`changed: [host]`, `ok: [host]`, ...); None if it did not start."""
    block = output.split(f"TASK [{task}]", 1)
    if len(block) != 2:
        return None
    section = block[1].split("TASK [", 1)[0]
    match = re.search(rf"^(\w+): \[{re.escape(host)}\].*$", section, re.MULTILINE)
    assert match, section
    return section[match.start() :]


def _swap_task(output: str, host: str) -> str:
    status = _task_status(output, TASK, host)
    assert status is not None, output[-3000:]
    return status


def _kernel_phase(prepare_hosts):
    # Only host_prep's kernel phase on the one host (preflight, which would refuse a host with swap on, is
    # not run: this checks host_prep's own decision).
    result = prepare_hosts("--limit", "mol-host-prep-1", "--tags", "host_prep_kernel", "-v")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return result.stdout


def test_swap_on_is_turned_off(swap_on, prepare_hosts):
    assert "/dev/sdz9" in swap_on.file("/proc/swaps").content_string
    status = _swap_task(_kernel_phase(prepare_hosts), "mol-host-prep-1")
    assert status.startswith("changed: [mol-host-prep-1]"), status
    assert "swap-turned-off" in status
    assert "sandbox host: swapoff -a not run" in status  # the decision, without acting on the machine's kernel


def test_no_swap_is_left_alone(get_host, prepare_hosts):
    assert get_host("mol-host-prep-1").file("/proc/swaps").content_string.splitlines()[1:] == []
    output = _kernel_phase(prepare_hosts)
    # The state probe read /proc/swaps: without swap, no swapoff command is run at all. On the converged
    # host nothing else differs either, so the converge phases are skipped as a whole.
    status = _task_status(output, TASK, "mol-host-prep-1")
    if status is None:
        status = _task_status(output, CONVERGE, "mol-host-prep-1")
        assert status is not None, output[-3000:]
    assert status.startswith("skipping: [mol-host-prep-1]"), status
    assert "swap-turned-off" not in status.split("\n", 1)[0]
