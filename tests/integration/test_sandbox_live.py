"""Real sandbox hosts: 2 hosts up, Ansible with host-key checking, identity, egress guard, apt, no-op, down.

Needs root, podman and the host packages of `make setup`; run with `pytest -m sandbox tests/integration`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
from pathlib import Path

import pytest
from smcp_api.sandbox import aptcache, guard
from smcp_api.sandbox.system import lock_path, podman_env

from tests.sandbox_ssh import ssh_argv

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = [str(ROOT / ".venv" / "bin" / "smcpctl")]


def _run(*cmd: str, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, env=env, timeout=600)


def _podman(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run("podman", *args, check=check, env=podman_env())


@pytest.fixture(scope="module")
def box():
    name = f"it-{secrets.token_hex(3)}"
    up = _run(*SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", name, "--json")
    info = json.loads(up.stdout)
    try:
        yield info
    finally:
        _run(*SMCPCTL, "sandbox", "down", "--name", name, check=False)


def _ssh(info: dict, host: dict, command: str, known_hosts: str | None = None) -> subprocess.CompletedProcess[str]:
    return _run(
        *ssh_argv(host, known_hosts=known_hosts),
        command,
        check=False,
    )


def test_ansible_ping_with_host_key_checking(box):
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_HOST_KEY_CHECKING="True")
    ping = _run("ansible", "-i", box["inventory"], "all", "-m", "ansible.builtin.ping", check=False, env=env)
    assert ping.returncode == 0, ping.stdout + ping.stderr
    assert ping.stdout.count("SUCCESS") == 2
    inventory = Path(box["inventory"]).read_text()
    assert "StrictHostKeyChecking=yes" in inventory


def test_unknown_host_key_is_refused(box, tmp_path):
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    refused = _ssh(box, box["hosts"][0], "true", known_hosts=str(empty))
    assert refused.returncode != 0
    assert "Host key verification failed" in refused.stderr


def test_hosts_have_their_own_identity(box):
    ids, keys = set(), set()
    known = Path(box["known_hosts"]).read_text().splitlines()
    for host in box["hosts"]:
        out = _ssh(box, host, "cat /etc/machine-id; hostname; cat /etc/ssh/ssh_host_ed25519_key.pub; sudo -n id -u")
        assert out.returncode == 0, out.stderr
        machine_id, hostname, pubkey, uid = out.stdout.splitlines()
        assert hostname == host["name"]
        assert uid == "0"
        assert len(machine_id) == 32
        ids.add(machine_id)
        keys.add(pubkey.split()[1])
        assert f"{host['name']},{host['ip']} {' '.join(pubkey.split()[:2])}" in known
    assert len(ids) == 2
    assert len(keys) == 2
    assert oct(Path(box["key"]).stat().st_mode & 0o777) == "0o600"


def test_apt_works_through_the_cache(box):
    out = _ssh(box, box["hosts"][1], "sudo -n apt-get update -qq && apt-cache policy cron | head -3")
    assert out.returncode == 0, out.stderr
    assert "Candidate:" in out.stdout


def _drops(bridge_rule: str) -> int:
    listing = _run("nft", "list", "chain", "inet", guard.TABLE, "forward").stdout
    line = next(x for x in listing.splitlines() if bridge_rule in x)
    return int(line.split("packets")[1].split()[0])


def test_egress_is_dropped_even_with_forwarding_on(box):
    """With a default route and forwarding on the bridge, only the guard stands between a host and the outside."""
    host = box["hosts"][0]
    sysctl = Path(f"/proc/sys/net/ipv4/conf/{box['bridge']}/forwarding")
    before_sysctl = sysctl.read_text()
    before = _drops("iifname @bridges")
    sysctl.write_text("1\n")
    try:
        # root inside the host (podman exec): sudo would try to resolve the host name over the new route
        _podman("exec", host["container"], "ip", "route", "replace", "default", "via", box["gateway"])
        for target in ("192.0.2.1/80", "203.0.113.80/80"):
            out = _ssh(box, host, f"timeout 3 bash -c 'echo > /dev/tcp/{target}'")
            assert out.returncode != 0, f"{host['name']} reached {target}"
    finally:
        sysctl.write_text(before_sysctl)
        _podman("exec", host["container"], "ip", "route", "del", "default", check=False)
    assert _drops("iifname @bridges") > before


def test_cache_port_is_closed_to_outside_interfaces(box):
    rules = _run("nft", "list", "chain", "inet", guard.TABLE, "input").stdout
    assert 'tcp dport 3142 iifname "lo" accept' in rules
    assert "tcp dport 3142 iifname @bridges accept" in rules
    assert "tcp dport 3142 counter packets" in rules
    bridges = _run("nft", "list", "set", "inet", guard.TABLE, "bridges").stdout
    assert f'"{box["bridge"]}"' in bridges


def test_second_up_is_a_no_op(box):
    started = _podman("inspect", "--format", "{{.State.StartedAt}}", box["hosts"][0]["container"]).stdout
    again = _run(*SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", box["name"])
    assert "already up" in again.stderr
    assert again.stdout.strip() == box["inventory"]
    assert _podman("inspect", "--format", "{{.State.StartedAt}}", box["hosts"][0]["container"]).stdout == started


def _ids(box) -> list[str]:
    return [_podman("inspect", "--format", "{{.Id}}", h["container"]).stdout.strip() for h in box["hosts"]]


def test_up_recovers_a_stopped_host(box):
    before = _ids(box)
    _podman("stop", "--time", "0", box["hosts"][1]["container"])
    again = _run(*SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", box["name"], "--json")
    assert json.loads(again.stdout)["already_up"] is False
    assert _ssh(box, box["hosts"][1], "true").returncode == 0
    assert _ids(box) == before  # restarted in place, the running host untouched


def test_down_leaves_nothing(box):
    _run(*SMCPCTL, "sandbox", "down", "--name", box["name"])
    assert _podman("ps", "-a", "--filter", f"label=smcp.sandbox={box['name']}", "--format", "{{.Names}}").stdout == ""
    assert _podman("network", "exists", box["network"], check=False).returncode != 0
    assert not Path(box["directory"]).exists()
    assert not lock_path(f"sandbox-{box['name']}").exists()
    if guard.exists():
        assert f'"{box["bridge"]}"' not in _run("nft", "list", "set", "inet", guard.TABLE, "bridges").stdout
    others = _run(*SMCPCTL, "sandbox", "status", "--json").stdout
    if json.loads(others) == []:
        assert not guard.exists()
        assert aptcache.running_pid() is None
