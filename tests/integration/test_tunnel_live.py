"""Reverse SSH tunnel on real sandbox hosts: A = management host, B = a host that accepts no inbound connection.

B's own network namespace drops every new inbound connection (nftables inside B's netns, never the
machine's), so the tunnel role is applied to B over podman's exec channel (as a console or cloud-init
would), the management side over SSH. Then Ansible reaches B only through A, a direct connection to B
fails, the key cannot do anything but its own forward, and killing the tunnel's ssh reconnects by itself.

Run with `flock /tmp/smcp-heavy.lock pytest -m sandbox tests/integration/test_tunnel_live.py`.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from smcp_api.sandbox.system import podman_env

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
NAME = "ops-tun"
PORT = 2222
# Inside B's network namespace only: loopback and replies pass, every new inbound connection is dropped.
NAT_RULESET = """
table inet smcp_nat_test {
  chain input {
    type filter hook input priority 0; policy accept;
    iif "lo" accept
    ct state established,related accept
    ct state new drop
  }
}
"""


def _run(*cmd: str, check: bool = True, env: dict[str, str] | None = None, input_text: str | None = None):
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, check=False, env=env, input=input_text, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


def _ansible_env() -> dict[str, str]:
    env = podman_env()
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        # A fresh SSH connection every time: a reused master would hide a broken tunnel.
        ANSIBLE_SSH_ARGS="-o ControlMaster=no -o ControlPath=none",
    )
    return env


@pytest.fixture(scope="module")
def nat(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tunnel")
    info = json.loads(_run(SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", NAME, "--json").stdout)
    try:
        mgmt, hidden = info["hosts"]
        pid = _run("podman", "inspect", "-f", "{{.State.Pid}}", hidden["container"], env=podman_env()).stdout.strip()
        _run("nsenter", "-t", pid, "-n", "nft", "-f", "-", input_text=NAT_RULESET)
        common = {
            "ansible_user": info["user"],
            "ansible_ssh_private_key_file": info["key"],
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_ssh_common_args": f"-o UserKnownHostsFile={info['known_hosts']} -o StrictHostKeyChecking=yes "
            "-o IdentitiesOnly=yes",
            "smcp_sandbox": True,
        }
        setup = {
            "all": {
                "vars": common,
                "children": {
                    "mgmt": {"hosts": {mgmt["name"]: {"ansible_host": mgmt["ip"]}}},
                    "tunnel": {
                        "hosts": {
                            hidden["name"]: {
                                "ansible_connection": "containers.podman.podman",
                                "ansible_host": hidden["container"],
                                "ansible_user": "root",
                                "smcp_node_ip": hidden["ip"],
                                "tunnel_remote_port": PORT,
                            }
                        }
                    },
                },
            }
        }
        setup_inv = tmp / "setup.yml"
        setup_inv.write_text(yaml.safe_dump(setup))
        # What an inventory (or an API host record) holds for B: loopback port on A, reached through A,
        # B's own host key checked under B's address (HostKeyAlias), B's node IP kept for the cluster.
        proxy = (
            f"ssh -i {info['key']} -o UserKnownHostsFile={info['known_hosts']} -o StrictHostKeyChecking=yes "
            f"-o BatchMode=yes -W %h:%p {mgmt['user']}@{mgmt['ip']}"
        )
        via = {
            "all": {
                "hosts": {
                    hidden["name"]: {
                        "ansible_host": "localhost",
                        "ansible_port": PORT,
                        "smcp_node_ip": hidden["ip"],
                        "ansible_ssh_common_args": f"{common['ansible_ssh_common_args']} "
                        f'-o HostKeyAlias={hidden["ip"]} -o ProxyCommand="{proxy}"',
                        **{k: v for k, v in common.items() if k != "ansible_ssh_common_args"},
                    }
                }
            }
        }
        via_inv = tmp / "via.yml"
        via_inv.write_text(yaml.safe_dump(via))
        first = _run(
            str(ROOT / ".venv/bin/ansible-playbook"),
            "-i",
            str(setup_inv),
            str(ROOT / "playbooks/tunnel.yml"),
            env=_ansible_env(),
        )
        yield {"info": info, "mgmt": mgmt, "hidden": hidden, "setup": setup_inv, "via": via_inv, "first": first}
    finally:
        _run(SMCPCTL, "sandbox", "down", "--name", NAME, check=False)


def _via_tunnel(nat, command: str = "hostname"):
    return _run(
        str(ROOT / ".venv/bin/ansible"),
        "-i",
        str(nat["via"]),
        nat["hidden"]["name"],
        "-m",
        "ansible.builtin.command",
        "-a",
        command,
        check=False,
        env=_ansible_env(),
    )


def _in_hidden(nat, *cmd: str, check: bool = True):
    return _run("podman", "exec", nat["hidden"]["container"], *cmd, check=check, env=podman_env())


def test_direct_connection_to_hidden_host_fails(nat):
    info, hidden = nat["info"], nat["hidden"]
    direct = _run(
        "ssh",
        "-i",
        info["key"],
        "-o",
        f"UserKnownHostsFile={info['known_hosts']}",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "ControlPath=none",
        f"{hidden['user']}@{hidden['ip']}",
        "true",
        check=False,
    )
    assert direct.returncode == 255
    assert "timed out" in direct.stderr


def test_ansible_reaches_hidden_host_through_the_tunnel(nat):
    reached = _via_tunnel(nat)
    assert reached.returncode == 0, reached.stdout + reached.stderr
    assert nat["hidden"]["name"] in reached.stdout
    assert "failed=0" in nat["first"].stdout


def test_tunnel_key_only_forwards_its_own_port(nat):
    mgmt = nat["mgmt"]
    key = ["-i", "/etc/smcp/tunnel/id_ed25519", "-o", "UserKnownHostsFile=/etc/smcp/tunnel/known_hosts"]
    key += ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    shell = _in_hidden(nat, "ssh", *key, f"smcp-tunnel@{mgmt['ip']}", "id", check=False)
    assert "uid=" not in shell.stdout, "the tunnel key must not run commands"
    other = _in_hidden(
        nat,
        "timeout",
        "20",
        "ssh",
        *key,
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-R",
        f"localhost:{PORT + 1}:localhost:22",
        f"smcp-tunnel@{mgmt['ip']}",
        check=False,
    )
    assert other.returncode == 255, other.stderr
    assert "remote port forwarding failed" in other.stderr


def test_second_run_changes_nothing(nat):
    again = _run(
        str(ROOT / ".venv/bin/ansible-playbook"),
        "-i",
        str(nat["setup"]),
        str(ROOT / "playbooks/tunnel.yml"),
        env=_ansible_env(),
    )
    recap = [line for line in again.stdout.splitlines() if nat["hidden"]["name"] + " " in line and "ok=" in line]
    assert recap and "changed=0" in recap[-1] and "failed=0" in recap[-1], again.stdout[-2000:]


def test_tunnel_reconnects_after_its_ssh_is_killed(nat):
    before = _in_hidden(nat, "pgrep", "-x", "ssh").stdout.split()
    assert len(before) == 1, before
    _in_hidden(nat, "kill", "-9", before[0])
    started = time.monotonic()
    deadline = started + 120
    reached = _via_tunnel(nat)
    while reached.returncode != 0 and time.monotonic() < deadline:
        time.sleep(1)
        reached = _via_tunnel(nat)
    assert reached.returncode == 0, reached.stderr
    after = _in_hidden(nat, "pgrep", "-x", "ssh").stdout.split()
    assert after and after != before, "a new ssh process carries the tunnel"
    print(f"tunnel back after {time.monotonic() - started:.1f} s (ssh pid {before[0]} -> {after[0]})")
