"""kubeadm configuration: golden files for every combination, each field checked against the references.

References (every field below names the one it comes from):
- KUBEADM: kubeadm Configuration (v1beta4), https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/
- KUBELET: Kubelet Configuration (v1beta1), https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/
- KUBEPROXY: kube-proxy Configuration (v1alpha1), https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/
Regenerate the golden files after a deliberate change with SMCP_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import kubeadm_config as kc
from ansible_collections.smcp.platform.plugins.modules import kubeadm_config as module

GOLDEN = Path(__file__).resolve().parents[2] / "golden" / "kubeadm"
KUBEADM = "https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/"
KUBELET = "https://kubernetes.io/docs/reference/config-api/kubelet-config.v1beta1/"
KUBEPROXY = "https://kubernetes.io/docs/reference/config-api/kube-proxy-config.v1alpha1/"
TOKEN = "abcdef.0123456789abcdef"
CERT_KEY = "0f" * 32
CA_HASH = "sha256:" + "7c" * 32
BTD = KUBEADM + "#kubeadm-k8s-io-v1beta4-BootstrapTokenDiscovery"

# Every field we render, per kind: dotted path ([] = list items) -> (expected type, reference anchor).
# The anchors are the type sections of the references where the field is defined.
FIELDS: dict[str, dict[str, tuple[type | tuple[type, ...], str]]] = {
    "InitConfiguration": {
        "apiVersion": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-InitConfiguration"),
        "kind": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-InitConfiguration"),
        "localAPIEndpoint.advertiseAddress": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-APIEndpoint"),
        "localAPIEndpoint.bindPort": (int, KUBEADM + "#kubeadm-k8s-io-v1beta4-APIEndpoint"),
        "nodeRegistration.name": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "nodeRegistration.criSocket": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "nodeRegistration.taints[].key": (str, "core/v1 Taint, via NodeRegistrationOptions.taints"),
        "nodeRegistration.taints[].value": (str, "core/v1 Taint, via NodeRegistrationOptions.taints"),
        "nodeRegistration.taints[].effect": (str, "core/v1 Taint, via NodeRegistrationOptions.taints"),
        "nodeRegistration.imagePullPolicy": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "nodeRegistration.kubeletExtraArgs[].name": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Arg"),
        "nodeRegistration.kubeletExtraArgs[].value": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Arg"),
        "nodeRegistration.ignorePreflightErrors[]": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
    },
    "ClusterConfiguration": {
        "apiVersion": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "kind": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "clusterName": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "kubernetesVersion": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "controlPlaneEndpoint": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "certificatesDir": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "imageRepository": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ClusterConfiguration"),
        "networking.podSubnet": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Networking"),
        "networking.serviceSubnet": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Networking"),
        "networking.dnsDomain": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Networking"),
        "etcd.external.endpoints[]": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ExternalEtcd"),
        "etcd.external.caFile": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ExternalEtcd"),
        "etcd.external.certFile": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ExternalEtcd"),
        "etcd.external.keyFile": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-ExternalEtcd"),
        "apiServer.certSANs[]": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-APIServer"),
    },
    "KubeletConfiguration": {
        "apiVersion": (str, KUBELET + "#kubelet-config-k8s-io-v1beta1-KubeletConfiguration"),
        "kind": (str, KUBELET + "#kubelet-config-k8s-io-v1beta1-KubeletConfiguration"),
        "cgroupDriver": (str, KUBELET + "#kubelet-config-k8s-io-v1beta1-KubeletConfiguration"),
        "containerRuntimeEndpoint": (str, KUBELET + "#kubelet-config-k8s-io-v1beta1-KubeletConfiguration"),
        "clusterDomain": (str, KUBELET + "#kubelet-config-k8s-io-v1beta1-KubeletConfiguration"),
        "rotateCertificates": (bool, KUBELET + "#kubelet-config-k8s-io-v1beta1-KubeletConfiguration"),
    },
    "KubeProxyConfiguration": {
        "apiVersion": (str, KUBEPROXY + "#kubeproxy-config-k8s-io-v1alpha1-KubeProxyConfiguration"),
        "kind": (str, KUBEPROXY + "#kubeproxy-config-k8s-io-v1alpha1-KubeProxyConfiguration"),
        "mode": (str, KUBEPROXY + "#kubeproxy-config-k8s-io-v1alpha1-ProxyMode"),
        "clusterCIDR": (str, KUBEPROXY + "#kubeproxy-config-k8s-io-v1alpha1-KubeProxyConfiguration"),
    },
    "JoinConfiguration": {
        "apiVersion": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-JoinConfiguration"),
        "kind": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-JoinConfiguration"),
        "nodeRegistration.name": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "nodeRegistration.criSocket": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "nodeRegistration.taints[].key": (str, "core/v1 Taint, via NodeRegistrationOptions.taints"),
        "nodeRegistration.taints[].value": (str, "core/v1 Taint, via NodeRegistrationOptions.taints"),
        "nodeRegistration.taints[].effect": (str, "core/v1 Taint, via NodeRegistrationOptions.taints"),
        "nodeRegistration.imagePullPolicy": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "nodeRegistration.kubeletExtraArgs[].name": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Arg"),
        "nodeRegistration.kubeletExtraArgs[].value": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Arg"),
        "nodeRegistration.ignorePreflightErrors[]": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-NodeRegistrationOptions"),
        "discovery.bootstrapToken.apiServerEndpoint": (
            str,
            BTD,
        ),
        "discovery.bootstrapToken.token": (str, BTD),
        "discovery.bootstrapToken.caCertHashes[]": (str, BTD),
        "discovery.tlsBootstrapToken": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-Discovery"),
        "controlPlane.localAPIEndpoint.advertiseAddress": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-APIEndpoint"),
        "controlPlane.localAPIEndpoint.bindPort": (int, KUBEADM + "#kubeadm-k8s-io-v1beta4-APIEndpoint"),
        "controlPlane.certificateKey": (str, KUBEADM + "#kubeadm-k8s-io-v1beta4-JoinControlPlane"),
    },
}

# Enumerated values from the references.
ENUMS = {
    "nodeRegistration.imagePullPolicy": {"Always", "IfNotPresent", "Never"},  # KUBEADM NodeRegistrationOptions
    "nodeRegistration.taints[].effect": {"NoSchedule", "PreferNoSchedule", "NoExecute"},  # core/v1 Taint
    "cgroupDriver": {"systemd", "cgroupfs"},  # KUBELET KubeletConfiguration.cgroupDriver
    "mode": {"iptables", "ipvs", "nftables", "kernelspace"},  # KUBEPROXY ProxyMode
}

ETCD = ["https://10.0.0.21:2379", "https://10.0.0.22:2379", "https://10.0.0.23:2379"]


def init(**overrides: Any) -> kc.KubeadmParams:
    base: dict[str, Any] = {
        "kind": "init",
        "cluster_name": "smcp",
        "kubernetes_version": "1.35.0",
        "control_plane_endpoint": "127.0.0.1:7443",
        "node_name": "cp1",
        "node_ip": "10.0.0.11",
        "advertise_address": "10.0.0.11",
        "etcd_endpoints": ETCD[:1],
    }
    base.update(overrides)
    return kc.KubeadmParams.from_dict(base)  # taints unset: the control-plane taint


def join(**overrides: Any) -> kc.KubeadmParams:
    base: dict[str, Any] = {
        "kind": "join",
        "kubernetes_version": "1.35.0",
        "control_plane_endpoint": "127.0.0.1:7443",
        "discovery_endpoint": "127.0.0.1:7443",
        "node_name": "worker1",
        "node_ip": "10.0.0.31",
        "control_plane": False,
        "token": TOKEN,
        "ca_cert_hashes": [CA_HASH],
    }
    base.update(overrides)
    return kc.KubeadmParams.from_dict(base)


CASES: dict[str, kc.KubeadmParams] = {
    "init-single": init(),
    "init-ha-local": init(etcd_endpoints=ETCD, control_plane_count=3, cert_sans=["10.0.0.11"]),
    "init-nftables": init(proxy_mode="nftables"),
    "init-registry-mirror": init(image_repository="mirror.example.com:5000/k8s"),
    "init-vip": init(control_plane_endpoint="10.0.0.100:7443", etcd_endpoints=ETCD),
    "init-external-endpoint": init(
        control_plane_endpoint="api.example.com:6443",
        cert_sans=["api.example.com", "203.0.113.10"],
        etcd_endpoints=ETCD,
    ),
    "init-single-node-untainted": init(taints=[]),
    "init-custom-networks": init(
        pod_subnet="172.16.0.0/16", service_subnet="172.20.0.0/16", dns_domain="k8s.example", cluster_name="prod"
    ),
    "init-ignore-preflight": init(ignore_preflight_errors=["Swap", "NumCPU"]),
    "join-worker": join(),
    "join-worker-taints": join(taints=[{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]),
    "join-worker-ignore-preflight": join(ignore_preflight_errors=["all"]),
    "join-control-plane": join(
        node_name="cp2",
        node_ip="10.0.0.12",
        advertise_address="10.0.0.12",
        control_plane=True,
        certificate_key=CERT_KEY,
    ),
    "join-control-plane-external-endpoint": join(
        node_name="cp3",
        node_ip="10.0.0.13",
        advertise_address="10.0.0.13",
        control_plane=True,
        certificate_key=CERT_KEY,
        control_plane_endpoint="api.example.com:6443",
        discovery_endpoint="api.example.com:6443",
    ),
}


def leaves(value: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(value, dict):
        out = []
        for key, item in value.items():
            out.extend(leaves(item, f"{prefix}.{key}" if prefix else key))
        return out
    if isinstance(value, list):
        out = []
        for item in value:
            out.extend(leaves(item, prefix + "[]"))
        return out or [(prefix, [])]
    return [(prefix, value)]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden(name: str) -> None:
    text, _shown, _warnings = kc.render(CASES[name])
    path = GOLDEN / f"{name}.yaml"
    if os.environ.get("SMCP_UPDATE_GOLDEN"):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.read_text() == text, f"{path} differs: rerun with SMCP_UPDATE_GOLDEN=1 if intended"


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_field_is_in_the_reference(name: str) -> None:
    """Each rendered field exists in its kind's reference with the documented type and allowed value."""
    text, _shown, _warnings = kc.render(CASES[name])
    docs = list(yaml.safe_load_all(text))
    kinds = [d["kind"] for d in docs]
    if CASES[name].kind == "init":
        assert kinds == ["InitConfiguration", "ClusterConfiguration", "KubeletConfiguration", "KubeProxyConfiguration"]
    else:
        assert kinds == ["JoinConfiguration"]
    for doc in docs:
        table = FIELDS[doc["kind"]]
        for path, value in leaves(doc):
            if value == []:  # an empty list, e.g. taints: [] (meaning no taints, per NodeRegistrationOptions)
                assert path == "nodeRegistration.taints", path
                continue
            assert path in table, f"{doc['kind']}.{path} is not a field we checked against the reference"
            expected, _reference = table[path]
            assert isinstance(value, expected), f"{doc['kind']}.{path}={value!r} should be {expected}"
            if path in ENUMS:
                assert value in ENUMS[path], f"{path}={value!r} not in {ENUMS[path]}"


