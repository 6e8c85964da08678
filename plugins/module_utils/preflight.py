# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Host preflight checks for smcp nodes.

Three layers, each usable on its own and unit-tested without a host:

* parsers (``parse_*``): turn the text of /proc and /etc files into data;
* ``collect(view)``: reads everything a check needs from a ``HostView`` (the
  real host, or a fake in tests) in one pass and returns plain ``facts``;
* ``evaluate(facts, settings)``: runs every check over the facts and returns
  ``Problem`` objects (failures and warnings), each with a stable check id.

Nothing here changes the host: files are only opened read-only and lock files
are tested with ``F_GETLK`` (never created, never locked).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import re
import socket
import struct

from ansible_collections.smcp.platform.plugins.module_utils import netrules

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX controller importing the constants
    fcntl = None  # type: ignore[assignment]

# --------------------------------------------------------------------------- ids

NODE_CHECK_IDS = (
    "os_supported",
    "arch",
    "cpu",
    "memory",
    "disk",
    "swap",
    "cgroup",
    "kernel_overlay",
    "kernel_br_netfilter",
    "ip_forward",
    "time_sync",
    "hostname",
    "node_ip",
    "ports",
    "pkg_lock",
    "existing_install",
)
CLUSTER_CHECK_IDS = (
    "duplicate_hostname",
    "duplicate_ip",
    "etcd_count",
    "control_plane_present",
    "pod_cidr",
    "service_cidr",
    "cidr_overlap",
    "unreachable",
)
ALL_CHECK_IDS = NODE_CHECK_IDS + CLUSTER_CHECK_IDS

NODE_ROLES = ("control_plane", "etcd", "worker")

FAILURE = "failure"
WARNING = "warning"

# ------------------------------------------------------------------ support data

# Operating systems smcp declares support for. ``tested`` lists the versions the
# project's own tests run on; declared-but-untested versions produce a warning.
SUPPORT_TABLE = (
    {"family": "Debian", "ids": ("debian",), "versions": ("12", "13"), "tested": ("12",), "major_only": False},
    {"family": "Ubuntu", "ids": ("ubuntu",), "versions": ("22.04", "24.04"), "tested": (), "major_only": False},
    {
        "family": "RedHat",
        "ids": ("rhel", "rocky", "almalinux", "centos", "ol"),
        "versions": ("9",),
        "tested": (),
        "major_only": True,
    },
)

SUPPORTED_ARCHES = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

# Per-role minimums; a node in several roles must meet the largest value.
DEFAULT_MIN_CPUS = {"control_plane": 2, "etcd": 1, "worker": 1}
DEFAULT_MIN_MEMORY_MB = {"control_plane": 1700, "etcd": 1024, "worker": 1024}
# Free space (MiB) required on each of the checked paths (default / and /var).
DEFAULT_MIN_DISK_MB = {"control_plane": 4096, "etcd": 2048, "worker": 4096}
DEFAULT_DISK_PATHS = ("/", "/var")

# TCP ports a node's roles listen on (kubelet and kube-proxy health run on every
# Kubernetes node; etcd-only hosts run etcd alone).
ROLE_PORTS = {
    "control_plane": (6443, 10250, 10256, 10257, 10259),
    "etcd": (2379, 2380),
    "worker": (10250, 10256),
}
PORT_OWNERS = {
    6443: "kube-apiserver",
    2379: "etcd client",
    2380: "etcd peer",
    10250: "kubelet",
    10256: "kube-proxy health",
    10257: "kube-controller-manager",
    10259: "kube-scheduler",
}

# Process names (comm, 15 chars max) of the components that own those ports in an smcp cluster.
EXPECTED_OWNERS = {
    6443: ("kube-apiserver",),
    2379: ("etcd",),
    2380: ("etcd",),
    10250: ("kubelet",),
    10256: ("kube-proxy",),
    10257: ("kube-controller",),
    10259: ("kube-scheduler",),
}

