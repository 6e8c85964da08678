# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""The Kubernetes versions table: which Kubernetes releases smcp installs, with what.

Pure standard library, importable by modules, plugins, unit tests and the API as
``ansible_collections.smcp.platform.plugins.module_utils.versions``. The data (with the
origin of every checksum) lives in ``versions_data.py``; CNI versions per minor come from
``cni_versions.py``.

``release("1.35.0")`` returns::

    {"version": "1.35.0", "minor": "1.35", "arches": ["amd64", "arm64"],
     "files": {"kubeadm": {"version": "1.35.0", "url": "https://dl.k8s.io/.../{arch}/kubeadm",
                           "sha256": {"amd64": "...", "arm64": "..."},
                           "source": "https://dl.k8s.io/.../{arch}/kubeadm.sha256",
                           "via": "<where the sum was read>", "kind": "binary"}, ...},
     "images": {"kube-apiserver": "registry.k8s.io/kube-apiserver:v1.35.0", ...},
     "image_digests": {"kube-apiserver": None, ...},
     "cni": {...}}

URLs keep the ``{arch}`` placeholder (the component version is filled in already), so
``url.format(arch="amd64")`` (or with ``version=`` too) gives the download URL.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from ansible_collections.smcp.platform.plugins.module_utils.versions_data import (
    COMPONENTS,
    KUBE_BINARIES,
    KUBESPRAY,
    MINORS,
    SOURCES,
    URLS,
)

try:
    from ansible_collections.smcp.platform.plugins.module_utils.cni_versions import CNI_BY_MINOR
except ImportError:  # pragma: no cover - the CNI table is optional for this module
    CNI_BY_MINOR = {}

ARCHES = ("amd64", "arm64")
FILE_NAMES = ("kubeadm", "kubelet", "kubectl", "crictl", "cni_plugins", "containerd", "runc", "etcd")
# How each file is installed: a bare executable or a tar.gz archive.
FILE_KINDS = {
    "kubeadm": "binary",
    "kubelet": "binary",
    "kubectl": "binary",
    "crictl": "archive",
    "cni_plugins": "archive",
    "containerd": "archive",
    "runc": "binary",
    "etcd": "archive",
}
IMAGE_NAMES = (
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kube-proxy",
    "coredns",
    "pause",
    "etcd",
)
UPSTREAM_REGISTRY = "registry.k8s.io"

_VERSION_RE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)$")


class UnknownVersionError(ValueError):
    """The requested Kubernetes version is not in the versions table."""


def parse_version(text: str) -> tuple[int, int, int]:
    """'v1.35.0' or '1.35.0' -> (1, 35, 0); ValueError naming the expected form."""
    match = _VERSION_RE.match(str(text).strip())
    if not match:
        raise ValueError(
            f"'{text}' is not a Kubernetes version: use MAJOR.MINOR.PATCH such as "
            f"{newest_patch(supported_minors()[-1])} (a leading 'v' is accepted)"
        )
    return int(match.group(1)), int(match.group(2)), int(match.group(3))


def normalise(text: str) -> str:
    """'v1.35.0' -> '1.35.0' (format check only; see release() for support)."""
    return "%d.%d.%d" % parse_version(text)


def _key(version: str) -> tuple[int, int, int]:
    return parse_version(version)


def supported_versions() -> list[str]:
    """Every Kubernetes version of the table, oldest first."""
    return sorted(KUBE_BINARIES, key=_key)


def supported_minors() -> list[str]:
    """'1.33', '1.34', ... oldest first."""
    minors = {"%d.%d" % _key(v)[:2] for v in KUBE_BINARIES}
    return sorted(minors, key=lambda m: tuple(int(p) for p in m.split(".")))