def test_api_versions_and_fixed_choices() -> None:
    docs = {d["kind"]: d for d in yaml.safe_load_all(kc.render(CASES["init-single"])[0])}
    assert docs["InitConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta4"  # KUBEADM
    assert docs["ClusterConfiguration"]["apiVersion"] == "kubeadm.k8s.io/v1beta4"  # KUBEADM
    assert docs["KubeletConfiguration"]["apiVersion"] == "kubelet.config.k8s.io/v1beta1"  # KUBELET
    assert docs["KubeProxyConfiguration"]["apiVersion"] == "kubeproxy.config.k8s.io/v1alpha1"  # KUBEPROXY
    assert docs["KubeletConfiguration"]["cgroupDriver"] == "systemd"
    # KUBEADM: kubernetesVersion is a semantic version with a leading v; external etcd, no local section
    assert docs["ClusterConfiguration"]["kubernetesVersion"] == "v1.35.0"
    assert set(docs["ClusterConfiguration"]["etcd"]) == {"external"}
    assert (
        docs["ClusterConfiguration"]["etcd"]["external"]["certFile"]
        == "/etc/kubernetes/pki/etcd/apiserver-etcd-client.crt"
    )
    # KUBEADM v1beta4: kubeletExtraArgs is a list of {name, value} (was a map up to v1beta3)
    assert docs["InitConfiguration"]["nodeRegistration"]["kubeletExtraArgs"] == [
        {"name": "node-ip", "value": "10.0.0.11"}
    ]
    assert docs["InitConfiguration"]["nodeRegistration"]["taints"] == [
        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}
    ]


