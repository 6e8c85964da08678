# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Preflight data: check ids, the OS support table, per-role minimums, ports and paths."""

from __future__ import annotations

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
    "kernel_modules",
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