# Written by smcp (host_prep) on every host it prepares: the name of the cluster the host belongs to.
CLUSTER_MARKER = "/etc/smcp/cluster"

# cgroup controllers the kubelet requires.
REQUIRED_CGROUP_V1 = ("cpu", "cpuacct", "cpuset", "devices", "freezer", "memory", "pids")
REQUIRED_CGROUP_V2 = ("cpu", "cpuset", "memory", "pids")

PKG_LOCK_FILES = (
    "/var/lib/dpkg/lock-frontend",
    "/var/lib/dpkg/lock",
    "/var/lib/apt/lists/lock",
    "/var/cache/apt/archives/lock",
    "/var/lib/rpm/.rpm.lock",
)

# Files or directories whose presence means Kubernetes (or its etcd) is installed.
KUBERNETES_PATHS = (
    "/etc/kubernetes/admin.conf",
    "/etc/kubernetes/kubelet.conf",
    "/etc/kubernetes/manifests/kube-apiserver.yaml",
    "/etc/kubernetes/manifests/etcd.yaml",
    "/etc/kubernetes/pki/ca.crt",
    "/var/lib/kubelet/config.yaml",
    "/var/lib/etcd/member",
)
KUBERNETES_BINARIES = ("kubelet", "kubeadm", "kube-apiserver", "k3s", "rke2")
KUBERNETES_PROCESSES = ("kubelet", "kube-apiserver", "etcd", "k3s-server", "k3s-agent", "rke2")
RUNTIME_BINARIES = ("containerd", "dockerd", "crio")
RUNTIME_PROCESSES = ("containerd", "dockerd", "crio")
BIN_DIRS = ("/usr/bin", "/usr/local/bin", "/usr/sbin", "/usr/local/sbin", "/opt/bin")
# /proc/<pid>/comm holds at most 15 characters: systemd-timesyncd shows as systemd-timesyn.
TIME_DAEMONS = ("chronyd", "systemd-timesyn", "ntpd", "openntpd", "timesyncd")

# adjtimex(2) return values
_TIME_ERROR = 5


# ---------------------------------------------------------------------- problems


class Problem(object):
    """One finding of one check: what is wrong, what was found and needed, and the fix."""

    __slots__ = ("check", "fix", "found", "need", "severity", "what")

    def __init__(self, check, what, found="", need="", fix="", severity=FAILURE):
        # type: (str, str, object, object, str, str) -> None
        self.check = check
        self.what = what
        self.found = "" if found is None else str(found)
        self.need = "" if need is None else str(need)
        self.fix = fix
        self.severity = severity

    def message(self, host=None):
        # type: (str | None) -> str
        """``<host>: [<id>] <what> (found X, need Y); fix: <how>``."""
        text = "[%s] %s" % (self.check, self.what)
        details = []
        if self.found:
            details.append("found %s" % self.found)
        if self.need:
            details.append("need %s" % self.need)
        if details:
            text += " (%s)" % ", ".join(details)
        if self.fix:
            text += "; fix: %s" % self.fix
        return "%s: %s" % (host, text) if host else text

    def as_dict(self, host=None):
        # type: (str | None) -> dict
        return {
            "id": self.check,
            "severity": self.severity,
            "what": self.what,
            "found": self.found,
            "need": self.need,
            "fix": self.fix,
            "msg": self.message(host),
        }

    def __repr__(self):
        return "Problem(%s)" % self.message()


def apply_warn_only(problems, warn_only):
    # type: (list, object) -> list
    """Downgrade the failures of the checks named in ``warn_only`` to warnings."""
    chosen = set(warn_only or ())
    for problem in problems:
        if problem.check in chosen and problem.severity == FAILURE:
            problem.severity = WARNING
            problem.what += " (downgraded to a warning by warn_only)"
    return problems


def split(problems):
    # type: (list) -> tuple
    failures = [p for p in problems if p.severity == FAILURE]
    warnings = [p for p in problems if p.severity != FAILURE]
    return failures, warnings