def test_mirror_endpoint_and_sans() -> None:
    mirror = {d["kind"]: d for d in yaml.safe_load_all(kc.render(CASES["init-registry-mirror"])[0])}
    assert mirror["ClusterConfiguration"]["imageRepository"] == "mirror.example.com:5000/k8s"
    ext = {d["kind"]: d for d in yaml.safe_load_all(kc.render(CASES["init-external-endpoint"])[0])}
    assert ext["ClusterConfiguration"]["controlPlaneEndpoint"] == "api.example.com:6443"
    assert ext["ClusterConfiguration"]["apiServer"]["certSANs"] == ["api.example.com", "10.0.0.11", "203.0.113.10"]
    nft = {d["kind"]: d for d in yaml.safe_load_all(kc.render(CASES["init-nftables"])[0])}
    assert nft["KubeProxyConfiguration"]["mode"] == "nftables"


def test_join_documents() -> None:
    worker = yaml.safe_load(kc.render(CASES["join-worker"])[0])
    assert "controlPlane" not in worker
    assert worker["nodeRegistration"]["taints"] == []
    assert worker["discovery"]["bootstrapToken"] == {
        "apiServerEndpoint": "127.0.0.1:7443",
        "token": TOKEN,
        "caCertHashes": [CA_HASH],
    }
    cp = yaml.safe_load(kc.render(CASES["join-control-plane"])[0])
    assert cp["controlPlane"] == {
        "localAPIEndpoint": {"advertiseAddress": "10.0.0.12", "bindPort": 6443},
        "certificateKey": CERT_KEY,
    }
    assert cp["nodeRegistration"]["taints"][0]["key"] == "node-role.kubernetes.io/control-plane"


