# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Node checks: ``evaluate(facts, settings)`` runs each over the collected facts, returns ``Problem`` objects."""

from __future__ import annotations

import ipaddress

from ansible_collections.smcp.platform.plugins.module_utils import netrules
from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import (
    CLUSTER_MARKER,
    DEFAULT_MIN_CPUS,
    DEFAULT_MIN_DISK_MB,
    DEFAULT_MIN_MEMORY_MB,
    EXPECTED_OWNERS,
    PORT_OWNERS,
    REQUIRED_CGROUP_V1,
    REQUIRED_CGROUP_V2,
    ROLE_PORTS,
    SUPPORTED_ARCHES,
    WARNING,
)
from ansible_collections.smcp.platform.plugins.module_utils.preflight.parsers import (
    hostname_problems,
    supported_os_text,
)
from ansible_collections.smcp.platform.plugins.module_utils.preflight.problems import Problem, apply_warn_only


def merged_minimum(defaults, overrides, roles):
    # type: (dict, object, object) -> tuple
    """(value, role) of the largest minimum over ``roles``, overrides applied."""
    table = dict(defaults)
    table.update(overrides or {})
    best = (0, "")
    for role in roles or ():
        value = int(table.get(role, 0))
        if value > best[0]:
            best = (value, role)
    return best


def required_ports(roles, extra_ports=()):
    # type: (object, object) -> list
    ports = set(int(p) for p in extra_ports or ())
    for role in roles or ():
        ports.update(ROLE_PORTS.get(role, ()))
    return sorted(ports)


def evaluate(facts, settings):
    # type: (dict, dict) -> list
    """Run every node check over ``facts``; return Problems (warn_only already applied).

    ``settings`` keys: roles, node_ip, node_ip_addresses, expected_hostname, cluster_name, sandbox,
    min_cpus, min_memory_mb, min_disk_mb, extra_ports, warn_only.
    """
    roles = list(settings.get("roles") or ())
    sandbox = bool(settings.get("sandbox"))
    problems = []  # type: list
    for check in _NODE_CHECKS:
        problems.extend(check(facts, settings, roles, sandbox))
    return apply_warn_only(problems, settings.get("warn_only"))


def _check_os(facts, settings, roles, sandbox):
    osf = facts.get("os", {})
    name = osf.get("pretty_name") or ("%s %s" % (osf.get("id"), osf.get("version_id"))).strip() or "unknown"
    if not osf.get("supported"):
        return [
            Problem(
                "os_supported",
                "operating system not supported",
                found=name,
                need=supported_os_text(),
                fix="install a supported release (or accept the risk: preflight_warn_only: [os_supported])",
            )
        ]
    if not osf.get("tested"):
        return [
            Problem(
                "os_supported",
                "operating system supported but not covered by smcp's own tests",
                found=name,
                need="Debian 12 for a tested setup",
                fix="none required; report problems you meet on this release",
                severity=WARNING,
            )
        ]
    return []


def _check_arch(facts, settings, roles, sandbox):
    arch = facts.get("arch", "")
    if arch in SUPPORTED_ARCHES:
        return []
    return [
        Problem(
            "arch",
            "CPU architecture not supported",
            found=arch or "unknown",
            need="x86_64 (amd64) or aarch64 (arm64)",
            fix="use an amd64 or arm64 machine",
        )
    ]


def _check_cpu(facts, settings, roles, sandbox):
    need, role = merged_minimum(DEFAULT_MIN_CPUS, settings.get("min_cpus"), roles)
    cpus = int(facts.get("cpus") or 0)
    if cpus >= need:
        return []
    return [
        Problem(
            "cpu",
            "too few CPUs for role %s" % role,
            found=cpus,
            need="at least %d" % need,
            fix="give the machine more CPUs, or lower preflight_min_cpus['%s']" % role,
        )
    ]


