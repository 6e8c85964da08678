"""Pod network logic of the cni role: MTU, pod CIDR, image mirror, rendering, SR-IOV checks."""

from __future__ import annotations

import ipaddress
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils import cni, cni_sriov, cni_versions
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.data import PLURALS
from ansible_collections.smcp.platform.plugins.modules import cni_manifests

ROOT = Path(__file__).resolve().parents[4]
SCHEMAS = str(ROOT / "roles/cni/files/schemas")
PINS = cni_versions.CNI_BY_MINOR["1.35"]


def params(**over):
    base = {
        "cni": "calico",
        "kubernetes_version": "1.35.0",
        "pod_cidr": "10.244.0.0/16",
        "service_cidr": "10.96.0.0/12",
        "node_networks": ["192.168.10.0/24"],
        "interface_mtus": {"cp1": 1500, "w1": 9000, "w2": 1500},
        "encapsulation": "vxlan",
        "mtu": 0,
        "registry": "",
        "calico_block_size": 0,
        "multus": False,
        "sriov_pfs": {},
        "sriov_networks": [],
        "sriov_resource_prefix": "intel.com",
        "schema_dir": SCHEMAS,
    }
    base.update(over)
    return base


def by_kind(objs, kind, name=None):
    found = [o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
    assert found, f"no {kind} {name}"
    return found[0] if name else found


def env_of(container):
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


# --- MTU ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("enc", "expected"), [("vxlan", 1450), ("ipip", 1480), ("none", 1500)])
def test_mtu_is_smallest_interface_minus_overhead(enc, expected):
    got = cni.compute_mtu({"a": 9000, "b": 1500, "c": 9000}, enc)
    assert got == {"mtu": expected, "interface_mtu": 1500, "overhead": 1500 - expected, "host": "b"}


def test_mtu_below_minimum_is_refused_naming_host_and_fix():
    with pytest.raises(cni.CniError) as err:
        cni.compute_mtu({"a": 1500, "small": 1300}, "vxlan")
    msg = str(err.value)
    assert "1250" in msg and "small" in msg and "1280" in msg and "cni_encapsulation=none" in msg


def test_mtu_override_must_fit_the_interface():
    assert cni.compute_mtu({"a": 9000}, "vxlan", 8900)["mtu"] == 8900
    with pytest.raises(cni.CniError, match="exceeds the interface MTU 1500"):
        cni.compute_mtu({"a": 1500}, "vxlan", 1460)
    with pytest.raises(cni.CniError, match="below the minimum"):
        cni.compute_mtu({"a": 1500}, "none", 1000)


def test_mtu_needs_known_interfaces():
    with pytest.raises(cni.CniError, match="no node interface MTU"):
        cni.compute_mtu({}, "vxlan")
    with pytest.raises(cni.CniError, match="w2"):
        cni.compute_mtu({"w1": 1500, "w2": 0}, "vxlan")
    with pytest.raises(cni.CniError, match="not supported"):
        cni.compute_mtu({"w1": 1500}, "gre")


# --- pod CIDR ----------------------------------------------------------------------------
def test_pod_cidr_capacity():
    info = cni.check_pod_cidr("10.244.0.0/16", "10.96.0.0/12", ["192.168.1.0/24"], node_count=3)
    assert info == {"network": "10.244.0.0/16", "prefixlen": 16, "node_mask": 24, "capacity": 256}


@pytest.mark.parametrize(
    ("cidr", "nodes", "fragment"),
    [
        ("10.244.0.0/25", 1, "too small: one node needs a /24"),
        ("10.244.0.0/23", 3, "holds 2 node subnets of /24 but the cluster has 3 nodes; use /22"),
        ("10.244.0.1/16", 1, "not a valid network"),
        ("banana", 1, "not a valid network"),
    ],
)
def test_pod_cidr_too_small_or_invalid(cidr, nodes, fragment):
    with pytest.raises(cni.CniError, match="smcp_pod_cidr") as err:
        cni.check_pod_cidr(cidr, node_count=nodes)
    assert fragment in str(err.value)


@pytest.mark.parametrize(
    ("service", "node_nets", "other"),
    [
        ("10.244.128.0/20", [], "smcp_service_cidr 10.244.128.0/20"),
        ("10.96.0.0/12", ["10.0.0.0/8"], "node network 10.0.0.0/8"),
    ],
)
def test_pod_cidr_overlaps_are_refused(service, node_nets, other):
    with pytest.raises(cni.CniError, match="overlaps") as err:
        cni.check_pod_cidr("10.244.0.0/16", service, node_nets)
    assert other in str(err.value)


def test_cidr_consistency_between_kubeadm_cni_and_nodes():
    assert (
        cni.check_cidr_consistency("10.244.0.0/16", "10.244.0.0/16", "10.244.0.0/16", {"n1": ["10.244.3.0/24"]}) == []
    )
    assert cni.check_cidr_consistency("10.244.0.0/16", "10.244.0.0/16", "10.244.0.0/16,fd00::/56", {}) == []
    problems = cni.check_cidr_consistency("10.244.0.0/16", "10.245.0.0/16", "10.200.0.0/16", {"n1": ["10.200.1.0/24"]})
    assert len(problems) == 3
    assert "CNI pod network 10.245.0.0/16" in problems[0]
    assert "podSubnet '10.200.0.0/16'" in problems[1]
    assert "Node n1 spec.podCIDR 10.200.1.0/24" in problems[2]


# --- images ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("ref", "registry", "expected"),
    [
        ("docker.io/calico/node:v3.31.3", "", "docker.io/calico/node:v3.31.3"),
        ("docker.io/calico/node:v3.31.3", "mirror.example:5000", "mirror.example:5000/calico/node:v3.31.3"),
        ("ghcr.io/flannel-io/flannel:v0.28.0", "mirror.example/", "mirror.example/flannel-io/flannel:v0.28.0"),
        ("calico/node:v1", "m.example", "m.example/calico/node:v1"),
        ("localhost/x:1", "m.example", "m.example/x:1"),
    ],
)
def test_mirror_image(ref, registry, expected):
    assert cni.mirror_image(ref, registry) == expected


