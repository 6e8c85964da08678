"""Shared helpers for the host_prep scenario's verify tests."""

from __future__ import annotations

import os
import pathlib
import subprocess

import pytest
import testinfra

ROOT = pathlib.Path(__file__).resolve().parents[4]
# The inventory `smcpctl sandbox up` wrote for this scenario's sandbox (its own known_hosts and key).
SANDBOX_INVENTORY = pathlib.Path("/var/lib/smcp/sandbox/mol-host-prep/inventory.yml")
# "Swap on" inside one host: a fake /proc/swaps bind-mounted in that host's own mount namespace (the machine's
# swap is never touched; a sandbox host shares the machine's kernel, so swapon there would act on the machine).
FAKE_SWAPS = "Filename\tType\tSize\tUsed\tPriority\n/dev/sdz9 partition\t4194300\t0\t-2\n"


@pytest.fixture(scope="session")
def inventory(request: pytest.FixtureRequest) -> str:
    """The molecule inventory the verifier was started with."""
    return str(request.config.option.ansible_inventory)


@pytest.fixture(scope="session")
def get_host(inventory: str):
    """Return a testinfra host for an inventory name (for checks that involve two hosts)."""

    def _get(name: str):
        return testinfra.get_host(f"ansible://{name}", ansible_inventory=inventory)

    return _get


@pytest.fixture(scope="session")
def prepare_hosts():
    """Run smcp.platform.prepare_hosts against the scenario's sandbox hosts with extra arguments."""

    def _run(*extra_args: str) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ,
            ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
            ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
            ANSIBLE_FORCE_COLOR="0",
            ANSIBLE_NOCOLOR="1",
        )
        env.pop("ANSIBLE_CALLBACKS_ENABLED", None)
        return subprocess.run(
            ["ansible-playbook", "-i", str(SANDBOX_INVENTORY), "smcp.platform.prepare_hosts", *extra_args],
            capture_output=True,
            text=True,
            env=env,
            timeout=600,
            check=False,
        )

    return _run


@pytest.fixture
def swap_on(get_host):
    """Make /proc/swaps of mol-host-prep-1 (only) list an active swap partition."""
    host = get_host("mol-host-prep-1")
    host.run(f"printf '{FAKE_SWAPS}' > /tmp/smcp-fake-swaps")
    mounted = host.run("sudo -n mount --bind /tmp/smcp-fake-swaps /proc/swaps")
    assert mounted.rc == 0, mounted.stderr
    yield host
    host.run("sudo -n umount /proc/swaps")
    assert host.file("/proc/swaps").content_string.splitlines()[1:] == []