def test_secrets_only_in_the_file_never_in_the_shown_text() -> None:
    text, shown, _ = kc.render(CASES["join-control-plane"])
    assert TOKEN in text and CERT_KEY in text
    assert TOKEN not in shown and CERT_KEY not in shown
    assert all(TOKEN not in (GOLDEN / f"{name}.yaml").read_text() for name in CASES if name.startswith("init"))


def test_yaml_writer_quotes_what_yaml_would_misread() -> None:
    docs = [{"a": "true", "b": "10.0.0.1", "c": "1.35", "d": "x: y", "e": "", "f": "plain-ok", "g": "#x", "h": 3}]
    assert yaml.safe_load(kc.to_yaml(docs)) == docs[0]
    assert "f: plain-ok" in kc.to_yaml(docs)


def test_two_control_planes_warn_and_three_do_not() -> None:
    _t, _s, warnings = kc.render(init(control_plane_count=2))
    assert len(warnings) == 1 and "fault tolerance" in warnings[0]
    assert kc.render(init(control_plane_count=3))[2] == []
    assert kc.render(init(control_plane_count=4))[2] == []  # even is fine: etcd is separate


BAD = [
    (init(kubernetes_version="1.35"), "kubernetes_version"),
    (init(node_name="CP_1"), "node_name"),
    (init(control_plane_endpoint="127.0.0.1"), "control_plane_endpoint"),
    (init(control_plane_endpoint="10.0.0.1:99999"), "control_plane_endpoint"),
    (init(advertise_address=""), "advertise_address"),
    (init(advertise_address="cp1.example"), "advertise_address"),
    (init(node_ip="not-an-ip"), "node_ip"),
    (init(pod_subnet="10.244.0.1/16"), "pod_subnet"),
    (init(service_subnet="10.244.0.0/20"), "service_subnet"),
    (init(service_subnet="10.0.0.0/8"), "service_subnet"),
    (init(etcd_endpoints=[]), "etcd_endpoints"),
    (init(etcd_endpoints=["http://10.0.0.21:2379"]), "etcd_endpoints[0]"),
    (init(etcd_endpoints=[ETCD[0], "https://10.0.0.22"]), "etcd_endpoints[1]"),
    (init(etcd_ca_file="pki/ca.crt"), "etcd_ca_file"),
    (init(proxy_mode="ipvs"), "proxy_mode"),
    (init(kubernetes_version="1.30.4"), "kubernetes_version"),
    (init(image_repository="https://mirror.example.com/"), "image_repository"),
    (init(cri_socket="/run/containerd/containerd.sock"), "cri_socket"),
    (init(taints=[{"key": "a", "effect": "NoWay"}]), "taints[0].effect"),
    (init(taints=[{"key": "a", "effect": "NoSchedule", "operator": "Exists"}]), "taints[0]"),
    (init(taints=[{"value": "x", "effect": "NoSchedule"}]), "taints[0]"),
    (init(cert_sans=["bad name"]), "cert_sans[0]"),
    (init(ignore_preflight_errors=["Swap", "no spaces"]), "ignore_preflight_errors[1]"),
    (init(kubelet_version="1.36.0", api_server_version="1.35.0"), "kubelet_version"),
    (join(token="not-a-token"), "token"),
    (join(ca_cert_hashes=[]), "ca_cert_hashes"),
    (join(ca_cert_hashes=["md5:abc"]), "ca_cert_hashes[0]"),
    (join(discovery_endpoint=""), "discovery_endpoint"),
    (join(control_plane=True, advertise_address="10.0.0.12", certificate_key="short"), "certificate_key"),
    (join(kubelet_version="1.36.0", api_server_version="1.35.2"), "kubelet_version"),
    (join(kubelet_version="1.31.0", api_server_version="1.35.2"), "kubelet_version"),
    (join(kubelet_version="2.0.0", api_server_version="1.35.2"), "kubelet_version"),
]


