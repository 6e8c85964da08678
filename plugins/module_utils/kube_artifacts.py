# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""What the kube_artifacts role fetches and installs, as data (pure, unit-tested).

``plan()`` turns a release of the versions table, the host's architecture and the chosen
source (upstream URLs, an offline bundle over HTTP, or a bundle directory on the controller)
into a list of items, each with its expected sha256, where it comes from and where it goes.
Every input problem (a bundle for another version or architecture, a manifest entry whose
sum disagrees with the expected one, a missing file) is raised here, before any change.
``needed()`` keeps the items a host does not have yet (from the role's state probe).
"""

from __future__ import annotations

import posixpath
from typing import Any, Mapping, Optional, Sequence

from ansible_collections.smcp.platform.plugins.module_utils.artifact_fetch import (
    ArtifactError,
    ChecksumMismatch,
    normalise_sha256,
)

SOURCES = ("upstream", "bundle_url", "bundle_dir")
BINARIES = ("kubeadm", "kubelet", "kubectl", "runc")
MANIFEST_FORMAT = 1


class PlanError(ArtifactError):
    """The requested artifacts cannot be planned (bad input); nothing was changed."""


def image_repository(ref: str) -> str:
    """'registry.k8s.io/kube-apiserver:v1.35.0' -> 'registry.k8s.io/kube-apiserver'."""
    name = ref.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def check_manifest(manifest: Any, version: str, arch: str, where: str) -> None:
    if not isinstance(manifest, Mapping):
        raise PlanError(f"bundle manifest {where} is not a JSON object")
    if manifest.get("format") != MANIFEST_FORMAT:
        raise PlanError(f"bundle manifest {where} has format {manifest.get('format')!r}; expected {MANIFEST_FORMAT}")
    if manifest.get("kubernetes_version") != version:
        raise PlanError(
            f"bundle manifest {where} is for Kubernetes {manifest.get('kubernetes_version')!r}, not {version}: "
            f"build a bundle for {version} (playbook smcp.platform.artifacts) or set smcp_kubernetes_version"
        )
    if manifest.get("arch") != arch:
        raise PlanError(
            f"bundle manifest {where} is for architecture {manifest.get('arch')!r}, but the host is {arch}: "
            "use a bundle built for that architecture"
        )


def _join(base: str, path: str) -> str:
    return base.rstrip("/") + "/" + path.lstrip("/")


def plan(
    release: Mapping[str, Any],
    arch: str,
    *,
    files: Sequence[str],
    source: str = "upstream",
    checksums: Optional[Mapping[str, str]] = None,
    manifest: Optional[Mapping[str, Any]] = None,
    bundle_url: str = "",
    bundle_dir: str = "",
    cache_dir: str = "",
    stage_dir: str = "/var/cache/smcp/kube-artifacts",
    bin_dir: str = "/usr/local/bin",
    cni_bin_dir: str = "/opt/cni/bin",
    images: bool = True,
    urls: Optional[Mapping[str, str]] = None,
) -> list[dict[str, Any]]:
    """The items to fetch and install on one host (see the module docstring)."""
    if source not in SOURCES:
        raise PlanError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    version = release["version"]
    checksums = dict(checksums or {})
    urls = dict(urls or {})
    for what, given in (("kube_artifacts_checksums", checksums), ("kube_artifacts_urls", urls)):
        unknown = sorted(set(given) - set(release["files"]))
        if unknown:
            raise PlanError(
                f"{what} names unknown file(s) {', '.join(unknown)}; valid: {', '.join(sorted(release['files']))}"
            )
    unknown = sorted(set(files) - set(release["files"]))
    if unknown:
        raise PlanError(f"unknown file name(s) {', '.join(unknown)}; valid: {', '.join(sorted(release['files']))}")
    bundle_files: dict[str, Mapping[str, Any]] = {}
    base = bundle_url if source == "bundle_url" else bundle_dir
    if source != "upstream":
        check_manifest(manifest, version, arch, _join(base, "manifest.json"))
        bundle_files = {str(f.get("name")): f for f in manifest.get("files", []) if isinstance(f, Mapping)}
    stage = posixpath.join(stage_dir, f"{version}-{arch}")
    items: list[dict[str, Any]] = []
    for name in files:
        entry = release["files"][name]
        if name in checksums:
            expected = normalise_sha256(checksums[name], f"kube_artifacts_checksums.{name}")
        elif arch in entry["sha256"]:
            expected = entry["sha256"][arch]
        else:
            raise PlanError(
                f"the versions table has no {arch} sha256 for {name} {entry['version']}; "
                f"set kube_artifacts_checksums.{name} for a build of your own"
            )
        upstream = entry["url"].replace("{arch}", arch)
        target_dir = cni_bin_dir if name == "cni_plugins" else bin_dir
        basename = posixpath.basename(upstream)
        item: dict[str, Any] = {
            "name": name,
            "kind": "binary" if name in BINARIES else "archive",
            "version": entry["version"],
            "sha256": expected,
            "manifest_sha256": "",
            "basename": basename,
            "stage": posixpath.join(stage, basename),
            # A binary's installed path, or the directory an archive is unpacked into.
            "install": posixpath.join(bin_dir, name) if name in BINARIES else target_dir,
        }
        if source == "upstream":
            item["url"] = urls[name].replace("{arch}", arch) if name in urls else upstream
            item["controller_path"] = posixpath.join(cache_dir, version, arch, basename) if cache_dir else ""
        else:
            listed = bundle_files.get(name)
            if listed is None or not listed.get("path"):
                raise PlanError(f"bundle manifest {_join(base, 'manifest.json')} lists no file {name!r}")
            where = _join(base, str(listed["path"]))
            listed_sum = normalise_sha256(str(listed.get("sha256", "")), f"manifest sha256 of {name}")
            if listed_sum != expected:
                raise PlanError(str(ChecksumMismatch(where, expected, listed_sum, "bundle manifest entry of", False)))
            item["manifest_sha256"] = listed_sum
            item["url"] = where if source == "bundle_url" else ""
            item["controller_path"] = where if source == "bundle_dir" else ""
        items.append(item)
    if source != "upstream" and images:
        for image in manifest.get("images", []):
            ref, path = str(image.get("ref", "")), str(image.get("path", ""))
            if not ref or not path:
                raise PlanError(f"bundle manifest image entry {dict(image)!r} needs 'ref' and 'path'")
            where = _join(base, path)
            digest = normalise_sha256(str(image.get("sha256", "")), f"manifest sha256 of image {ref}")
            items.append(
                {
                    "name": ref,
                    "kind": "image",
                    "version": ref.rsplit(":", 1)[-1],
                    "sha256": digest,
                    "manifest_sha256": digest,
                    "basename": posixpath.basename(path),
                    "stage": posixpath.join(stage, "images", posixpath.basename(path)),
                    "install": image_repository(ref),
                    "url": where if source == "bundle_url" else "",
                    "controller_path": where if source == "bundle_dir" else "",
                }
            )
    return items


def needed(items: Sequence[Mapping[str, Any]], probe: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Items the host lacks: binaries by sha256, archives by their marker, images by reference."""
    files = probe.get("files", {}) or {}
    markers = probe.get("markers", {}) or {}
    present = set(probe.get("images", []) or [])
    result = []
    for item in items:
        if item["kind"] == "binary":
            missing = files.get(item["install"]) != item["sha256"]
        elif item["kind"] == "archive":
            missing = markers.get(item["name"]) != item["sha256"]
        else:
            missing = item["name"] not in present
        if missing:
            result.append(dict(item))
    return result
