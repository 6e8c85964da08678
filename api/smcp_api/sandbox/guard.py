"""The egress guard: an nftables table that keeps sandbox traffic on this machine.

One table, `inet smcp_sandbox`, rebuilt atomically from the sandboxes that exist (their bridges and
subnets) on every `up` and `down`, and deleted with the last sandbox:

- forward: a packet may only stay on the bridge it came from; anything else from or to a sandbox
  bridge or subnet (or the default pool) is dropped, whatever net.ipv4.ip_forward says;
- input: the apt cache port answers loopback and the sandbox bridges only.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from smcp_api.sandbox.model import APT_CACHE_PORT, DEFAULT_POOL, SandboxInfo
from smcp_api.sandbox.system import run

TABLE = "smcp_sandbox"


def ruleset(sandboxes: Iterable[SandboxInfo]) -> str:
    """The nft script that replaces the guard table (pure: unit-tested)."""
    boxes = sorted(sandboxes, key=lambda s: s.name)
    bridges = sorted({s.bridge for s in boxes if s.bridge})
    merged = ipaddress.collapse_addresses({ipaddress.IPv4Network(s.subnet) for s in boxes} | {DEFAULT_POOL})
    nets = [str(n) for n in merged]

    def elements(items: list[str], quote: bool) -> str:
        if not items:
            return ""
        return "elements = { " + ", ".join(f'"{i}"' if quote else i for i in items) + " }"

    pairs = ", ".join(f'"{b}" . "{b}"' for b in bridges)
    return f"""\
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    comment "smcp sandbox egress guard: written by smcpctl sandbox, removed with the last sandbox"
    set bridges {{
        type ifname
        {elements(bridges, True)}
    }}
    set nets {{
        type ipv4_addr
        flags interval
        auto-merge
        {elements(nets, False)}
    }}
    set same_bridge {{
        type ifname . ifname
        {"elements = { " + pairs + " }" if pairs else ""}
    }}
    chain forward {{
        type filter hook forward priority filter - 10; policy accept;
        iifname . oifname @same_bridge accept
        iifname @bridges counter drop
        oifname @bridges counter drop
        ip saddr @nets counter drop
        ip daddr @nets counter drop
    }}
    chain input {{
        type filter hook input priority filter - 10; policy accept;
        tcp dport {APT_CACHE_PORT} iifname "lo" accept
        tcp dport {APT_CACHE_PORT} iifname @bridges accept
        tcp dport {APT_CACHE_PORT} counter drop
    }}
}}
"""


def sync(sandboxes: list[SandboxInfo]) -> None:
    """Make the table match the given sandboxes; delete it when there are none."""
    if sandboxes:
        run(["nft", "-f", "-"], input_text=ruleset(sandboxes))
    else:
        remove()


def remove() -> None:
    if exists():
        run(["nft", "delete", "table", "inet", TABLE])


def exists() -> bool:
    return run(["nft", "list", "table", "inet", TABLE], check=False).returncode == 0
