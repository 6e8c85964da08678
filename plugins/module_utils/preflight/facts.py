# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""``collect(view)``: every fact the checks need, read in one pass over /proc, /sys and /etc."""

from __future__ import annotations

import ipaddress
import re

from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import (
    BIN_DIRS,
    CLUSTER_MARKER,
    DEFAULT_DISK_PATHS,
    KUBERNETES_BINARIES,
    KUBERNETES_PATHS,
    KUBERNETES_PROCESSES,
    PKG_LOCK_FILES,
    RUNTIME_BINARIES,
    RUNTIME_PROCESSES,
    TIME_DAEMONS,
)
from ansible_collections.smcp.platform.plugins.module_utils.preflight.parsers import (
    kernel_module_available,
    os_support,
    parse_fib_trie,
    parse_if_inet6,
    parse_listening,
    parse_meminfo,
    parse_os_release,
    parse_proc_cgroups,
    parse_route,
    parse_swaps,
)


def _module_states(view, builtin, dep, names):
    # type: (HostView, str, str, object) -> dict
    loaded = set(line.split(" ", 1)[0] for line in (view.read("/proc/modules") or "").splitlines())
    states = {}
    for name in names or ():
        states[name] = {
            "loaded": name in loaded
            or view.isdir("/sys/module/%s" % name)
            or kernel_module_available(builtin, "", name),
            "available": kernel_module_available(builtin, dep, name),
        }
    return states


# Where Debian's kmod installs modprobe (usrmerge or not).
MODPROBE_PATHS = ("/usr/sbin/modprobe", "/sbin/modprobe", "/usr/bin/modprobe", "/bin/modprobe")