def _check_memory(facts, settings, roles, sandbox):
    need, role = merged_minimum(DEFAULT_MIN_MEMORY_MB, settings.get("min_memory_mb"), roles)
    have = int(facts.get("memory_mb") or 0)
    if have >= need:
        return []
    where = " (sandbox host: this is the machine's memory)" if sandbox else ""
    return [
        Problem(
            "memory",
            "too little memory for role %s%s" % (role, where),
            found="%d MiB" % have,
            need="at least %d MiB" % need,
            fix="give the machine more memory, or lower preflight_min_memory_mb['%s']" % role,
        )
    ]


def _check_disk(facts, settings, roles, sandbox):
    need, role = merged_minimum(DEFAULT_MIN_DISK_MB, settings.get("min_disk_mb"), roles)
    problems = []
    seen = set()
    for path in sorted(facts.get("disk", {})):
        info = facts["disk"][path]
        if info.get("dev") in seen:
            continue
        seen.add(info.get("dev"))
        if int(info.get("free_mb", 0)) < need:
            problems.append(
                Problem(
                    "disk",
                    "too little free disk space on %s for role %s" % (path, role),
                    found="%d MiB free" % info.get("free_mb", 0),
                    need="at least %d MiB free" % need,
                    fix="free or add space on the filesystem holding %s, or lower preflight_min_disk_mb['%s']"
                    % (path, role),
                )
            )
    return problems


def _check_swap(facts, settings, roles, sandbox):
    swap = facts.get("swap", {})
    if not swap.get("total_mb") and not swap.get("devices"):
        return []
    found = "%d MiB on %s" % (swap.get("total_mb", 0), ", ".join(swap.get("devices") or ["?"]))
    if sandbox:
        return [
            Problem(
                "swap",
                "swap is on (sandbox host: this is the machine's swap, shared by its kernel)",
                found=found,
                need="no swap",
                fix="run swapoff -a on the machine itself; smcp never turns swap off from a sandbox host",
            )
        ]
    return [
        Problem(
            "swap",
            "swap is on; the kubelet refuses to start with swap by default",
            found=found,
            need="no swap",
            fix="run swapoff -a and remove swap entries from /etc/fstab (host_prep does both)",
        )
    ]


def _check_cgroup(facts, settings, roles, sandbox):
    cg = facts.get("cgroup", {})
    version = cg.get("version")
    if not version:
        return [
            Problem(
                "cgroup",
                "no cgroup filesystem found",
                found="neither /sys/fs/cgroup/cgroup.controllers nor /proc/cgroups",
                need="cgroup v2 (or v1) with cpu, cpuset, memory, pids",
                fix="mount cgroup2 on /sys/fs/cgroup (systemd does this at boot)",
            )
        ]
    required = REQUIRED_CGROUP_V2 if version == 2 else REQUIRED_CGROUP_V1
    missing = [c for c in required if c not in cg.get("controllers", ())]
    problems = []
    if missing:
        problems.append(
            Problem(
                "cgroup",
                "cgroup v%d controllers missing" % version,
                found=", ".join(cg.get("controllers", ())) or "none",
                need=", ".join(required),
                fix="enable them on the kernel command line (e.g. cgroup_enable=memory) and reboot",
            )
        )
    if version == 1:
        problems.append(
            Problem(
                "cgroup",
                "cgroup v1%s is deprecated by Kubernetes 1.31+ and refused by default from 1.35"
                % (" (hybrid)" if cg.get("hybrid") else ""),
                found="cgroup v1",
                need="cgroup v2",
                fix="boot with systemd.unified_cgroup_hierarchy=1"
                + (" (sandbox host: the machine's kernel decides)" if sandbox else ""),
                severity=WARNING,
            )
        )
    return problems


def _module_load_blocker(kernel, name, sandbox):
    """Why host_prep could not load the available module ``name`` (found, fix), or None when it can."""
    if sandbox:
        return (
            "sandbox host: host_prep loads no module into the machine's kernel",
            "load it on the machine: modprobe %s (persist it in /etc/modules-load.d)" % name,
        )
    if kernel.get("modules_supported") is False:
        return (
            "a kernel without loadable module support (no /proc/modules)",
            "boot a kernel with %s built in or loadable" % name,
        )
    if kernel.get("modules_disabled"):
        return (
            "module loading disabled (kernel.modules_disabled=1)",
            "load %s at boot before loading is disabled (/etc/modules-load.d), then reboot" % name,
        )
    if kernel.get("modprobe") is False:
        return ("no modprobe on the host", "install the kmod package (apt-get install kmod)")
    return None


