"""The sandbox's podman network: reuse or create it, free subnets, what the egress guard covers."""

from __future__ import annotations

import ipaddress
import json

from smcp_api.sandbox.hosts import remove_containers
from smcp_api.sandbox.model import (
    LABEL,
    SandboxError,
    SandboxInfo,
    allocate_subnet,
    network_name,
    overlapping,
)
from smcp_api.sandbox.state import all_states
from smcp_api.sandbox.system import (
    podman,
    podman_json,
    used_networks,
)


def ensure_network(
    name: str,
    net_name: str,
    count: int,
    wanted: ipaddress.IPv4Network | None,
    existing: SandboxInfo | None,
) -> ipaddress.IPv4Network:
    """Reuse or create the sandbox network; return its subnet. Caller holds the global lock."""
    current = network_subnet(net_name)
    want = wanted or (ipaddress.IPv4Network(existing.subnet) if existing else None)
    if current is not None and (want is None or want == current):
        return current
    if current is not None:
        remove_containers(name)
        podman("network", "rm", "-f", net_name, check=False)
    if want is not None:
        check_free(name, want)
        subnet = want
    else:
        subnet = allocate_subnet(used_subnets(name))
    gateway = str(next(subnet.hosts()))
    podman(
        "network",
        "create",
        "--internal",
        "--disable-dns",
        "--subnet",
        str(subnet),
        "--gateway",
        gateway,
        "--label",
        f"{LABEL}={name}",
        net_name,
    )
    return subnet


def used_subnets(name: str) -> list[ipaddress.IPv4Network]:
    """Networks in use on the machine and by other sandboxes (whose network may be missing for now)."""
    return used_networks() + [ipaddress.IPv4Network(s.subnet) for s in all_states(exclude=name)]


def check_free(name: str, subnet: ipaddress.IPv4Network) -> None:
    if network_subnet(network_name(name)) == subnet:
        return  # our own network, left from an earlier session: reused
    clash = overlapping(subnet, used_subnets(name))
    if clash is not None:
        raise SandboxError(
            f"subnet {subnet} is already in use (overlaps {clash} on this machine): pick another --subnet"
            " or leave it out to allocate a free one"
        )


def guarded() -> list[SandboxInfo]:
    """What the egress guard must cover: every sandbox network on the machine (podman's labels are the
    machine-wide truth, whatever SMCP_STATE_DIR says) plus the subnets of recorded sandboxes."""
    found: dict[str, SandboxInfo] = {}
    for net in podman_json("network", "ls", "--filter", f"label={LABEL}", "--format", "json"):
        name = str((net.get("labels") or {}).get(LABEL, net.get("name")))
        for sub in net.get("subnets") or []:
            subnet = ipaddress.ip_network(sub["subnet"])
            if isinstance(subnet, ipaddress.IPv4Network):
                found[name] = SandboxInfo(
                    name=name,
                    hosts=[],
                    subnet=str(subnet),
                    gateway="",
                    network=str(net.get("name")),
                    directory="",
                    bridge=str(net.get("network_interface") or ""),
                )
    for state in all_states():
        found.setdefault(state.name, state)
    return sorted(found.values(), key=lambda i: i.name)


def network_subnet(net_name: str) -> ipaddress.IPv4Network | None:
    proc = podman("network", "inspect", net_name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)[0]
    for sub in data.get("subnets") or []:
        net = ipaddress.ip_network(sub["subnet"])
        if isinstance(net, ipaddress.IPv4Network):
            return net
    return None


def bridge_name(net_name: str) -> str:
    data = podman_json("network", "inspect", net_name)[0]
    return str(data.get("network_interface", ""))
