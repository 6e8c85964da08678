"""The CNI config the cni role writes on a node, exercised with Debian's real CNI plugins in a network namespace.

On a 1-host sandbox (`smcpctl sandbox up --hosts 1 --name cni`):
1. the cni role runs with smcp_cni=flannel and cni_apply=false: preflight (facts, MTU from the node
   interface), render + schema validation on the controller, and its host part, which writes
   /etc/cni/net.d/10-flannel.conflist;
2. Debian's containernetworking-plugins are installed in the host (bridge, host-local, loopback, portmap);
3. /run/flannel/subnet.env is written as flanneld would for this node (a /24 of the pod CIDR);
4. the flannel plugin's step (conflist + subnet.env -> delegate bridge config, module_utils
   cni.flannel_delegate) is done in Python; the real `bridge` (with host-local IPAM) and `portmap`
   binaries then run ADD and DEL for a network namespace, chained as libcni does.

Exercised for real: the role's host config (name, cniVersion, delegate settings, MTU), the bridge,
host-local, portmap and loopback plugins, IPAM leases, addresses, routes and MTU in the namespace.
Not exercised: the flannel CNI binary itself and flanneld (not packaged in Debian), Calico's CNI
(its calico/calico-ipam binaries are not packaged in Debian either; its conflist is written by
calico's own install-cni container and checked by schema/unit tests only).

The namespace lives inside the sandbox host container (its own network namespace); nothing touches
the machine's network. Run with: flock /tmp/smcp-heavy.lock pytest -m sandbox tests/integration/test_cni_netns_live.py
"""

from __future__ import annotations

import ipaddress
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils import cni  # noqa: E402

from tests.sandbox_ssh import ssh_argv  # noqa: E402

pytestmark = pytest.mark.sandbox

SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
NAME = "cni"
POD_CIDR = "10.244.0.0/16"
NODE_SUBNET = "10.244.3.1/24"  # what flanneld writes for a node whose spec.podCIDR is 10.244.3.0/24
CNI_BIN = "/usr/lib/cni"  # Debian's containernetworking-plugins