def collect(view, disk_paths=DEFAULT_DISK_PATHS, wanted_ports=(), kernel_modules=()):
    # type: (HostView, object, object, object) -> dict
    """Read every fact the checks need, in one pass over /proc, /sys and /etc."""
    os_release = parse_os_release(view.read("/etc/os-release") or view.read("/usr/lib/os-release") or "")
    mem = parse_meminfo(view.read("/proc/meminfo") or "")
    release = view.kernel_release()
    processes = view.processes()
    names = set(processes.values())

    facts = {
        "os": dict(os_release, **os_support(os_release)),
        "arch": view.machine(),
        "cpus": view.cpus(),
        "memory_mb": mem["mem_total_mb"],
        "swap": {"total_mb": mem["swap_total_mb"], "devices": parse_swaps(view.read("/proc/swaps") or "")},
        "kernel_release": release,
    }

    disks = {}
    for path in disk_paths:
        info = view.disk(path)
        if info is not None:
            disks[path] = info
    facts["disk"] = disks

    # cgroups
    if view.exists("/sys/fs/cgroup/cgroup.controllers"):
        controllers = (view.read("/sys/fs/cgroup/cgroup.controllers") or "").split()
        facts["cgroup"] = {"version": 2, "hybrid": False, "controllers": sorted(controllers)}
    else:
        table = parse_proc_cgroups(view.read("/proc/cgroups") or "")
        controllers = [name for name, (hierarchy, enabled) in table.items() if enabled and hierarchy]
        facts["cgroup"] = {
            "version": 1 if table else 0,
            "hybrid": view.isdir("/sys/fs/cgroup/unified"),
            "controllers": sorted(controllers),
        }

    # kernel features
    builtin = view.read("/lib/modules/%s/modules.builtin" % release) or ""
    dep = view.read("/lib/modules/%s/modules.dep" % release) or ""
    filesystems = view.read("/proc/filesystems") or ""
    facts["kernel"] = {
        "overlay": bool(re.search(r"\boverlay$", filesystems, re.M)),
        "overlay_module": kernel_module_available(builtin, dep, "overlay"),
        "br_netfilter": view.isdir("/proc/sys/net/bridge"),
        "br_netfilter_module": kernel_module_available(builtin, dep, "br_netfilter"),
        "ip_forward": _strip(view.read("/proc/sys/net/ipv4/ip_forward")),
        "bridge_nf_call_iptables": _strip(view.read("/proc/sys/net/bridge/bridge-nf-call-iptables")),
        # Whether host_prep's modprobe can load a module that is available but not loaded.
        "modules_supported": view.exists("/proc/modules"),
        "modules_disabled": _strip(view.read("/proc/sys/kernel/modules_disabled")) == "1",
        "modprobe": any(view.exists(path) for path in MODPROBE_PATHS),
        # Further modules host_prep loads: loaded (or built in) now, and whether /lib/modules has them.
        "modules": _module_states(view, builtin, dep, kernel_modules),
    }

    facts["time_sync"] = {
        "state": view.clock_state(),
        "daemons": sorted(names & set(TIME_DAEMONS)),
    }
    facts["hostname"] = view.hostname()

    # addresses and networks of this network namespace
    addresses = parse_fib_trie(view.read("/proc/net/fib_trie") or "")
    inet6 = parse_if_inet6(view.read("/proc/net/if_inet6") or "")
    addresses += [entry.split("/")[0] for entry in inet6]
    networks = parse_route(view.read("/proc/net/route") or "")
    for entry in inet6:
        net = ipaddress.ip_network(entry, strict=False)
        if not (net.is_link_local or net.is_loopback) and str(net) not in networks:
            networks.append(str(net))
    facts["addresses"] = addresses
    facts["networks"] = networks

    # listening TCP ports
    listeners = parse_listening(view.read("/proc/net/tcp") or "") + parse_listening(
        view.read("/proc/net/tcp6") or "", ipv6=True
    )
    facts["listening_ports"] = sorted(set(item["port"] for item in listeners))
    busy = [item for item in listeners if item["port"] in set(wanted_ports)]
    owners = view.socket_owners(set(item["inode"] for item in busy)) if busy else {}
    conflicts = {}
    for item in busy:
        owner = owners.get(item["inode"], "")
        entry = {
            "process": owner.split("[")[0] if owner else "unknown process",
            "pid": int(owner.split("[")[1].rstrip("]")) if owner else 0,
            "address": "%s:%d" % (item["address"], item["port"]),
        }
        conflicts.setdefault(str(item["port"]), [])
        if entry not in conflicts[str(item["port"])]:
            conflicts[str(item["port"])].append(entry)
    facts["port_conflicts"] = conflicts

    # package manager locks
    locks = {}
    for path in PKG_LOCK_FILES:
        pid = view.lock_holder(path)
        if pid is not None:
            locks[path] = "%s[%d]" % (processes.get(pid, "pid"), pid) if pid else "unknown process"
    facts["pkg_locks"] = locks

    # existing installs
    kube_found = [path for path in KUBERNETES_PATHS if view.exists(path)]
    kube_found += ["%s/%s" % (d, b) for b in KUBERNETES_BINARIES for d in BIN_DIRS if view.exists("%s/%s" % (d, b))]
    kube_found += ["process %s" % n for n in KUBERNETES_PROCESSES if n in names]
    runtime_found = ["%s/%s" % (d, b) for b in RUNTIME_BINARIES for d in BIN_DIRS if view.exists("%s/%s" % (d, b))]
    runtime_found += ["process %s" % n for n in RUNTIME_PROCESSES if n in names]
    facts["existing"] = {"kubernetes": kube_found, "container_runtime": runtime_found}
    facts["smcp_cluster"] = _strip(view.read(CLUSTER_MARKER)) or None
    return facts


def _strip(value):
    # type: (str | None) -> str | None
    return value.strip() if value is not None else None


def resolve_node_ip(view, node_ip):
    # type: (HostView, str) -> list
    """The addresses ``node_ip`` stands for (itself when it is an IP address)."""
    try:
        return [str(ipaddress.ip_address(node_ip))]
    except ValueError:
        return view.resolve(node_ip)
