"""Pure sandbox logic: validation, subnet allocation, host layout and the Ansible inventory.

Nothing here touches the machine, so all of it is unit-tested without podman.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
MIN_HOSTS = 1
MAX_HOSTS = 64
DEFAULT_NAME = "default"
DEFAULT_POOL = ipaddress.IPv4Network("10.213.0.0/16")
DEFAULT_PREFIX = 24
CONTAINER_PREFIX = "smcp-sb-"
NETWORK_PREFIX = "smcp-sb-"
SSH_USER = "smcp"
APT_CACHE_PORT = 3142
# podman label on every container and network of a sandbox (value: the sandbox name)
LABEL = "smcp.sandbox"
GROUPS = ("etcd", "control_plane", "workers")
# SandboxInfo fields its machine-readable form shows as they are (before the files, login and hosts)
JSON_FIELDS = ("name", "state", "already_up", "subnet", "gateway", "network", "bridge", "image", "directory")


class SandboxError(Exception):
    """A problem the user can fix: one line naming the problem and the fix (CLI exit code 2)."""


@dataclass(frozen=True)
class Host:
    """One sandbox host."""

    name: str
    ip: str
    container: str


@dataclass
class SandboxInfo:
    """What a sandbox is and where its files live (also its machine-readable form)."""

    name: str
    hosts: list[Host]
    subnet: str
    gateway: str
    network: str
    directory: str
    image: str = ""
    bridge: str = ""
    user: str = SSH_USER
    port: int = 22
    state: str = "up"
    already_up: bool = False
    groups: dict[str, list[str]] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        return Path(self.directory)

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    def to_json(self) -> dict[str, Any]:
        """The machine-readable form printed by `--json` and read by the molecule create playbook."""
        files = {"inventory": str(self.inventory), "known_hosts": str(self.known_hosts), "key": str(self.key)}
        login = {"user": self.user, "port": self.port}
        return {
            **{name: getattr(self, name) for name in JSON_FIELDS},
            **files,
            **login,
            "groups": self.groups or host_groups([h.name for h in self.hosts]),
            "hosts": [
                {**asdict(h), **login, "key": files["key"], "known_hosts": files["known_hosts"]} for h in self.hosts
            ],
        }

    def to_state(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("already_up", None)
        return data

    @classmethod
    def from_state(cls, data: dict[str, Any]) -> SandboxInfo:
        data = dict(data)
        data.pop("already_up", None)
        data["hosts"] = [Host(**h) for h in data.get("hosts", [])]
        return cls(**data)


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name) or name.endswith("-"):
        raise SandboxError(
            f"bad sandbox name {name!r}: use 1-20 characters a-z, 0-9 and '-', starting with a letter"
            " and not ending with '-' (e.g. --name demo)"
        )
    return name


def validate_hosts(count: int) -> int:
    if not isinstance(count, int) or not MIN_HOSTS <= count <= MAX_HOSTS:
        raise SandboxError(f"--hosts {count} is out of range: use a number from {MIN_HOSTS} to {MAX_HOSTS}")
    return count


def container_name(sandbox: str, index: int) -> str:
    return f"{CONTAINER_PREFIX}{sandbox}-{index}"


def host_name(sandbox: str, index: int) -> str:
    return f"{sandbox}-{index}"


def network_name(sandbox: str) -> str:
    return f"{NETWORK_PREFIX}{sandbox}"


def parse_subnet(text: str, hosts: int) -> ipaddress.IPv4Network:
    """Check a user-given subnet: IPv4, private, room for the gateway and every host."""
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise SandboxError(f"bad --subnet {text!r}: {exc}; give an IPv4 network such as 10.213.7.0/24") from exc
    if not isinstance(net, ipaddress.IPv4Network):
        raise SandboxError(f"bad --subnet {text!r}: only IPv4 is supported; give e.g. 10.213.7.0/24")
    if not net.is_private or net.is_loopback or net.is_link_local:
        raise SandboxError(f"bad --subnet {text!r}: use a private range (10/8, 172.16/12, 192.168/16)")
    usable = net.num_addresses - 2
    if usable < hosts + 1:
        raise SandboxError(
            f"--subnet {text} is too small for {hosts} hosts and a gateway: use a larger one (e.g. a /24)"
        )
    return net


def overlapping(net: ipaddress.IPv4Network, used: Iterable[ipaddress.IPv4Network]) -> ipaddress.IPv4Network | None:
    for other in used:
        if net.overlaps(other):
            return other
    return None


def allocate_subnet(
    used: Iterable[ipaddress.IPv4Network],
    pool: ipaddress.IPv4Network = DEFAULT_POOL,
    prefix: int = DEFAULT_PREFIX,
) -> ipaddress.IPv4Network:
    """The first /prefix of pool that overlaps nothing in used."""
    taken = [u for u in used if u.overlaps(pool)]
    for candidate in pool.subnets(new_prefix=prefix):
        if overlapping(candidate, taken) is None:
            return candidate
    raise SandboxError(f"no free /{prefix} left in {pool}: take sandboxes down or pass --subnet")


def layout(name: str, count: int, subnet: ipaddress.IPv4Network) -> tuple[str, list[Host]]:
    """Gateway address and hosts (NAME-1..NAME-N on the next addresses)."""
    addrs = subnet.hosts()
    gateway = str(next(addrs))
    hosts = [Host(host_name(name, i), str(next(addrs)), container_name(name, i)) for i in range(1, count + 1)]
    return gateway, hosts


def host_groups(names: list[str]) -> dict[str, list[str]]:
    """Cluster groups: 1 host in all; 2 hosts: 1 control plane + 1 worker; else 3 control planes + workers."""
    if len(names) == 1:
        return {"etcd": list(names), "control_plane": list(names), "workers": list(names)}
    if len(names) == 2:
        return {"etcd": names[:1], "control_plane": names[:1], "workers": names[1:]}
    return {"etcd": names[:3], "control_plane": names[:3], "workers": names[3:]}


def inventory(info: SandboxInfo) -> dict[str, Any]:
    """The Ansible YAML inventory for a sandbox (host-key checking stays on)."""
    groups = host_groups([h.name for h in info.hosts])
    return {
        "all": {
            "vars": {
                "ansible_user": info.user,
                "ansible_port": info.port,
                "ansible_ssh_private_key_file": str(info.key),
                "ansible_ssh_common_args": (
                    f"-o UserKnownHostsFile={info.known_hosts} -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes"
                ),
                "ansible_python_interpreter": "/usr/bin/python3",
                "smcp_sandbox": True,
                "smcp_sandbox_name": info.name,
            },
            "hosts": {h.name: {"ansible_host": h.ip, "smcp_node_ip": h.ip} for h in info.hosts},
            "children": {g: {"hosts": dict.fromkeys(groups[g])} for g in GROUPS if groups[g]},
        }
    }


def inventory_yaml(info: SandboxInfo) -> str:
    header = f"# smcp sandbox {info.name!r}: written by `smcpctl sandbox up`; removed by `smcpctl sandbox down`.\n"
    return header + yaml.safe_dump(inventory(info), sort_keys=False, default_flow_style=False)


def known_hosts_text(hosts: list[Host], pubkeys: dict[str, str]) -> str:
    """One line per host: `NAME,IP keytype key` from the host key generated on the machine."""
    lines = []
    for h in hosts:
        keytype, key = pubkeys[h.name].split()[:2]
        lines.append(f"{h.name},{h.ip} {keytype} {key}")
    return "\n".join(lines) + "\n"