def test_versions_pins_every_supported_minor_with_upstream_images():
    assert sorted(cni_versions.CNI_BY_MINOR) == ["1.33", "1.34", "1.35", "1.36"]
    # every minor of the versions table has CNI pins and a schema, and release() carries them
    from ansible_collections.smcp.platform.plugins.module_utils import versions

    for minor in versions.supported_minors():
        assert minor in cni_versions.CNI_BY_MINOR
        assert (ROOT / f"roles/cni/files/schemas/kubernetes-{minor}.json").exists()
        assert versions.release(versions.newest_patch(minor))["cni"] == cni_versions.CNI_BY_MINOR[minor]
    for pins in cni_versions.CNI_BY_MINOR.values():
        for component in ("calico", "flannel", "multus", "sriov_cni", "sriov_device_plugin"):
            assert pins[component]["version"].startswith("v")
            for key, ref in pins[component]["images"].items():
                tag = ref.rsplit(":", 1)[1]
                assert tag.startswith("v1.8.0-flannel" if key == "cni_plugin" else pins[component]["version"])
    with pytest.raises(ValueError, match=r"1\.33, 1\.34, 1\.35, 1\.36"):
        cni_versions.cni_release("1.20")


# --- rendering -----------------------------------------------------------------------------
def test_calico_vxlan_render():
    out = cni_manifests.build(params(registry="mirror.example:5000"))
    objs = out["objects"]
    assert out["mtu"] == {"mtu": 1450, "interface_mtu": 1500, "overhead": 50, "host": "cp1"}
    pool = by_kind(objs, "IPPool", "default-ipv4-ippool")
    assert pool["spec"]["cidr"] == "10.244.0.0/16"
    assert (pool["spec"]["vxlanMode"], pool["spec"]["ipipMode"], pool["spec"]["blockSize"]) == ("Always", "Never", 26)
    config = by_kind(objs, "ConfigMap", "calico-config")["data"]
    assert config["veth_mtu"] == "1450" and config["calico_backend"] == "vxlan"
    ds = by_kind(objs, "DaemonSet", "calico-node")
    node = ds["spec"]["template"]["spec"]["containers"][0]
    env = env_of(node)
    assert env["CALICO_IPV4POOL_CIDR"] == "10.244.0.0/16"
    assert env["CALICO_IPV4POOL_VXLAN"] == "Always" and env["CLUSTER_TYPE"] == "k8s"
    assert "-bird-ready" not in node["readinessProbe"]["exec"]["command"]
    images = {
        c["image"]
        for c in ds["spec"]["template"]["spec"]["containers"] + ds["spec"]["template"]["spec"]["initContainers"]
    }
    assert images == {"mirror.example:5000/calico/node:v3.31.3", "mirror.example:5000/calico/cni:v3.31.3"}
    # every object a CRD defines comes after its CRD
    crd_kinds = [o["spec"]["names"]["kind"] for o in objs if o["kind"] == "CustomResourceDefinition"]
    assert objs.index(pool) > max(i for i, o in enumerate(objs) if o["kind"] == "CustomResourceDefinition")
    assert {"IPPool", "FelixConfiguration", "IPAMBlock", "BlockAffinity"} <= set(crd_kinds)
    assert out["workloads"] == [
        ["DaemonSet", "kube-system", "calico-node"],
        ["Deployment", "kube-system", "calico-kube-controllers"],
    ]
    assert out["host_conflist"] is None