def _kernel_feature(check, kernel, name, what_for, sandbox):
    if kernel.get(name):
        return []
    if kernel.get(name + "_module"):
        blocker = _module_load_blocker(kernel, name, sandbox)
        if blocker is not None:
            return [
                Problem(
                    check,
                    "kernel module %s is not loaded and cannot be loaded (%s)" % (name, what_for),
                    found=blocker[0],
                    need="%s loaded, built in, or loadable with modprobe" % name,
                    fix=blocker[1],
                )
            ]
        return [
            Problem(
                check,
                "kernel module %s is not loaded (%s)" % (name, what_for),
                found="available as a module",
                need="loaded",
                fix="none needed: host_prep loads it and persists it in /etc/modules-load.d",
                severity=WARNING,
            )
        ]
    return [
        Problem(
            check,
            "kernel has no %s support (%s)" % (name, what_for),
            found="not built in, not in /lib/modules",
            need="%s built in or as a module" % name,
            fix="install a kernel with %s (e.g. the distribution's generic kernel)" % name,
        )
    ]


def _check_overlay(facts, settings, roles, sandbox):
    return _kernel_feature("kernel_overlay", facts.get("kernel", {}), "overlay", "containerd's snapshotter", sandbox)


def _check_br_netfilter(facts, settings, roles, sandbox):
    k = facts.get("kernel", {})
    problems = _kernel_feature("kernel_br_netfilter", k, "br_netfilter", "bridged pod traffic", sandbox)
    if k.get("br_netfilter") and k.get("bridge_nf_call_iptables") not in (None, "1"):
        problems.append(
            Problem(
                "kernel_br_netfilter",
                "net.bridge.bridge-nf-call-iptables is off",
                found=k.get("bridge_nf_call_iptables"),
                need="1",
                fix="none needed: host_prep sets it",
                severity=WARNING,
            )
        )
    return problems


def _check_kernel_modules(facts, settings, roles, sandbox):
    """The further modules host_prep loads (host_prep_kernel_modules): loaded, built in, or loadable."""
    kernel = facts.get("kernel", {})
    problems = []
    for name, state in sorted((kernel.get("modules") or {}).items()):
        view = dict(kernel, **{name: state.get("loaded"), name + "_module": state.get("available")})
        problems.extend(_kernel_feature("kernel_modules", view, name, "host_prep_kernel_modules", sandbox))
    return problems


def _check_ip_forward(facts, settings, roles, sandbox):
    value = facts.get("kernel", {}).get("ip_forward")
    if value == "1":
        return []
    if value is None:
        return [
            Problem(
                "ip_forward",
                "net.ipv4.ip_forward cannot be read",
                found="no /proc/sys/net/ipv4/ip_forward",
                need="1",
                fix="make sure /proc/sys is mounted and IPv4 is enabled",
            )
        ]
    return [
        Problem(
            "ip_forward",
            "net.ipv4.ip_forward is off",
            found=value,
            need="1",
            fix="none needed: host_prep sets it",
            severity=WARNING,
        )
    ]


