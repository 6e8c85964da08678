# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Parsers: the text of /proc, /sys and /etc files as data; the OS support lookup."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.smcp.platform.plugins.module_utils import netrules
from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import SUPPORT_TABLE


def parse_os_release(text):
    # type: (str) -> dict
    """Parse os-release(5) text into lower-case keys (``id``, ``version_id``, ...)."""
    data = {}
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        data[key.strip().lower()] = value
    return {
        "id": data.get("id", "").lower(),
        "id_like": data.get("id_like", "").lower().split(),
        "version_id": data.get("version_id", ""),
        "pretty_name": data.get("pretty_name", data.get("name", "")),
    }


def os_support(os_release):
    # type: (dict) -> dict
    """Look an os-release dict up in ``SUPPORT_TABLE``."""
    os_id = os_release.get("id", "")
    version = os_release.get("version_id", "")
    for row in SUPPORT_TABLE:
        if os_id not in row["ids"]:
            continue
        key = version.split(".")[0] if row["major_only"] else version
        return {
            "family": row["family"],
            "supported": key in row["versions"],
            "tested": key in row["tested"],
            "supported_versions": list(row["versions"]),
        }
    family = ""
    for row in SUPPORT_TABLE:
        if set(os_release.get("id_like", ())) & set(row["ids"]):
            family = row["family"]
    return {"family": family, "supported": False, "tested": False, "supported_versions": []}


def supported_os_text():
    # type: () -> str
    parts = []
    for row in SUPPORT_TABLE:
        parts.append(
            "%s %s" % (row["family"] if row["family"] != "RedHat" else "RHEL-family", "/".join(row["versions"]))
        )
    return ", ".join(parts)


def parse_meminfo(text):
    # type: (str) -> dict
    """Return MemTotal and SwapTotal in MiB."""
    values = {}
    for line in (text or "").splitlines():
        match = re.match(r"^(\w+):\s+(\d+)\s*kB", line)
        if match:
            values[match.group(1)] = int(match.group(2)) // 1024
    return {"mem_total_mb": values.get("MemTotal", 0), "swap_total_mb": values.get("SwapTotal", 0)}


def parse_swaps(text):
    # type: (str) -> list
    """Active swap devices from /proc/swaps."""
    devices = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 3:
            devices.append(fields[0])
    return devices


def parse_proc_cgroups(text):
    # type: (str) -> dict
    """Map controller name -> (hierarchy, enabled) from /proc/cgroups."""
    controllers = {}
    for line in (text or "").splitlines():
        if line.startswith("#"):
            continue
        fields = line.split()
        if len(fields) >= 4 and fields[1].isdigit() and fields[3].isdigit():
            controllers[fields[0]] = (int(fields[1]), fields[3] == "1")
    return controllers


def parse_listening(text, ipv6=False):
    # type: (str, bool) -> list
    """LISTEN sockets from /proc/net/tcp or tcp6 as dicts (address, port, inode)."""
    result = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 10 or fields[3] != "0A":
            continue
        addr_hex, port_hex = fields[1].split(":")
        result.append({"address": _hex_ip(addr_hex, ipv6), "port": int(port_hex, 16), "inode": fields[9]})
    return result


def _hex_ip(value, ipv6):
    # type: (str, bool) -> str
    """Decode a /proc/net address (little-endian 32-bit words) to text."""
    raw = bytes.fromhex(value)
    if not ipv6:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


def parse_fib_trie(text):
    # type: (str) -> list
    """Local IPv4 addresses (``/32 host LOCAL`` leaves) from /proc/net/fib_trie."""
    found = []
    last = None
    for line in (text or "").splitlines():
        stripped = line.strip()
        if stripped.startswith("|--"):
            last = stripped[3:].strip()
        elif last and stripped.startswith("/32 host LOCAL") and last not in found:
            found.append(last)
    return found


def parse_route(text):
    # type: (str) -> list
    """Directly connected IPv4 networks (no gateway, not default) from /proc/net/route."""
    networks = []
    for line in (text or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8:
            continue
        flags = int(fields[3], 16)
        dest, mask = _hex_ip(fields[1], False), _hex_ip(fields[7], False)
        if flags & 0x2 or mask == "0.0.0.0":  # noqa: S104 - the default route, not a bind
            continue
        net = str(ipaddress.IPv4Network("%s/%s" % (dest, mask), strict=False))
        if net not in networks:
            networks.append(net)
    return networks


def parse_if_inet6(text):
    # type: (str) -> list
    """IPv6 addresses with prefix from /proc/net/if_inet6 as ``addr/prefix`` strings."""
    result = []
    for line in (text or "").splitlines():
        fields = line.split()
        if len(fields) < 6:
            continue
        addr = ipaddress.IPv6Address(bytes.fromhex(fields[0]))
        result.append("%s/%d" % (addr, int(fields[2], 16)))
    return result


def kernel_module_available(modules_builtin, modules_dep, name):
    # type: (str, str, str) -> bool
    """True when ``name`` is built in or loadable according to /lib/modules/<release>."""
    pattern = re.compile(r"(^|/)%s\.ko(\.[gx]z|\.zst)?(:|$)" % re.escape(name), re.M)
    return bool(pattern.search(modules_builtin or "") or pattern.search(modules_dep or ""))


def hostname_problems(name):
    # type: (str) -> list
    """Reasons ``name`` is not a valid Kubernetes node name (the shared rule in netrules)."""
    return netrules.hostname_reasons(name)
