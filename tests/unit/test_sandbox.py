"""Sandbox logic without podman: validation, subnets, inventory, image recipe, guard rules, CLI errors."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time

import pytest
import yaml
from click.testing import CliRunner
from smcp_api.cli import sandbox as cli
from smcp_api.sandbox import aptcache, guard, image, model, system
from smcp_api.sandbox.model import SandboxError, SandboxInfo


def _info(count: int, name: str = "demo", subnet: str = "10.213.4.0/24") -> SandboxInfo:
    gateway, hosts = model.layout(name, count, ipaddress.IPv4Network(subnet))
    return SandboxInfo(
        name=name,
        hosts=hosts,
        subnet=subnet,
        gateway=gateway,
        network=model.network_name(name),
        directory=f"/var/lib/smcp/sandbox/{name}",
        bridge="podman7",
    )


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize("name", ["default", "a", "mol-smoke", "x1-2", "abcdefghij0123456789"])
def test_good_names(name):
    assert model.validate_name(name) == name


@pytest.mark.parametrize("name", ["", "Demo", "1abc", "-a", "a-", "a_b", "a.b", "abcdefghij01234567890", "a b"])
def test_bad_names(name):
    with pytest.raises(SandboxError, match="bad sandbox name"):
        model.validate_name(name)


@pytest.mark.parametrize("count", [1, 2, 64])
def test_host_counts_in_range(count):
    assert model.validate_hosts(count) == count


@pytest.mark.parametrize("count", [0, -1, 65, 1000])
def test_host_counts_out_of_range(count):
    with pytest.raises(SandboxError, match=r"out of range: use a number from 1 to 64"):
        model.validate_hosts(count)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nonsense", "bad --subnet"),
        ("10.213.0.1/24", "host bits set"),
        ("fd00::/64", "only IPv4"),
        ("8.8.8.0/24", "private range"),
        ("10.213.0.0/30", "too small"),
    ],
)
def test_bad_subnets(text, message):
    with pytest.raises(SandboxError, match=message):
        model.parse_subnet(text, 3)


def test_subnet_must_hold_gateway_and_hosts():
    assert model.parse_subnet("10.213.9.0/29", 5) == ipaddress.IPv4Network("10.213.9.0/29")
    with pytest.raises(SandboxError, match="too small"):
        model.parse_subnet("10.213.9.0/29", 6)


# ---------------------------------------------------------------- subnet allocation


def test_allocation_takes_the_first_free_24():
    assert model.allocate_subnet([]) == ipaddress.IPv4Network("10.213.0.0/24")


def test_allocation_skips_every_used_network():
    used = [
        ipaddress.IPv4Network("10.213.0.0/24"),  # another sandbox
        ipaddress.IPv4Network("10.213.1.128/25"),  # a route that covers half a /24
        ipaddress.IPv4Network("10.213.2.7/32"),  # an address on the machine
        ipaddress.IPv4Network("192.0.2.0/24"),  # unrelated
    ]
    assert model.allocate_subnet(used) == ipaddress.IPv4Network("10.213.3.0/24")


def test_allocation_fails_when_the_pool_is_covered():
    with pytest.raises(SandboxError, match="no free /24 left"):
        model.allocate_subnet([ipaddress.IPv4Network("10.0.0.0/8")])


def test_used_networks_reads_podman_and_cni_configs():
    seen: list[str] = []
    system.add_from_json({"plugins": [{"ipam": {"ranges": [[{"subnet": "10.88.0.0/16"}]]}}]}, seen.append)
    system.add_from_json({"subnets": [{"subnet": "10.89.1.0/24", "gateway": "10.89.1.1"}]}, seen.append)
    assert seen == ["10.88.0.0/16", "10.89.1.0/24"]


# ---------------------------------------------------------------- layout and inventory


def test_layout_puts_gateway_first_then_hosts_in_order():
    gateway, hosts = model.layout("demo", 3, ipaddress.IPv4Network("10.213.4.0/24"))
    assert gateway == "10.213.4.1"
    assert [(h.name, h.ip, h.container) for h in hosts] == [
        ("demo-1", "10.213.4.2", "smcp-sb-demo-1"),
        ("demo-2", "10.213.4.3", "smcp-sb-demo-2"),
        ("demo-3", "10.213.4.4", "smcp-sb-demo-3"),
    ]


@pytest.mark.parametrize(
    ("count", "control", "workers"),
    [
        (1, ["demo-1"], ["demo-1"]),
        (2, ["demo-1"], ["demo-2"]),
        (3, ["demo-1", "demo-2", "demo-3"], []),
        (5, ["demo-1", "demo-2", "demo-3"], ["demo-4", "demo-5"]),
    ],
)
def test_inventory_groups(count, control, workers):
    inv = yaml.safe_load(model.inventory_yaml(_info(count)))["all"]
    children = inv["children"]
    assert sorted(children["etcd"]["hosts"]) == control
    assert sorted(children["control_plane"]["hosts"]) == control
    assert sorted((children.get("workers") or {"hosts": {}})["hosts"]) == workers
    assert len(inv["hosts"]) == count


def test_inventory_keeps_host_key_checking_on():
    info = _info(2)
    inv = yaml.safe_load(model.inventory_yaml(info))["all"]
    assert inv["vars"]["ansible_user"] == "smcp"
    assert inv["vars"]["ansible_ssh_private_key_file"] == "/var/lib/smcp/sandbox/demo/id_ed25519"
    args = inv["vars"]["ansible_ssh_common_args"]
    assert "-o UserKnownHostsFile=/var/lib/smcp/sandbox/demo/known_hosts" in args
    assert "-o StrictHostKeyChecking=yes" in args
    assert inv["vars"]["ansible_python_interpreter"] == "/usr/bin/python3"
    assert inv["vars"]["smcp_sandbox"] is True
    assert inv["hosts"]["demo-2"] == {"ansible_host": "10.213.4.3", "smcp_node_ip": "10.213.4.3"}


def test_inventory_is_accepted_by_ansible_inventory(tmp_path):
    path = tmp_path / "inventory.yml"
    path.write_text(model.inventory_yaml(_info(4)))
    out = subprocess.run(
        ["ansible-inventory", "-i", str(path), "--list"], capture_output=True, text=True, check=True
    ).stdout
    data = json.loads(out)
    assert data["workers"]["hosts"] == ["demo-4"]
    assert data["_meta"]["hostvars"]["demo-1"]["smcp_node_ip"] == "10.213.4.2"


def test_known_hosts_lines_name_and_address():
    info = _info(2)
    text = model.known_hosts_text(info.hosts, {"demo-1": "ssh-ed25519 AAAA1 root@demo-1", "demo-2": "ssh-ed25519 B2"})
    assert text == "demo-1,10.213.4.2 ssh-ed25519 AAAA1\ndemo-2,10.213.4.3 ssh-ed25519 B2\n"


def test_json_form_lists_what_molecule_needs():
    data = _info(2).to_json()
    assert data["hosts"][0] == {
        "name": "demo-1",
        "ip": "10.213.4.2",
        "container": "smcp-sb-demo-1",
        "user": "smcp",
        "port": 22,
        "key": "/var/lib/smcp/sandbox/demo/id_ed25519",
        "known_hosts": "/var/lib/smcp/sandbox/demo/known_hosts",
    }
    assert data["inventory"] == "/var/lib/smcp/sandbox/demo/inventory.yml"


def test_state_round_trip():
    info = _info(3)
    info.image = "localhost/smcp-sandbox:abc"
    again = SandboxInfo.from_state(json.loads(json.dumps(info.to_state())))
    assert again == info


# ---------------------------------------------------------------- image recipe


def test_recipe_hash_is_stable_and_follows_the_recipe():
    base = image.recipe()
    assert image.recipe_hash(base) == image.recipe_hash(image.recipe())
    changed = dict(base, packages=[*image.PACKAGES, "curl"])
    assert image.recipe_hash(changed) != image.recipe_hash(base)
    script = dict(base, script=image.SETUP_SCRIPT + "true\n")
    assert image.recipe_hash(script) != image.recipe_hash(base)
    assert image.image_ref().endswith(":" + image.recipe_hash()[:12])


def test_recipe_has_what_hosts_need():
    assert {"systemd", "openssh-server", "python3", "sudo", "iproute2", "ca-certificates"} <= set(image.PACKAGES)
    assert ": > /etc/machine-id" in image.SETUP_SCRIPT
    assert "NOPASSWD:ALL" in image.SETUP_SCRIPT
    assert "getty@.service" in image.SETUP_SCRIPT
    assert "rm -f /etc/ssh/ssh_host_*" in image.SETUP_SCRIPT


# ---------------------------------------------------------------- egress guard


def test_guard_ruleset_lists_bridges_and_subnets():
    rules = guard.ruleset([_info(2), _info(1, name="other", subnet="172.30.5.0/24")])
    assert 'elements = { "podman7" }' in rules
    assert "10.213.0.0/16, 172.30.5.0/24" in rules
    assert "iifname . oifname @same_bridge accept" in rules
    assert "tcp dport 3142 counter drop" in rules
    assert rules.startswith("table inet smcp_sandbox\ndelete table inet smcp_sandbox\n")


def test_guard_set_update_keeps_rules_and_replaces_elements():
    script = guard.set_update([_info(2)])
    assert "flush set inet smcp_sandbox bridges" in script
    assert 'add element inet smcp_sandbox same_bridge { "podman7" . "podman7" }' in script
    assert "chain" not in script
    assert guard.VERSION in guard.ruleset([])


def test_guard_ruleset_parses_with_nft():
    nft = subprocess.run(["nft", "--version"], capture_output=True, check=False)
    if nft.returncode != 0:
        pytest.fail("nft is a host package of `make setup`")
    check = subprocess.run(["nft", "-c", "-f", "-"], input=guard.ruleset([_info(2)]), text=True, capture_output=True)
    # `nft -c` needs CAP_NET_ADMIN; as non-root only the parser error kind matters.
    assert check.returncode == 0 or "Operation not permitted" in check.stderr


# ---------------------------------------------------------------- CLI errors: one line, exit code 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["up", "--hosts", "0"], "--hosts 0 is out of range"),
        (["up", "--hosts", "65"], "--hosts 65 is out of range"),
        (["up", "--hosts", "2", "--name", "Bad_Name"], "bad sandbox name 'Bad_Name'"),
        (["up", "--hosts", "2", "--subnet", "10.0.0.0/30"], "too small"),
        (["down", "--name", "-x"], "bad sandbox name"),
    ],
)
def test_cli_bad_input(args, message):
    result = CliRunner().invoke(cli.sandbox, args)
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1
    assert message in lines[0]
    assert lines[0].startswith("error: ")


def test_cli_not_root(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    result = CliRunner().invoke(cli.sandbox, ["up", "--hosts", "2", "--name", "unit"])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: the sandbox needs root (rootful podman, nftables): run it as root, e.g. `sudo smcpctl ...`"
    )


def test_cli_podman_missing(monkeypatch):
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    monkeypatch.setattr(system.shutil, "which", lambda tool, path=None: None if tool == "podman" else f"/bin/{tool}")
    result = CliRunner().invoke(cli.sandbox, ["status"])
    assert result.exit_code == 2
    assert "podman not found: install the host packages with `make setup`" in result.output


# ---------------------------------------------------------------- cache process bookkeeping


def test_pid_alive_treats_zombies_as_dead():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert system.pid_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 10
        while system.pid_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not system.pid_alive(child.pid)  # a zombie until reaped below
    finally:
        child.wait()


def test_stale_cache_pidfile_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setenv("SMCP_STATE_DIR", str(tmp_path))
    pidfile = aptcache.pidfile()
    pidfile.parent.mkdir(parents=True)
    pidfile.write_text(f"{os.getpid()}\n")  # alive, but not our apt-cacher-ng
    assert aptcache.running_pid() is None
    assert not pidfile.exists()
    pidfile.write_text("garbage\n")
    assert aptcache.running_pid() is None
    assert not pidfile.exists()


def test_cache_config_is_our_own(tmp_path, monkeypatch):
    monkeypatch.setenv("SMCP_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SMCP_CACHE_DIR", str(tmp_path / "cache"))
    conf = aptcache._config()
    assert f"CacheDir: {tmp_path / 'cache' / 'apt-cacher-ng'}" in conf
    assert f"SocketPath: {tmp_path / 'state' / 'apt-cacher-ng' / 'socket'}" in conf
    assert "Port: 3142" in conf
    assert aptcache.BACKEND == "http://deb.debian.org/debian/"