@pytest.mark.parametrize(("enc", "backend", "ipip"), [("ipip", "bird", "Always"), ("none", "bird", "Never")])
def test_calico_bgp_modes(enc, backend, ipip):
    objs = cni_manifests.build(params(encapsulation=enc))["objects"]
    pool = by_kind(objs, "IPPool", "default-ipv4-ippool")["spec"]
    assert (pool["ipipMode"], pool["vxlanMode"]) == (ipip, "Never")
    assert by_kind(objs, "ConfigMap", "calico-config")["data"]["calico_backend"] == backend
    node = by_kind(objs, "DaemonSet", "calico-node")["spec"]["template"]["spec"]["containers"][0]
    assert "-bird-live" in node["livenessProbe"]["exec"]["command"]


def test_flannel_render_and_host_conflist():
    out = cni_manifests.build(params(cni="flannel", pod_cidr="10.50.0.0/16", interface_mtus={"a": 1500}))
    cm = by_kind(out["objects"], "ConfigMap", "kube-flannel-cfg")["data"]
    net = json.loads(cm["net-conf.json"])
    assert net["Network"] == "10.50.0.0/16" and net["Backend"] == {"Type": "vxlan"}
    assert json.loads(cm["cni-conf.json"]) == out["host_conflist"]
    assert out["host_conflist"]["plugins"][0]["delegate"]["mtu"] == 1450
    ns = by_kind(out["objects"], "Namespace", "kube-flannel")
    assert ns["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
    host_gw = cni_manifests.build(params(cni="flannel", encapsulation="none"))
    net = json.loads(by_kind(host_gw["objects"], "ConfigMap", "kube-flannel-cfg")["data"]["net-conf.json"])
    assert net["Backend"] == {"Type": "host-gw"}


def test_bad_input_fails_before_rendering():
    with pytest.raises(cni.CniError, match="smcp_cni='weave' is not supported; choose one of: calico, flannel"):
        cni_manifests.build(params(cni="weave"))
    with pytest.raises(cni.CniError, match="ipip is not available with flannel"):
        cni_manifests.build(params(cni="flannel", encapsulation="ipip"))
    with pytest.raises(cni.CniError, match=r"no CNI versions pinned for Kubernetes 1\.30"):
        cni_manifests.build(params(kubernetes_version="1.30.2"))
    with pytest.raises(cni.CniError, match=r"MAJOR\.MINOR\.PATCH"):
        cni_manifests.build(params(kubernetes_version="latest"))
    with pytest.raises(cni.CniError, match="too small"):
        cni_manifests.build(params(pod_cidr="10.244.0.0/24"))
    with pytest.raises(cni.CniError, match="too small"):
        cni_manifests.build(params(pod_cidr="10.244.0.0/25", calico_block_size=26, interface_mtus={"a": 1500}))
    with pytest.raises(cni.CniError, match="below the minimum 1280"):
        cni_manifests.build(params(interface_mtus={"a": 1320}))


PFS = {
    "w1": [{"name": "ens1f0", "num_vfs": 8, "resource_name": "sriov_a"}],
    "w2": [{"name": "ens2f0", "num_vfs": 4, "resource_name": "sriov_a"}],
}
NETS = [
    {
        "name": "net-a",
        "namespace": "apps",
        "resource_name": "sriov_a",
        "vlan": 100,
        "ipam": {"type": "host-local", "subnet": "192.168.50.0/24"},
    }
]


def test_sriov_render_from_inventory():
    out = cni_manifests.build(
        params(sriov_pfs=PFS, sriov_networks=NETS, interface_mtus={"cp1": 1500, "w1": 1500, "w2": 1500})
    )
    objs = out["objects"]
    assert by_kind(objs, "DaemonSet", "kube-multus-ds")  # Multus comes with SR-IOV
    dp = json.loads(by_kind(objs, "ConfigMap", "sriovdp-config")["data"]["config.json"])
    assert dp == {
        "resourceList": [
            {"resourceName": "sriov_a", "resourcePrefix": "intel.com", "selectors": {"pfNames": ["ens1f0", "ens2f0"]}}
        ]
    }
    nad = by_kind(objs, "NetworkAttachmentDefinition", "net-a")
    assert nad["metadata"]["namespace"] == "apps"
    assert nad["metadata"]["annotations"] == {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov_a"}
    config = json.loads(nad["spec"]["config"])
    assert config["type"] == "sriov" and config["vlan"] == 100 and config["ipam"]["subnet"] == "192.168.50.0/24"
    for name in ("kube-sriov-cni-ds", "kube-sriov-device-plugin"):
        affinity = by_kind(objs, "DaemonSet", name)["spec"]["template"]["spec"]["affinity"]
        term = affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0]
        assert term["matchExpressions"][0]["values"] == ["w1", "w2"]


@pytest.mark.parametrize(
    ("pfs", "nets", "fragment"),
    [
        ({"w1": [{"name": "ens1f0", "num_vfs": 0, "resource_name": "a"}]}, [], "num_vfs=0 must be an integer >= 1"),
        ({"w1": [{"name": "ens1f0", "num_vfs": 2, "resource_name": "bad-name"}]}, [], "resource_name='bad-name'"),
        ({"w1": [{"num_vfs": 2, "resource_name": "a"}]}, [], "needs a name"),
        ({"nothere": [{"name": "e", "num_vfs": 2, "resource_name": "a"}]}, [], "not a cluster node"),
        (
            {"w1": [{"name": "e", "num_vfs": 2, "resource_name": "a"}]},
            [{"name": "n", "resource_name": "b"}],
            "resource_name='b' is not provided",
        ),
        ({}, [{"name": "n", "resource_name": "b"}], "no node has cni_sriov_pfs"),
    ],
)
def test_sriov_bad_input(pfs, nets, fragment):
    with pytest.raises(cni.CniError) as err:
        cni_manifests.build(params(sriov_pfs=pfs, sriov_networks=nets, interface_mtus={"w1": 1500}))
    assert fragment in str(err.value)


def fake_sysfs(root: Path, pfs: dict):
    for name, total in pfs.items():
        dev = root / "class/net" / name / "device"
        dev.mkdir(parents=True)
        if total is not None:
            (dev / "sriov_totalvfs").write_text(f"{total}\n")
            (dev / "sriov_numvfs").write_text("0\n")
    return str(root)


def test_sriov_pf_preflight(tmp_path):
    sysfs = fake_sysfs(tmp_path, {"ens1f0": 16, "eth0": None})
    state = cni_sriov.check_pfs([{"name": "ens1f0", "num_vfs": 8}], sysfs)
    assert state == {"ens1f0": {"total_vfs": 16, "num_vfs": 0, "wanted": 8}}
    with pytest.raises(cni.CniError) as err:
        cni_sriov.check_pfs(
            [{"name": "ens1f0", "num_vfs": 32}, {"name": "eth0", "num_vfs": 1}, {"name": "ens9", "num_vfs": 1}], sysfs
        )
    msg = str(err.value)
    assert "PF ens1f0 supports 16 VFs, 32 requested" in msg
    assert "PF eth0 does not support SR-IOV" in msg
    assert "PF ens9 does not exist (interfaces: ens1f0, eth0)" in msg


# --- the flannel CNI plugin's delegate (what the netns test runs with Debian's plugins) ------
def test_flannel_delegate_matches_the_flannel_plugin():
    conflist = cni.flannel_conflist(1450)
    env = "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.3.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n"
    delegate = cni.flannel_delegate(conflist, env)
    assert delegate == {
        "type": "bridge",
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "hairpinMode": True,
        "isDefaultGateway": True,
        "isGateway": True,
        "ipMasq": False,
        "mtu": 1450,
        "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.3.0/24"}]], "routes": [{"dst": "10.244.0.0/16"}]},
    }
    assert ipaddress.ip_network("10.244.3.0/24").subnet_of(ipaddress.ip_network("10.244.0.0/16"))
    with pytest.raises(cni.CniError, match="FLANNEL_SUBNET"):
        cni.flannel_delegate(conflist, "FLANNEL_NETWORK=10.244.0.0/16\n")