def _run(
    *cmd: str, check: bool = True, env: dict | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess:
    out = subprocess.run(list(cmd), capture_output=True, text=True, env=env, input=stdin, timeout=900)
    if check and out.returncode != 0:
        raise AssertionError(f"{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}")
    return out


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    up = _run(SMCPCTL, "sandbox", "up", "--hosts", "1", "--name", NAME, "--json")
    info = json.loads(up.stdout)
    try:
        yield info
    finally:
        _run(SMCPCTL, "sandbox", "down", "--name", NAME, check=False)


def ssh(box: dict, command: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess:
    host = box["hosts"][0]
    return _run(
        *ssh_argv(host),
        command,
        stdin=stdin,
        check=check,
    )


@pytest.fixture(scope="module")
def node(box, tmp_path_factory):
    """Run the cni role (flannel, render + host part, no apply) against the sandbox host."""
    tmp = tmp_path_factory.mktemp("cni")
    inventory = yaml.safe_load(Path(box["inventory"]).read_text())
    hosts = inventory["all"]["hosts"]
    inventory["all"]["children"] = {"control_plane": {"hosts": dict.fromkeys(hosts)}}
    (tmp / "inventory.yml").write_text(yaml.safe_dump(inventory))
    (tmp / "play.yml").write_text(
        yaml.safe_dump(
            [
                {
                    "name": "cni role, host part",
                    "hosts": "all",
                    "become": True,
                    "gather_facts": True,
                    "vars": {
                        "smcp_cni": "flannel",
                        "smcp_pod_cidr": POD_CIDR,
                        "cni_apply": False,
                        "cni_manifest_dest": str(tmp / "manifests.yml"),
                    },
                    "roles": ["smcp.platform.cni"],
                }
            ]
        )
    )
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
    )
    play = _run(
        str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(tmp / "inventory.yml"), str(tmp / "play.yml"), env=env
    )
    assert "failed=0" in play.stdout
    apt = "sudo -n apt-get update -qq && sudo -n DEBIAN_FRONTEND=noninteractive apt-get install -y -qq"
    ssh(box, apt + " containernetworking-plugins")
    return {"manifests": tmp / "manifests.yml", "play": play.stdout}


def plugin(box, name: str, command: str, config: dict, netns: str, ifname: str = "eth0") -> dict:
    env = {
        "CNI_COMMAND": command,
        "CNI_CONTAINERID": f"smcp-{netns}",
        "CNI_NETNS": f"/var/run/netns/{netns}",
        "CNI_IFNAME": ifname,
        "CNI_PATH": CNI_BIN,
    }
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    out = ssh(box, f"sudo -n env {prefix} {CNI_BIN}/{name}", stdin=json.dumps(config), check=False)
    assert out.returncode == 0, f"{name} {command}: {out.stdout} {out.stderr}"
    return json.loads(out.stdout) if out.stdout.strip() else {}


def chain(box, conflist: dict, delegate: dict, command: str, netns: str) -> dict:
    """What libcni does with the conflist: the first plugin (flannel -> its bridge delegate), then portmap."""
    result = plugin(box, "bridge", command, delegate, netns)
    for conf in conflist["plugins"][1:]:
        conf = dict(conf, name=conflist["name"], cniVersion=conflist["cniVersion"])
        if command == "ADD":
            conf["prevResult"] = result
        out = plugin(box, conf["type"], command, conf, netns)
        result = out or result
    return result


def test_role_wrote_the_flannel_conflist_with_the_node_mtu(box, node):
    text = ssh(box, "cat /etc/cni/net.d/10-flannel.conflist").stdout
    conflist = json.loads(text)
    mtu = int(ssh(box, "cat /sys/class/net/eth0/mtu").stdout) - 50
    assert conflist == cni.flannel_conflist(mtu)
    assert ssh(box, "stat -c %a:%U /etc/cni/net.d/10-flannel.conflist").stdout.strip() == "644:root"
    manifests = list(yaml.safe_load_all(node["manifests"].read_text()))
    cfg = next(m for m in manifests if m["kind"] == "ConfigMap" and m["metadata"]["name"] == "kube-flannel-cfg")
    assert json.loads(cfg["data"]["cni-conf.json"]) == conflist  # the DaemonSet installs the same file
    assert json.loads(cfg["data"]["net-conf.json"])["Network"] == POD_CIDR


def test_add_gives_a_pod_cidr_address_and_del_releases_it(box, node):
    conflist = json.loads(ssh(box, "cat /etc/cni/net.d/10-flannel.conflist").stdout)
    subnet_env = f"FLANNEL_NETWORK={POD_CIDR}\nFLANNEL_SUBNET={NODE_SUBNET}\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    ssh(box, "sudo -n mkdir -p /run/flannel && sudo -n tee /run/flannel/subnet.env >/dev/null", stdin=subnet_env)
    delegate = cni.flannel_delegate(conflist, ssh(box, "cat /run/flannel/subnet.env").stdout)
    mtu = conflist["plugins"][0]["delegate"]["mtu"]
    ssh(box, "sudo -n ip netns add pod1 && sudo -n ip netns add pod2")
    try:
        plugin(box, "loopback", "ADD", {"cniVersion": "0.3.1", "name": "lo", "type": "loopback"}, "pod1", "lo")
        first = chain(box, conflist, delegate, "ADD", "pod1")
        second = chain(box, conflist, delegate, "ADD", "pod2")
        addr1 = ipaddress.ip_interface(first["ips"][0]["address"])
        addr2 = ipaddress.ip_interface(second["ips"][0]["address"])
        node_net = ipaddress.ip_network(NODE_SUBNET, strict=False)
        assert addr1.ip in node_net and addr2.ip in node_net and addr1.ip != addr2.ip
        assert node_net.subnet_of(ipaddress.ip_network(POD_CIDR))
        assert first["ips"][0]["gateway"] == "10.244.3.1"

        inside = json.loads(ssh(box, "sudo -n ip netns exec pod1 ip -j addr show eth0").stdout)[0]
        assert inside["mtu"] == mtu
        assert f"{addr1.ip}/{addr1.network.prefixlen}" in [
            f"{a['local']}/{a['prefixlen']}" for a in inside["addr_info"] if a["family"] == "inet"
        ]
        routes = ssh(box, "sudo -n ip netns exec pod1 ip -4 route").stdout
        assert "default via 10.244.3.1" in routes
        assert "UP" in ssh(box, "sudo -n ip netns exec pod1 ip link show lo").stdout
        bridge = json.loads(ssh(box, "ip -j addr show cni0").stdout)[0]  # the bridge plugin's default device
        assert "10.244.3.1" in [a["local"] for a in bridge["addr_info"]]
        ping = ssh(box, f"sudo -n ip netns exec pod1 ping -c1 -W2 {addr2.ip}", check=False)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        leases = ssh(box, "sudo -n ls /var/lib/cni/networks/cbr0").stdout.split()
        assert {str(addr1.ip), str(addr2.ip)} <= set(leases)

        chain(box, conflist, delegate, "DEL", "pod1")
        leases = ssh(box, "sudo -n ls /var/lib/cni/networks/cbr0").stdout.split()
        assert str(addr1.ip) not in leases and str(addr2.ip) in leases
        gone = ssh(box, "sudo -n ip netns exec pod1 ip link show eth0", check=False)
        assert gone.returncode != 0
        again = chain(box, conflist, delegate, "ADD", "pod1")  # the released address is usable again
        assert ipaddress.ip_interface(again["ips"][0]["address"]).ip in node_net
        chain(box, conflist, delegate, "DEL", "pod1")
        chain(box, conflist, delegate, "DEL", "pod2")
        leases = ssh(box, "sudo -n ls /var/lib/cni/networks/cbr0").stdout.split()
        assert not [lease for lease in leases if lease[0].isdigit()]
    finally:
        ssh(box, "sudo -n ip netns del pod1; sudo -n ip netns del pod2", check=False)
