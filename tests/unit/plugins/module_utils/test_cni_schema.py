"""Every manifest the cni role renders validates against the Kubernetes schema of every supported minor.

Also: the validator finds the mistakes it is there for, naming the object and the field.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils import cni_schema, cni_versions
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.manifests import render_all

ROOT = Path(__file__).resolve().parents[4]
SCHEMA_DIR = ROOT / "roles/cni/files/schemas"
MINORS = sorted(cni_versions.CNI_BY_MINOR)
PFS = {"w1": [{"name": "ens1f0", "num_vfs": 8, "resource_name": "sriov_a"}]}
NETS = [
    {"name": "net-a", "resource_name": "sriov_a", "vlan": 10, "ipam": {"type": "host-local", "subnet": "10.9.0.0/24"}}
]


def render(cni="calico", enc="vxlan", minor="1.35", sriov=True, registry=""):
    cfg = {
        "cni": cni,
        "pod_cidr": "10.244.0.0/16",
        "encapsulation": enc,
        "mtu": 1450,
        "registry": registry,
        "multus": True,
        "sriov_nodes": PFS if sriov else {},
        "sriov_networks": NETS if sriov else [],
    }
    return render_all(cfg, cni_versions.CNI_BY_MINOR[minor])[0]


def test_a_schema_per_supported_minor_and_nothing_else():
    files = sorted(p.name for p in SCHEMA_DIR.glob("kubernetes-*.json"))
    assert files == [f"kubernetes-{m}.json" for m in MINORS]
    for minor in MINORS:
        schemas = cni_schema.load_schemas(str(SCHEMA_DIR), minor)
        assert schemas["source"].endswith(f"v{minor}.0-local-strict")
        assert "apps/v1/DaemonSet" in schemas["kinds"]


COMBOS = [
    (minor, cni, enc)
    for minor, (cni, enc) in itertools.product(
        MINORS, [("calico", "vxlan"), ("calico", "ipip"), ("calico", "none"), ("flannel", "vxlan"), ("flannel", "none")]
    )
]


@pytest.mark.parametrize(("minor", "cni", "enc"), COMBOS)
def test_every_rendered_manifest_is_valid(minor, cni, enc):
    objs = render(cni, enc, minor, registry="mirror.example:5000")
    kinds = {o["kind"] for o in objs}
    assert {"DaemonSet", "ConfigMap", "ClusterRole", "CustomResourceDefinition", "NetworkAttachmentDefinition"} <= kinds
    schemas = cni_schema.load_schemas(str(SCHEMA_DIR), minor)
    assert cni_schema.validate(objs, schemas) == []


def test_unknown_minor_names_the_available_schemas():
    with pytest.raises(ValueError, match=r"have: 1\.33, 1\.34, 1\.35, 1\.36"):
        cni_schema.load_schemas(str(SCHEMA_DIR), "1.20")


def _find(objs, kind, name):
    return next(o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name)


@pytest.fixture
def schemas():
    return cni_schema.load_schemas(str(SCHEMA_DIR), "1.35")


def test_unknown_field_is_named(schemas):
    objs = render()
    ds = _find(objs, "DaemonSet", "calico-node")
    ds["spec"]["template"]["spec"]["containers"][0]["imagee"] = "x"
    errors = cni_schema.validate(objs, schemas)
    assert len(errors) == 1
    assert errors[0].startswith(
        "DaemonSet kube-system/calico-node: spec.template.spec.containers[0].imagee: unknown field"
    )


def test_wrong_type_and_missing_required_are_named(schemas):
    objs = render()
    dep = _find(objs, "Deployment", "calico-kube-controllers")
    dep["spec"]["replicas"] = "one"
    cm = _find(objs, "ConfigMap", "calico-config")
    cm["data"]["veth_mtu"] = 1450
    ds = _find(objs, "DaemonSet", "kube-multus-ds")
    del ds["spec"]["template"]["spec"]["containers"][0]["name"]
    errors = cni_schema.validate(objs, schemas)
    assert (
        "Deployment kube-system/calico-kube-controllers: spec.replicas: expected integer or null, got str 'one'"
        in errors
    )
    assert "ConfigMap kube-system/calico-config: data.veth_mtu: expected string or null, got int 1450" in errors
    assert (
        "DaemonSet kube-system/kube-multus-ds: spec.template.spec.containers[0]: required field 'name' is missing"
    ) in errors


def test_custom_resources_are_checked_against_their_crd(schemas):
    objs = render()
    pool = _find(objs, "IPPool", "default-ipv4-ippool")
    pool["spec"]["vxlanMode"] = "Sometimes"
    pool["spec"]["blockSize"] = 10
    pool["spec"]["cidrs"] = "10.0.0.0/8"
    nad = _find(objs, "NetworkAttachmentDefinition", "net-a")
    nad["spec"]["config"] = {"type": "sriov"}
    errors = cni_schema.validate(objs, schemas)
    assert (
        "IPPool default-ipv4-ippool: spec.vxlanMode: 'Sometimes' is not one of 'Always', 'CrossSubnet', 'Never'"
        in errors
    )
    assert "IPPool default-ipv4-ippool: spec.blockSize: 10 is below the minimum 20" in errors
    assert any(e.startswith("IPPool default-ipv4-ippool: spec.cidrs: unknown field") for e in errors)
    assert any(e.startswith("NetworkAttachmentDefinition default/net-a: spec.config: expected string") for e in errors)


def test_a_custom_resource_without_crd_and_a_bad_api_version_are_errors(schemas):
    objs = render(sriov=False)
    pool = copy.deepcopy(_find(objs, "IPPool", "default-ipv4-ippool"))
    errors = cni_schema.validate([pool], schemas)
    assert errors and "neither a Kubernetes" in errors[0]
    ds = copy.deepcopy(_find(objs, "DaemonSet", "calico-node"))
    ds["apiVersion"] = "extensions/v1beta1"
    assert (
        "DaemonSet kube-system/calico-node: apiVersion/kind extensions/v1beta1/DaemonSet"
        in cni_schema.validate([ds], schemas)[0]
    )
    # the CRD already on the cluster can be passed in
    crd = _find(objs, "CustomResourceDefinition", "ippools.crd.projectcalico.org")
    assert cni_schema.validate([pool], schemas, extra_crds=[crd]) == []


def test_int_or_string_and_quantities(schemas):
    objs = render()
    ds = _find(objs, "DaemonSet", "kube-multus-ds")
    ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = "10%"
    assert cni_schema.validate([ds], schemas) == []
    ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"] = [1]
    errors = cni_schema.validate([ds], schemas)
    field = "spec.updateStrategy.rollingUpdate.maxUnavailable"
    assert errors == [f"DaemonSet kube-system/kube-multus-ds: {field}: [1] matches none of the allowed forms"]


def test_rendered_config_json_is_valid_json():
    for obj in render():
        for value in (obj.get("data") or {}).values():
            if value.lstrip().startswith("{"):
                json.loads(value)