def unknown_check_ids(ids):
    # type: (object) -> list
    return sorted(set(ids or ()) - set(ALL_CHECK_IDS))


# ----------------------------------------------------------------------- parsers


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


# ------------------------------------------------------------------ host access


class HostView(object):
    """Read-only access to the host. Tests subclass it (or point ``root`` at a tree)."""

    def __init__(self, root="/"):
        # type: (str) -> None
        self.root = root

    def path(self, path):
        # type: (str) -> str
        return os.path.join(self.root, path.lstrip("/"))

    def read(self, path):
        # type: (str) -> str | None
        try:
            with open(self.path(path), "r", errors="replace") as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def exists(self, path):
        # type: (str) -> bool
        return os.path.lexists(self.path(path))

    def isdir(self, path):
        # type: (str) -> bool
        return os.path.isdir(self.path(path))

    def listdir(self, path):
        # type: (str) -> list
        try:
            return os.listdir(self.path(path))
        except OSError:
            return []

    def readlink(self, path):
        # type: (str) -> str | None
        try:
            return os.readlink(self.path(path))
        except OSError:
            return None

    def disk(self, path):
        # type: (str) -> dict | None
        """Free MiB and device id of the filesystem holding ``path``."""
        try:
            st = os.statvfs(self.path(path))
            dev = os.stat(self.path(path)).st_dev
        except OSError:
            return None
        return {"free_mb": st.f_bavail * st.f_frsize // (1024 * 1024), "dev": dev}

    def cpus(self):
        # type: () -> int
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 0

    def machine(self):
        # type: () -> str
        return os.uname()[4]

    def kernel_release(self):
        # type: () -> str
        return os.uname()[2]

    def hostname(self):
        # type: () -> str
        text = self.read("/proc/sys/kernel/hostname")
        return text.strip() if text else socket.gethostname()

    def clock_state(self):
        # type: () -> str
        """``synchronized``, ``unsynchronized`` or ``unknown`` from adjtimex(2) (read-only, modes=0)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the running interpreter's libc
            buf = ctypes.create_string_buffer(512)
            state = libc.adjtimex(buf)
        except (OSError, AttributeError):
            return "unknown"
        if state < 0:
            return "unknown"
        return "unsynchronized" if state == _TIME_ERROR else "synchronized"

    def lock_holder(self, path):
        # type: (str) -> int | None
        """PID holding a POSIX lock on ``path`` (0 if held by an unknown pid), None if free/absent.

        Opens read-only and asks F_GETLK whether a write lock could be placed;
        nothing is locked or created.
        """
        if fcntl is None:
            return None
        try:
            fd = os.open(self.path(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            query = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0)
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
            l_type, _whence, _start, _len, pid = struct.unpack("hhqqi4x", answer)
        except (OSError, IOError, struct.error):
            return None
        finally:
            os.close(fd)
        if l_type == fcntl.F_UNLCK:
            return None
        return pid

    def resolve(self, name):
        # type: (str) -> list
        try:
            infos = socket.getaddrinfo(name, None)
        except (socket.gaierror, UnicodeError):
            return []
        return sorted(set(info[4][0] for info in infos))

    def processes(self):
        # type: () -> dict
        """pid -> command name for every process visible in /proc."""
        result = {}
        for entry in self.listdir("/proc"):
            if entry.isdigit():
                comm = self.read("/proc/%s/comm" % entry)
                if comm:
                    result[int(entry)] = comm.strip()
        return result

    def socket_owners(self, inodes):
        # type: (set) -> dict
        """Map socket inode -> 'comm[pid]' by scanning /proc/<pid>/fd (only when a port is taken)."""
        owners = {}
        wanted = set("socket:[%s]" % inode for inode in inodes)
        for pid in self.listdir("/proc"):
            if not pid.isdigit() or len(owners) == len(wanted):
                continue
            for fd in self.listdir("/proc/%s/fd" % pid):
                target = self.readlink("/proc/%s/fd/%s" % (pid, fd))
                if target in wanted:
                    comm = (self.read("/proc/%s/comm" % pid) or "?").strip()
                    owners[target[8:-1]] = "%s[%s]" % (comm, pid)
        return owners


# --------------------------------------------------------------------- collect


def collect(view, disk_paths=DEFAULT_DISK_PATHS, wanted_ports=()):
    # type: (HostView, object, object) -> dict
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


# -------------------------------------------------------------------- evaluate


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


def _kernel_feature(check, loaded, available, name, what_for):
    if loaded:
        return []
    if available:
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
    k = facts.get("kernel", {})
    return _kernel_feature(
        "kernel_overlay", k.get("overlay"), k.get("overlay_module"), "overlay", "containerd's snapshotter"
    )


def _check_br_netfilter(facts, settings, roles, sandbox):
    k = facts.get("kernel", {})
    problems = _kernel_feature(
        "kernel_br_netfilter",
        k.get("br_netfilter"),
        k.get("br_netfilter_module"),
        "br_netfilter",
        "bridged pod traffic",
    )
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


def _check_hostname(facts, settings, roles, sandbox):
    current = facts.get("hostname", "")
    expected = settings.get("expected_hostname")
    if expected:
        reasons = hostname_problems(expected)
        if reasons:
            return [
                Problem(
                    "hostname",
                    "the node name host_prep will set is not a valid Kubernetes node name (%s)" % "; ".join(reasons),
                    found=repr(expected),
                    need="a lower-case RFC 1123 name",
                    fix="rename the inventory host (or set host_prep_hostname) to a lower-case name",
                )
            ]
        if expected != current:
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
        return []
    reasons = hostname_problems(current)
    if not reasons:
        return []
    return [
        Problem(
            "hostname",
            "hostname is not a valid Kubernetes node name (%s)" % "; ".join(reasons),
            found=repr(current),
            need="a lower-case RFC 1123 name",
            fix="hostnamectl set-hostname <lower-case name> and update /etc/hosts",
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
    reasons = netrules.address_reasons(node_ip)
    if reasons:
        return [
            Problem(
                "node_ip",
                "node IP is neither an IP address nor a DNS name (%s)" % "; ".join(reasons),
                found=repr(node_ip),
                need="an IP address on one of the node's interfaces",
                fix="set smcp_node_ip (host_vars) to one of the local addresses: %s"
                % (", ".join(_usable(local)) or "none"),
            )
        ]
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
    _check_ip_forward,
    _check_time_sync,
    _check_hostname,
    _check_node_ip,
    _check_ports,
    _check_pkg_lock,
    _check_existing,
)


def run_preflight(view, settings):
    # type: (HostView, dict) -> dict
    """Collect, evaluate and build the module result (``facts``, ``failures``, ``warnings``, ``checks``)."""
    roles = list(settings.get("roles") or ())
    disk_paths = settings.get("disk_paths") or DEFAULT_DISK_PATHS
    facts = collect(view, disk_paths, required_ports(roles, settings.get("extra_ports")))
    settings = dict(settings)
    settings["node_ip_addresses"] = resolve_node_ip(view, settings.get("node_ip") or "")
    problems = evaluate(facts, settings)
    failures, warnings = split(problems)
    status = dict((check, "ok") for check in NODE_CHECK_IDS)
    for problem in warnings:
        status[problem.check] = WARNING
    for problem in failures:
        status[problem.check] = FAILURE
    return {
        "node_ip": settings.get("node_ip"),
        "node_name": settings.get("expected_hostname") or facts.get("hostname"),
        "roles": roles,
        "sandbox": bool(settings.get("sandbox")),
        "facts": facts,
        "checks": status,
        "failures": [p.as_dict() for p in failures],
        "warnings": [p.as_dict() for p in warnings],
    }


__all__ = [
    "ALL_CHECK_IDS",
    "CLUSTER_CHECK_IDS",
    "NODE_CHECK_IDS",
    "HostView",
    "Problem",
    "collect",
    "evaluate",
    "run_preflight",
]