@pytest.mark.parametrize(("params", "field"), BAD, ids=[f"{i}-{f}" for i, (_p, f) in enumerate(BAD)])
def test_bad_input_names_field_value_and_fix(params: kc.KubeadmParams, field: str) -> None:
    with pytest.raises(kc.ConfigError) as exc:
        kc.render(params)
    assert exc.value.field == field
    assert exc.value.fix and exc.value.problem
    assert field in str(exc.value) and "fix:" in str(exc.value)
    assert TOKEN not in str(exc.value)  # secrets never echoed
    if field in ("token", "certificate_key"):
        assert exc.value.value == "<hidden>"


@pytest.mark.parametrize(
    ("kubelet", "server", "ok"),
    [
        ("1.35.0", "1.35.2", True),
        ("1.32.9", "1.35.0", True),  # three minors older: allowed
        ("1.31.0", "1.35.0", False),  # four: not allowed
        ("1.36.0", "1.35.0", False),  # newer than the API server
        ("v1.35.1", "v1.35.0", True),  # patch differences never matter
    ],
)
def test_skew_policy(kubelet: str, server: str, ok: bool) -> None:
    if ok:
        kc.check_skew(kubelet, server)
    else:
        with pytest.raises(kc.ConfigError):
            kc.check_skew(kubelet, server)


