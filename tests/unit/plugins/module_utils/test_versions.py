"""The versions table: complete, sourced, three consecutive minors, clear errors."""

from __future__ import annotations

import itertools
import re

import pytest
from ansible_collections.smcp.platform.plugins.module_utils import versions, versions_data

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def test_three_consecutive_minors():
    minors = [tuple(int(p) for p in m.split(".")) for m in versions.supported_minors()]
    assert len(minors) >= 3
    for (major_a, minor_a), (major_b, minor_b) in itertools.pairwise(minors):
        assert major_a == major_b == 1
        assert minor_b == minor_a + 1


@pytest.mark.parametrize("version", versions.supported_versions())
def test_every_version_has_every_component_with_a_sum_and_a_source(version):
    rel = versions.release(version)
    assert rel["version"] == version
    assert set(rel["files"]) == set(versions.FILE_NAMES)
    for name, entry in rel["files"].items():
        assert set(entry["sha256"]) >= {"amd64"}, name
        for arch, digest in entry["sha256"].items():
            assert HEX64.match(digest), (name, arch, digest)
        assert entry["source"].startswith("https://"), name
        assert "{version}" not in entry["url"] and "{arch}" in entry["url"], name
        assert entry["version"] in entry["url"] and entry["version"] in entry["source"], name
        assert "kubespray" in entry["via"] and re.search(r"[0-9a-f]{40}", entry["via"]), name
        assert entry["kind"] in {"binary", "archive"}
    assert set(rel["images"]) == set(versions.IMAGE_NAMES)
    assert rel["images"]["kube-apiserver"] == f"registry.k8s.io/kube-apiserver:v{version}"
    assert rel["image_digests"] == dict.fromkeys(versions.IMAGE_NAMES)
    assert isinstance(rel["cni"], dict)


def test_sums_are_distinct():
    sums = [s for v in versions_data.KUBE_BINARIES.values() for b in v.values() for s in b.values()]
    sums += [s for c in versions_data.COMPONENTS.values() for b in c.values() for s in b.values()]
    assert len(sums) == len(set(sums))


def test_every_sum_source_is_cited_in_the_data_module():
    doc = versions_data.__doc__ or ""
    assert "005bdce7f1867958838a2d0bb4f7e67893d98f64" in doc
    for name in versions.FILE_NAMES:
        assert versions_data.SOURCES[name].startswith("https://")


@pytest.mark.parametrize(
    ("text", "expected"), [("1.35.0", (1, 35, 0)), ("v1.34.4", (1, 34, 4)), (" 1.33.8 ", (1, 33, 8))]
)
def test_parse_version(text, expected):
    assert versions.parse_version(text) == expected


@pytest.mark.parametrize("text", ["1.35", "latest", "1.35.0-rc.1", "", "v1.x.0"])
def test_parse_version_rejects_with_the_expected_form(text):
    with pytest.raises(ValueError, match=r"MAJOR\.MINOR\.PATCH"):
        versions.parse_version(text)


def test_unknown_version_lists_supported():
    with pytest.raises(versions.UnknownVersionError) as err:
        versions.release("1.99.0")
    message = str(err.value)
    assert "1.99.0" in message
    for version in versions.supported_versions():
        assert version in message


def test_newest_patch_and_unknown_minor():
    assert versions.newest_patch("1.35") == max(
        (v for v in versions.supported_versions() if v.startswith("1.35.")), key=versions.parse_version
    )
    with pytest.raises(versions.UnknownVersionError, match="supported minors"):
        versions.newest_patch("1.12")


def test_default_cluster_version_is_in_the_table():
    assert versions.is_supported("1.35.0")


def test_helpers():
    rel = versions.release("1.35.0")
    assert versions.file_url(rel, "kubeadm", "arm64") == "https://dl.k8s.io/release/v1.35.0/bin/linux/arm64/kubeadm"
    assert versions.expected_sha256(rel, "kubeadm", "amd64") == rel["files"]["kubeadm"]["sha256"]["amd64"]
    with pytest.raises(ValueError, match="no s390x sum"):
        versions.expected_sha256(rel, "kubeadm", "s390x")
    assert versions.mirror_image("registry.k8s.io/pause:3.10.1", "mirror:5000/") == "mirror:5000/pause:3.10.1"
    assert versions.mirror_image("registry.k8s.io/pause:3.10.1", "") == "registry.k8s.io/pause:3.10.1"


def test_release_is_a_copy():
    rel = versions.release("1.35.0")
    rel["files"]["kubeadm"]["sha256"]["amd64"] = "0" * 64
    rel["cni"]["x"] = 1
    again = versions.release("1.35.0")
    assert again["files"]["kubeadm"]["sha256"]["amd64"] != "0" * 64
    assert "x" not in again["cni"]
