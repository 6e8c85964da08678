"""Role kube_artifacts' plan: sources, expected sums, bundle manifest checks, what a host still needs."""

from __future__ import annotations

import pytest
from ansible_collections.smcp.platform.plugins.filter.kube_artifacts import kube_artifacts_needed, kube_artifacts_plan
from ansible_collections.smcp.platform.plugins.module_utils import kube_artifacts as ka
from ansible_collections.smcp.platform.plugins.module_utils.versions import release

REL = release("1.35.0")
FILES = ["kubeadm", "kubelet", "kubectl", "crictl", "cni_plugins"]
OWN = "ab" * 32


def manifest(**over):
    data = {
        "format": 1,
        "kubernetes_version": "1.35.0",
        "arch": "amd64",
        "files": [
            {"name": n, "path": f"bin/{n}", "sha256": REL["files"][n]["sha256"]["amd64"], "url": "x"} for n in FILES
        ],
        "images": [{"ref": "registry.k8s.io/pause:3.10.1", "path": "images/pause.oci.tar", "sha256": "cd" * 32}],
    }
    data.update(over)
    return data


def test_upstream_plan_uses_the_table_and_the_controller_cache():
    items = ka.plan(REL, "arm64", files=FILES, cache_dir="/cache", stage_dir="/stage")
    by_name = {i["name"]: i for i in items}
    assert [i["name"] for i in items] == FILES
    kubeadm = by_name["kubeadm"]
    assert kubeadm["url"] == "https://dl.k8s.io/release/v1.35.0/bin/linux/arm64/kubeadm"
    assert kubeadm["sha256"] == REL["files"]["kubeadm"]["sha256"]["arm64"]
    assert kubeadm["controller_path"] == "/cache/1.35.0/arm64/kubeadm"
    assert kubeadm["stage"] == "/stage/1.35.0-arm64/kubeadm" and kubeadm["install"] == "/usr/local/bin/kubeadm"
    assert by_name["crictl"]["kind"] == "archive" and by_name["crictl"]["install"] == "/usr/local/bin"
    assert by_name["cni_plugins"]["install"] == "/opt/cni/bin"
    assert by_name["cni_plugins"]["basename"] == "cni-plugins-linux-arm64-v1.8.0.tgz"


def test_checksums_override_the_table():
    items = ka.plan(REL, "amd64", files=["kubeadm"], checksums={"kubeadm": "SHA256:" + OWN.upper()})
    assert items[0]["sha256"] == OWN
    with pytest.raises(ka.PlanError, match="unknown file"):
        ka.plan(REL, "amd64", files=["kubeadm"], checksums={"kubeadmm": OWN})
    with pytest.raises(ka.ArtifactError, match=r"kube_artifacts_checksums\.kubeadm"):
        ka.plan(REL, "amd64", files=["kubeadm"], checksums={"kubeadm": "nope"})


def test_bundle_url_plan_points_at_the_mirror_and_lists_images():
    items = ka.plan(REL, "amd64", files=FILES, source="bundle_url", manifest=manifest(), bundle_url="http://m:8081/b/")
    assert items[0]["url"] == "http://m:8081/b/bin/kubeadm" and items[0]["controller_path"] == ""
    image = items[-1]
    assert image["kind"] == "image" and image["name"] == "registry.k8s.io/pause:3.10.1"
    assert image["install"] == "registry.k8s.io/pause" and image["url"] == "http://m:8081/b/images/pause.oci.tar"
    assert not [
        i
        for i in ka.plan(
            REL, "amd64", files=FILES, source="bundle_dir", manifest=manifest(), bundle_dir="/b", images=False
        )
        if i["kind"] == "image"
    ]


def test_bundle_dir_plan_reads_from_the_controller():
    items = ka.plan(REL, "amd64", files=["kubelet"], source="bundle_dir", manifest=manifest(), bundle_dir="/srv/b")
    assert items[0]["controller_path"] == "/srv/b/bin/kubelet" and items[0]["url"] == ""
    assert items[0]["manifest_sha256"] == items[0]["sha256"]


def test_manifest_sum_disagreeing_names_url_expected_and_actual():
    bad = manifest()
    bad["files"][0]["sha256"] = "ef" * 32
    with pytest.raises(ka.PlanError) as err:
        ka.plan(REL, "amd64", files=FILES, source="bundle_url", manifest=bad, bundle_url="http://m/b")
    message = str(err.value)
    assert "http://m/b/bin/kubeadm" in message and REL["files"]["kubeadm"]["sha256"]["amd64"] in message
    assert "ef" * 32 in message


@pytest.mark.parametrize(
    ("over", "match"),
    [
        ({"kubernetes_version": "1.34.4"}, "is for Kubernetes '1.34.4', not 1.35.0"),
        ({"arch": "arm64"}, "architecture 'arm64', but the host is amd64"),
        ({"format": 2}, "format 2"),
        ({"files": []}, "lists no file 'kubeadm'"),
    ],
)
def test_bad_bundles_fail_before_any_change(over, match):
    with pytest.raises(ka.PlanError, match=match):
        ka.plan(REL, "amd64", files=FILES, source="bundle_dir", manifest=manifest(**over), bundle_dir="/b")


def test_unknown_source_and_missing_arch():
    with pytest.raises(ka.PlanError, match="source must be one of"):
        ka.plan(REL, "amd64", files=FILES, source="ftp")
    with pytest.raises(ka.PlanError, match="no s390x sha256 for kubeadm"):
        ka.plan(REL, "s390x", files=["kubeadm"])


def test_needed_keeps_only_what_the_host_lacks():
    items = ka.plan(REL, "amd64", files=FILES, source="bundle_dir", manifest=manifest(), bundle_dir="/b")
    sums = {i["name"]: i["sha256"] for i in items}
    probe = {
        "files": {"/usr/local/bin/kubeadm": sums["kubeadm"], "/usr/local/bin/kubelet": "00" * 32},
        "markers": {"crictl": sums["crictl"]},
        "images": ["registry.k8s.io/pause:3.10.1"],
    }
    assert [i["name"] for i in ka.needed(items, probe)] == ["kubelet", "kubectl", "cni_plugins"]
    assert len(ka.needed(items, {})) == len(items)


def test_image_repository():
    assert ka.image_repository("registry.k8s.io/coredns/coredns:v1.13.1") == "registry.k8s.io/coredns/coredns"
    assert ka.image_repository("mirror:5000/pause:3.10") == "mirror:5000/pause"
    assert ka.image_repository("mirror:5000/pause@sha256:" + OWN) == "mirror:5000/pause"


def test_filters_wrap_errors():
    from ansible.errors import AnsibleFilterError

    assert kube_artifacts_plan(REL, "amd64", ["kubeadm"])[0]["name"] == "kubeadm"
    with pytest.raises(AnsibleFilterError, match=r"kube_artifacts_plan: .*lists no file"):
        kube_artifacts_plan(REL, "amd64", ["kubeadm"], source="bundle_dir", manifest=manifest(files=[]))
    assert kube_artifacts_needed([], None) == []


def test_urls_override_upstream_only():
    items = ka.plan(REL, "arm64", files=["kubeadm", "kubelet"], urls={"kubeadm": "http://proxy/{arch}/kubeadm"})
    assert items[0]["url"] == "http://proxy/arm64/kubeadm"
    assert items[1]["url"] == "https://dl.k8s.io/release/v1.35.0/bin/linux/arm64/kubelet"
    with pytest.raises(ka.PlanError, match="kube_artifacts_urls names unknown file"):
        ka.plan(REL, "amd64", files=["kubeadm"], urls={"kubeadmm": "http://x"})