def test_render_is_deterministic():
    a = cni_manifests.build(params(sriov_pfs=PFS, sriov_networks=NETS, interface_mtus={"w1": 1500, "w2": 1500}))
    b = cni_manifests.build(params(sriov_pfs=PFS, sriov_networks=NETS, interface_mtus={"w2": 1500, "w1": 1500}))
    assert json.dumps(a["objects"], sort_keys=True) == json.dumps(b["objects"], sort_keys=True)
    assert PLURALS["NetworkAttachmentDefinition"] == "network-attachment-definitions"


def test_sriov_vf_unit_writes_numvfs_through_sysfs(tmp_path):
    """The ExecStart of smcp-sriov-vfs.service, run against a fake sysfs: sets each PF's count, leaves equal ones."""
    import subprocess

    import jinja2

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(ROOT / "roles/cni/templates")), keep_trailing_newline=True, trim_blocks=True
    )
    conf_path = tmp_path / "sriov-vfs.conf"
    variables = {
        "ansible_managed": "managed",
        "_cni_sriov_conf": str(conf_path),
        "_cni_sriov_unit": "smcp-sriov-vfs.service",
        "cni_sriov_pfs": [{"name": "ens2f0", "num_vfs": 4}, {"name": "ens1f0", "num_vfs": 8}],
    }
    conf_path.write_text(env.get_template("sriov-vfs.conf.j2").render(variables))
    assert conf_path.read_text().splitlines()[-2:] == ["ens1f0 8", "ens2f0 4"]
    unit = env.get_template("smcp-sriov-vfs.service.j2").render(variables)
    assert "WantedBy=multi-user.target" in unit and "Before=network-pre.target kubelet.service" in unit
    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    script = exec_start.split("-ec '", 1)[1].rsplit("'", 1)[0].replace("$$", "$")
    script = script.replace("/sys/class/net/", str(tmp_path / "sys") + "/")
    sysfs = tmp_path / "sys"
    for name, current in (("ens1f0", "0"), ("ens2f0", "4")):
        (sysfs / name / "device").mkdir(parents=True)
        (sysfs / name / "device" / "sriov_numvfs").write_text(current + "\n")
    untouched = sysfs / "ens2f0/device/sriov_numvfs"
    before = untouched.stat().st_mtime_ns
    subprocess.run(["/bin/sh", "-ec", script], check=True)
    assert (sysfs / "ens1f0/device/sriov_numvfs").read_text().strip() == "8"
    assert untouched.read_text().strip() == "4" and untouched.stat().st_mtime_ns == before
