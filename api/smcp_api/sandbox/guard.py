"""The egress guard: an nftables table that keeps sandbox traffic on this machine.

One table, `inet smcp_sandbox`, rebuilt atomically from the sandboxes that exist (their bridges and
subnets) on every `up` and `down`, and deleted with the last sandbox:

- forward: a packet may only stay on the bridge it came from; anything else from or to a sandbox
  bridge or subnet (or the default pool) is dropped, whatever net.ipv4.ip_forward says;
- input: the apt cache port answers loopback and the sandbox bridges only.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable

from smcp_api.sandbox.model import APT_CACHE_PORT, DEFAULT_POOL, SandboxInfo
from smcp_api.sandbox.system import run

TABLE = "smcp_sandbox"


def _elements(sandboxes: Iterable[SandboxInfo]) -> dict[str, list[str]]:
    boxes = list(sandboxes)
    bridges = sorted({s.bridge for s in boxes if s.bridge})
    merged = ipaddress.collapse_addresses({ipaddress.IPv4Network(s.subnet) for s in boxes} | {DEFAULT_POOL})
    return {
        "bridges": [f'"{b}"' for b in bridges],
        "nets": [str(n) for n in merged],
        "same_bridge": [f'"{b}" . "{b}"' for b in bridges],
    }


CHAINS = f"""\
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
"""
SET_TYPES = {"bridges": "type ifname", "nets": "type ipv4_addr; flags interval", "same_bridge": "type ifname . ifname"}
# The table's comment names this version of the rules: a table with another version is rebuilt,
# one with this version only gets its sets updated (so rule counters survive other sandboxes' up/down).
VERSION = hashlib.sha256((CHAINS + repr(sorted(SET_TYPES.items()))).encode()).hexdigest()[:12]
COMMENT = f"smcp sandbox egress guard {VERSION}: written by smcpctl sandbox, removed with the last sandbox"


def ruleset(sandboxes: Iterable[SandboxInfo]) -> str:
    """The nft script that replaces the guard table (pure: unit-tested)."""
    elements = _elements(sandboxes)
    sets = "".join(
        f"    set {name} {{\n        {SET_TYPES[name]}\n"
        + (f"        elements = {{ {', '.join(items)} }}\n" if items else "")
        + "    }\n"
        for name, items in elements.items()
    )
    return f"""\
table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    comment "{COMMENT}"
{sets}{CHAINS}}}
"""


def set_update(sandboxes: Iterable[SandboxInfo]) -> str:
    """The nft script that only replaces the sets' elements of a current table (pure: unit-tested)."""
    lines = []
    for name, items in _elements(sandboxes).items():
        lines.append(f"flush set inet {TABLE} {name}")
        if items:
            lines.append(f"add element inet {TABLE} {name} {{ {', '.join(items)} }}")
    return "\n".join(lines) + "\n"


def sync(sandboxes: list[SandboxInfo]) -> None:
    """Make the table match the given sandboxes; delete it when there are none."""
    if not sandboxes:
        remove()
        return
    listing = run(["nft", "list", "table", "inet", TABLE], check=False)
    if listing.returncode == 0 and VERSION in listing.stdout:
        run(["nft", "-f", "-"], input_text=set_update(sandboxes))
    else:
        run(["nft", "-f", "-"], input_text=ruleset(sandboxes))


def covers(info: SandboxInfo) -> bool:
    """The current table guards this sandbox (right version, its bridge listed)."""
    listing = run(["nft", "list", "table", "inet", TABLE], check=False)
    return listing.returncode == 0 and VERSION in listing.stdout and f'"{info.bridge}"' in listing.stdout


def remove() -> None:
    if exists():
        run(["nft", "delete", "table", "inet", TABLE])


def exists() -> bool:
    return run(["nft", "list", "table", "inet", TABLE], check=False).returncode == 0