def _check_time_sync(facts, settings, roles, sandbox):
    ts = facts.get("time_sync", {})
    state = ts.get("state")
    daemons = ", ".join(ts.get("daemons") or ()) or "none running"
    if state == "synchronized":
        return []
    if state == "unknown":
        return [
            Problem(
                "time_sync",
                "clock synchronisation state unknown",
                found="adjtimex unavailable; time daemons: %s" % daemons,
                need="a synchronized clock",
                fix="check chronyc tracking or timedatectl yourself",
                severity=WARNING,
            )
        ]
    if sandbox:
        return [
            Problem(
                "time_sync",
                "clock not synchronized (sandbox host: this is the machine's clock)",
                found="kernel reports unsynchronized; time daemons: %s" % daemons,
                need="a synchronized clock",
                fix="synchronize the machine's clock; sandbox hosts cannot",
                severity=WARNING,
            )
        ]
    if not ts.get("daemons"):
        return [
            Problem(
                "time_sync",
                "clock not synchronized and no time daemon running",
                found="kernel reports unsynchronized; time daemons: none running",
                need="a synchronized clock",
                fix="none needed if host_prep_time_sync is on: host_prep installs and starts chrony",
                severity=WARNING,
            )
        ]
    return [
        Problem(
            "time_sync",
            "clock not synchronized although a time daemon runs (etcd and TLS certificates need agreeing clocks)",
            found="kernel reports unsynchronized; time daemons: %s" % daemons,
            need="a synchronized clock",
            fix="check that the daemon reaches its servers (chronyc sources) and wait until it syncs",
        )
    ]


# A value refused for the reasons its rule gives: kind -> (check id, what, need, fix); fix may name {local}.
_REFUSED = {
    "node_name": (
        "hostname",
        "the node name host_prep will set is not a valid Kubernetes node name",
        "a lower-case RFC 1123 name",
        "rename the inventory host (or set host_prep_hostname) to a lower-case name",
    ),
    "hostname": (
        "hostname",
        "hostname is not a valid Kubernetes node name",
        "a lower-case RFC 1123 name",
        "hostnamectl set-hostname <lower-case name> and update /etc/hosts",
    ),
    "node_ip": (
        "node_ip",
        "node IP is neither an IP address nor a DNS name",
        "an IP address on one of the node's interfaces",
        "set smcp_node_ip (host_vars) to one of the local addresses: {local}",
    ),
}


def _refused(kind, value, reasons, local=""):
    """[the failure for ``value`` of kind ``kind`` (see _REFUSED)] when there are reasons, else []."""
    if not reasons:
        return []
    check, what, need, fix = _REFUSED[kind]
    what = "%s (%s)" % (what, "; ".join(reasons))
    return [Problem(check, what, found=repr(value), need=need, fix=fix.format(local=local))]


def _check_hostname(facts, settings, roles, sandbox):
    current = facts.get("hostname", "")
    expected = settings.get("expected_hostname")
    if not expected:
        return _refused("hostname", current, hostname_problems(current))
    problems = _refused("node_name", expected, hostname_problems(expected))
    if problems or expected == current:
        return problems
    return [
        Problem(
            "hostname",
            "hostname differs from the node name",
            found=repr(current),
            need=repr(expected),
            fix="none needed: host_prep sets the hostname",
            severity=WARNING,
        )
    ]


def _check_node_ip(facts, settings, roles, sandbox):
    node_ip = settings.get("node_ip") or ""
    resolved = list(settings.get("node_ip_addresses") or ())
    local = set(facts.get("addresses") or ())
    try:
        node_ip = str(ipaddress.ip_address(node_ip))
        is_ip = True
    except ValueError:
        is_ip = False
    if is_ip:
        if node_ip in local:
            return []
        return [
            Problem(
                "node_ip",
                "node IP is not configured on any interface",
                found="%s; local addresses: %s" % (node_ip, ", ".join(_usable(local)) or "none"),
                need="smcp_node_ip on one of the node's interfaces",
                fix="set smcp_node_ip (host_vars) to one of the local addresses",
            )
        ]
    problems = _refused("node_ip", node_ip, netrules.address_reasons(node_ip), ", ".join(_usable(local)) or "none")
    if problems:
        return problems
    mine = [a for a in resolved if a in local]
    return [
        Problem(
            "node_ip",
            "node IP is a name, not an IP address",
            found="%r resolving to %s" % (node_ip, ", ".join(resolved) or "nothing"),
            need="an IP address on one of the node's interfaces",
            fix="set smcp_node_ip to %s" % (mine[0] if mine else "one of the local addresses"),
        )
    ]