def newest_patch(minor: str) -> str:
    """Newest patch release of a minor ('1.35' or 'v1.35'); UnknownVersionError if none."""
    wanted = str(minor).strip().lstrip("v")
    patches = [v for v in supported_versions() if "%d.%d" % _key(v)[:2] == wanted]
    if not patches:
        raise UnknownVersionError(
            f"Kubernetes minor '{minor}' is not in the versions table; supported minors: "
            f"{', '.join(supported_minors())}"
        )
    return patches[-1]


def is_supported(version: str) -> bool:
    try:
        return normalise(version) in KUBE_BINARIES
    except ValueError:
        return False


def _file(name: str, version: str, sums: dict[str, str], via: str) -> dict[str, Any]:
    return {
        "version": version,
        "url": URLS[name].replace("{version}", version),
        "sha256": dict(sums),
        "source": SOURCES[name].replace("{version}", version),
        "via": via,
        "kind": FILE_KINDS[name],
    }


def release(version: str) -> dict[str, Any]:
    """The full release record of one Kubernetes version (see the module docstring)."""
    wanted = normalise(version)
    if wanted not in KUBE_BINARIES:
        raise UnknownVersionError(
            f"Kubernetes {version} is not in the versions table "
            f"(plugins/module_utils/versions_data.py); supported versions: {', '.join(supported_versions())}"
        )
    minor = "%d.%d" % _key(wanted)[:2]
    per_minor = MINORS[minor]
    files: dict[str, Any] = {}
    for name, sums in KUBE_BINARIES[wanted].items():
        files[name] = _file(name, wanted, sums, KUBESPRAY + " (%s_checksums)" % name)
    tables = {"crictl": "crictl_checksums", "cni_plugins": "cni_binary_checksums"}
    tables.update(containerd="containerd_archive_checksums", runc="runc_checksums", etcd="etcd_binary_checksums")
    for name, comp_version in per_minor["components"].items():
        files[name] = _file(name, comp_version, COMPONENTS[name][comp_version], f"{KUBESPRAY} ({tables[name]})")
    tags = per_minor["images"]
    images = {
        "kube-apiserver": f"{UPSTREAM_REGISTRY}/kube-apiserver:v{wanted}",
        "kube-controller-manager": f"{UPSTREAM_REGISTRY}/kube-controller-manager:v{wanted}",
        "kube-scheduler": f"{UPSTREAM_REGISTRY}/kube-scheduler:v{wanted}",
        "kube-proxy": f"{UPSTREAM_REGISTRY}/kube-proxy:v{wanted}",
        "coredns": f"{UPSTREAM_REGISTRY}/coredns/coredns:{tags['coredns']}",
        "pause": f"{UPSTREAM_REGISTRY}/pause:{tags['pause']}",
        "etcd": f"{UPSTREAM_REGISTRY}/etcd:{tags['etcd']}",
    }
    return {
        "version": wanted,
        "minor": minor,
        "arches": list(ARCHES),
        "files": files,
        "images": images,
        # No upstream-published digests were found for these tags (see versions_data.py).
        "image_digests": {name: None for name in images},
        "cni": copy.deepcopy(CNI_BY_MINOR.get(minor, {})),
    }


def file_url(rel: dict[str, Any], name: str, arch: str) -> str:
    """Download URL of one file of a release for one architecture."""
    return rel["files"][name]["url"].replace("{arch}", arch)


def expected_sha256(rel: dict[str, Any], name: str, arch: str) -> str:
    """Published sha256 of one file; ValueError if the table has none for the arch."""
    sums = rel["files"][name]["sha256"]
    if arch not in sums:
        raise ValueError(
            f"the versions table has no {arch} sum for {name} {rel['files'][name]['version']}; "
            f"architectures: {', '.join(sorted(sums))}"
        )
    return sums[arch]


def mirror_image(ref: str, registry: str) -> str:
    """registry.k8s.io/X -> <registry>/X ('' keeps the upstream reference)."""
    registry = registry.strip().rstrip("/")
    if not registry or not ref.startswith(UPSTREAM_REGISTRY + "/"):
        return ref
    return registry + ref[len(UPSTREAM_REGISTRY) :]