# --------------------------------------------------------------------------- the module


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def module_args(path: Path, **extra: Any) -> dict[str, Any]:
    args = {
        "path": str(path),
        "kind": "init",
        "kubernetes_version": "1.35.0",
        "control_plane_endpoint": "127.0.0.1:7443",
        "node_name": "cp1",
        "node_ip": "10.0.0.11",
        "advertise_address": "10.0.0.11",
        "etcd_endpoints": ETCD[:1],
    }
    args.update(extra)
    return args


def test_module_writes_0600_once_then_reports_no_change(tmp_path: Path, capsys) -> None:
    target = tmp_path / "smcp" / "kubeadm-init.yaml"
    first = run(capsys, **module_args(target))
    assert first["changed"] and first["kinds"][0] == "InitConfiguration"
    assert target.read_text() == (GOLDEN / "init-single.yaml").read_text()
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) == 0o700
    assert run(capsys, **module_args(target))["changed"] is False
    target.chmod(0o644)
    assert run(capsys, **module_args(target))["changed"] is True
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_module_check_and_diff_mode_write_nothing_and_hide_secrets(tmp_path: Path, capsys) -> None:
    target = tmp_path / "kubeadm-join.yaml"
    args = module_args(
        target,
        kind="join",
        control_plane=True,
        node_name="cp2",
        advertise_address="10.0.0.12",
        discovery_endpoint="127.0.0.1:7443",
        token=TOKEN,
        ca_cert_hashes=[CA_HASH],
        certificate_key=CERT_KEY,
        _ansible_check_mode=True,
        _ansible_diff=True,
    )
    result = run(capsys, **args)
    assert result["changed"] and not target.exists()
    out = json.dumps(result)
    assert TOKEN not in out and CERT_KEY not in out
    assert "<redacted>" in result["diff"]["after"]


def test_module_bad_input_fails_with_the_field(tmp_path: Path, capsys) -> None:
    result = run(capsys, **module_args(tmp_path / "x.yaml", etcd_endpoints=["http://10.0.0.21:2379"]))
    assert result["failed"] and result["error"]["field"] == "etcd_endpoints[0]"
    assert not (tmp_path / "x.yaml").exists()


def test_module_warns_about_two_control_planes(tmp_path: Path, capsys, monkeypatch) -> None:
    # once a controller-side module (a filter plugin) is imported, warn() goes to the display instead
    from ansible.module_utils import _internal

    monkeypatch.setattr(_internal, "is_controller", False)
    result = run(capsys, **module_args(tmp_path / "x.yaml", control_plane_count=2))
    assert "fault tolerance" in json.dumps(result["warnings"])  # 2.19 returns structured warnings


# --------------------------------------------------------------------------- cross-check with the stand-in


@pytest.mark.parametrize("name", sorted(CASES))
def test_standin_kubeadm_accepts_the_golden_files(name: str, tmp_path: Path) -> None:
    """tests/standins' kubeadm has its own v1beta4 field table and strict decoding: a second opinion."""
    standin = Path(__file__).resolve().parents[3] / "standins" / "kubeadm"
    env = {**os.environ, "SMCP_STANDIN_ROOT": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(standin), "config", "validate", "--config", str(GOLDEN / f"{name}.yaml")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_nftables_needs_1_31_even_if_the_table_had_older_versions(monkeypatch) -> None:
    monkeypatch.setattr(kc._versions, "is_supported", lambda _v: True)
    with pytest.raises(kc.ConfigError) as exc:
        kc.render(init(proxy_mode="nftables", kubernetes_version="1.30.4"))
    assert exc.value.field == "proxy_mode"


def test_taint_effect_defaults_to_noschedule_like_node_config() -> None:
    doc = yaml.safe_load(kc.render(join(taints=[{"key": "gpu"}]))[0])
    assert doc["nodeRegistration"]["taints"] == [{"key": "gpu", "effect": "NoSchedule"}]