def _usable(addresses):
    # type: (object) -> list
    """Addresses other nodes could use: no loopback, no link-local."""
    result = []
    for text in sorted(addresses or ()):
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            continue
        if not (addr.is_loopback or addr.is_link_local):
            result.append(text)
    return result


def _is_member(facts, settings):
    # type: (dict, dict) -> bool
    """The host already belongs to this smcp cluster (its marker names smcp_cluster_name)."""
    marker = facts.get("smcp_cluster")
    return bool(marker) and marker == settings.get("cluster_name")


def _describe_holder(holder):
    # type: (object) -> str
    if isinstance(holder, dict):
        pid = holder.get("pid")
        return "%s%s (%s)" % (holder.get("process", "?"), "[%s]" % pid if pid else "", holder.get("address", "?"))
    return str(holder)


def _check_ports(facts, settings, roles, sandbox):
    wanted = required_ports(roles, settings.get("extra_ports"))
    member = _is_member(facts, settings)
    problems = []
    for port in wanted:
        holders = (facts.get("port_conflicts") or {}).get(str(port))
        if holders and member:
            # a re-run on a node of this cluster: its own components hold their ports
            holders = [
                h for h in holders if not (isinstance(h, dict) and h.get("process") in EXPECTED_OWNERS.get(port, ()))
            ]
        if holders:
            problems.append(
                Problem(
                    "ports",
                    "TCP port %d (%s) is already in use" % (port, PORT_OWNERS.get(port, "needed by the node's roles")),
                    found=", ".join(_describe_holder(h) for h in holders),
                    need="port %d free" % port,
                    fix="stop or move the service listening on it",
                )
            )
    return problems


def _check_pkg_lock(facts, settings, roles, sandbox):
    locks = facts.get("pkg_locks") or {}
    if not locks:
        return []
    return [
        Problem(
            "pkg_lock",
            "package manager lock is held",
            found=", ".join("%s by %s" % (path, holder) for path, holder in sorted(locks.items())),
            need="no lock held",
            fix="wait for the running package operation (often unattended-upgrades) to finish, then run again",
        )
    ]


def _check_existing(facts, settings, roles, sandbox):
    existing = facts.get("existing") or {}
    problems = []
    marker = facts.get("smcp_cluster")
    cluster = settings.get("cluster_name")
    if marker and cluster and marker != cluster:
        problems.append(
            Problem(
                "existing_install",
                "the host already belongs to another smcp cluster",
                found="%s names cluster %r" % (CLUSTER_MARKER, marker),
                need="cluster %r or a fresh host" % cluster,
                fix="remove the host from cluster %r first (reset), or correct smcp_cluster_name" % marker,
            )
        )
    elif existing.get("kubernetes") and not _is_member(facts, settings):
        problems.append(
            Problem(
                "existing_install",
                "an existing Kubernetes or etcd installation was found",
                found=", ".join(existing["kubernetes"]),
                need="a host without Kubernetes (or one smcp prepared for this cluster: %s)" % CLUSTER_MARKER,
                fix="remove it first (kubeadm reset; etcd: stop it and remove its data directory)",
            )
        )
    if existing.get("container_runtime"):
        problems.append(
            Problem(
                "existing_install",
                "a container runtime is already installed; smcp will take over containerd's configuration",
                found=", ".join(existing["container_runtime"]),
                need="no other runtime (docker, cri-o) in use",
                fix="none if it is containerd you do not use otherwise; remove docker/cri-o first",
                severity=WARNING,
            )
        )
    return problems


_NODE_CHECKS = (
    _check_os,
    _check_arch,
    _check_cpu,
    _check_memory,
    _check_disk,
    _check_swap,
    _check_cgroup,
    _check_overlay,
    _check_br_netfilter,
    _check_kernel_modules,
    _check_ip_forward,
    _check_time_sync,
    _check_hostname,
    _check_node_ip,
    _check_ports,
    _check_pkg_lock,
    _check_existing,
)
