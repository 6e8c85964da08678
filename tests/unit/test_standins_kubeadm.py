"""The kubeadm/kubelet stand-ins run locally in relocated roots (SMCP_STANDIN_ROOT) against the API test server.

Configs come from the collection's own renderer (module_utils/kubeadm_config), so a field the renderer emits
that kubeadm v1beta4 would reject fails here.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from ansible_collections.smcp.platform.plugins.module_utils import kubeadm_config
from kubernetes import client

from tests.standins.kubeapi import KubeAPI
from tests.standins.standin import ca_hash

STANDIN = Path(__file__).resolve().parents[2] / "tests" / "standins" / "standin.py"


def run(root: Path, api: KubeAPI | None, *args: str, host: str = "h1", check: bool = True, version: str = "1.35.0"):
    env = dict(os.environ, SMCP_STANDIN_ROOT=str(root), SMCP_STANDIN_HOSTNAME=host, SMCP_STANDIN_VERSION=version)
    if api is not None:
        env["SMCP_STANDIN_API"] = api.url
    res = subprocess.run(
        [sys.executable, str(STANDIN), *args], capture_output=True, text=True, env=env, timeout=120, check=False
    )
    if check:
        assert res.returncode == 0, res.stdout + res.stderr
    return res


def render(tmp: Path, name: str, **params) -> Path:
    params.setdefault("control_plane_endpoint", "10.0.0.1:6443")
    text, _, _ = kubeadm_config.render(kubeadm_config.KubeadmParams.from_dict(params))
    path = tmp / name
    path.write_text(text)
    return path


def calls(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "var/lib/smcp-standin/calls.jsonl").read_text().splitlines()]


@pytest.fixture
def api():
    with KubeAPI() as server:
        yield server


def _root(tmp_path: Path, name: str, upstream: str) -> Path:
    root = tmp_path / name
    (root / "etc/smcp-standin").mkdir(parents=True)
    (root / "etc/smcp-standin/upstream").write_text(upstream + "\n")
    return root


def test_version_and_call_recording(tmp_path: Path) -> None:
    root = tmp_path / "h"
    assert run(root, None, "kubeadm", "version", "-o", "short", version="1.34.4").stdout.strip() == "v1.34.4"
    info = json.loads(run(root, None, "kubeadm", "version", "-o", "json").stdout)
    assert info["clientVersion"]["gitVersion"] == "v1.35.0"
    assert run(root, None, "kubelet", "--version").stdout.strip() == "Kubernetes v1.35.0"
    assert run(root, None, "kubectl", "get", "nodes", check=False).returncode == 1
    recorded = calls(root)
    assert [c["argv"] for c in recorded] == [
        ["kubeadm", "version", "-o", "short"],
        ["kubeadm", "version", "-o", "json"],
        ["kubectl", "get", "nodes"],
    ]
    assert {c["host"] for c in recorded} == {"h1"} and recorded[0]["version"] == "1.34.4"
    assert oct((root / "var/lib/smcp-standin/calls.jsonl").stat().st_mode & 0o777) == "0o600"


def test_config_validate_accepts_the_collection_renderer_and_rejects_kubeadm_errors(tmp_path: Path) -> None:
    root = tmp_path / "h"
    good = render(
        tmp_path,
        "init.yaml",
        kind="init",
        control_plane_endpoint="127.0.0.1:7443",
        node_name="h1",
        advertise_address="10.0.0.1",
        etcd_endpoints=["https://10.0.0.1:2379"],
        node_ip="10.0.0.1",
    )
    res = run(root, None, "kubeadm", "config", "validate", "--config", str(good))
    assert res.stdout.strip() == "ok"
    assert calls(root)[0]["config"] == good.read_text()

    docs = list(yaml.safe_load_all(good.read_text()))
    cases = {
        "unknown field": (
            {"kind": "ClusterConfiguration"},
            {"apiServer": {"certSans": ["x"]}},
            'unknown field "apiServer.certSans"',
        ),
        "v1beta3 map extraArgs": (
            {"kind": "ClusterConfiguration"},
            {"apiServer": {"extraArgs": {"v": "2"}}},
            "apiServer.extraArgs: must be a list of {name, value}",
        ),
        "old apiVersion": (
            {"kind": "InitConfiguration"},
            {"apiVersion": "kubeadm.k8s.io/v1beta3"},
            "use kubeadm.k8s.io/v1beta4",
        ),
        "too new": ({"kind": "ClusterConfiguration"}, {"kubernetesVersion": "v1.36.0"}, "control plane version <="),
        "bad subnet": (
            {"kind": "ClusterConfiguration"},
            {"networking": {"podSubnet": "10.244.0.1/16"}},
            "couldn't parse",
        ),
    }
    for label, (match, change, message) in cases.items():
        broken = [dict(d, **change) if d["kind"] == match["kind"] else d for d in docs]
        path = tmp_path / f"{label}.yaml"
        path.write_text(yaml.safe_dump_all(broken))
        res = run(root, None, "kubeadm", "config", "validate", "--config", str(path), check=False)
        assert res.returncode == 1, label
        assert message in res.stderr, (label, res.stderr)

    join = {
        "apiVersion": "kubeadm.k8s.io/v1beta4",
        "kind": "JoinConfiguration",
        "discovery": {"bootstrapToken": {"apiServerEndpoint": "127.0.0.1:7443", "token": "abcdef.0123456789abcdef"}},
    }
    path = tmp_path / "join.yaml"
    path.write_text(yaml.safe_dump(join))
    res = run(root, None, "kubeadm", "config", "validate", "--config", str(path), check=False)
    assert res.returncode == 1 and "without caCertHashes can be unsafe" in res.stderr


def test_init_then_joins_against_the_api(tmp_path: Path, api: KubeAPI) -> None:
    h1, h2, h3 = (_root(tmp_path, h, api.url) for h in ("h1", "h2", "h3"))
    common = {"control_plane_endpoint": "10.0.0.1:6443", "etcd_endpoints": ["https://10.0.0.1:2379"]}
    init = render(tmp_path, "init.yaml", kind="init", node_name="h1", advertise_address="10.0.0.1", **common)
    core = client.CoreV1Api(client.ApiClient(client.Configuration(host=api.url)))
    core.create_node({"metadata": {"name": "h1"}})  # no kubelet runs outside a host: the Node is made here
    etcd_files = {
        "etc/kubernetes/pki/etcd/ca.crt": b"etcd ca",
        "etc/kubernetes/pki/etcd/apiserver-etcd-client.crt": b"client crt",
        "etc/kubernetes/pki/etcd/apiserver-etcd-client.key": b"client key",
    }
    for rel, data in etcd_files.items():  # the etcd role's files (where it puts them) on the first control plane
        (h1 / rel).parent.mkdir(parents=True, exist_ok=True)
        (h1 / rel).write_bytes(data)
    out = run(h1, api, "kubeadm", "init", "--config", str(init), "--upload-certs").stdout
    key = out.split("Using certificate key:\n")[1].split()[0]
    assert len(key) == 64
    for f in (
        "etc/kubernetes/admin.conf",
        "etc/kubernetes/kubelet.conf",
        "etc/kubernetes/pki/ca.crt",
        "var/lib/kubelet/config.yaml",
        "etc/kubernetes/manifests/kube-apiserver.yaml",
    ):
        assert (h1 / f).exists(), f
    admin = yaml.safe_load((h1 / "etc/kubernetes/admin.conf").read_text())
    assert admin["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    ca_pem = (h1 / "etc/kubernetes/pki/ca.crt").read_bytes()
    assert base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"]) == ca_pem
    sans = subprocess.run(
        ["openssl", "x509", "-noout", "-ext", "subjectAltName", "-in", str(h1 / "etc/kubernetes/pki/apiserver.crt")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "IP Address:10.0.0.1" in sans and "DNS:kubernetes.default.svc.cluster.local" in sans
    node = core.read_node("h1")
    assert "node-role.kubernetes.io/control-plane" in node.metadata.labels
    assert [t.key for t in node.spec.taints] == ["node-role.kubernetes.io/control-plane"]
    assert core.read_namespaced_config_map("kubeadm-config", "kube-system").data["ClusterConfiguration"]
    assert core.read_namespaced_secret("kubeadm-certs", "kube-system").data["ca.key"]

    # a second init on the same host is refused by the preflight check
    again = run(h1, api, "kubeadm", "init", "--config", str(init), check=False)
    assert again.returncode == 1 and "/etc/kubernetes/admin.conf already exists" in again.stderr

    token = run(h1, api, "kubeadm", "token", "create").stdout.strip()
    hashes = [ca_hash(ca_pem)]
    worker = render(
        tmp_path,
        "w.yaml",
        kind="join",
        node_name="h2",
        discovery_endpoint="10.0.0.1:6443",
        token=token,
        ca_cert_hashes=hashes,
        control_plane=False,
    )
    run(h2, api, "kubeadm", "join", "--config", str(worker), host="h2")
    assert (h2 / "etc/kubernetes/kubelet.conf").exists() and not (h2 / "etc/kubernetes/admin.conf").exists()
    assert (h2 / "etc/kubernetes/pki/ca.crt").read_bytes() == ca_pem
    assert "KubeletConfiguration" in (h2 / "var/lib/kubelet/config.yaml").read_text()

    bad_key = render(
        tmp_path,
        "cpbad.yaml",
        kind="join",
        node_name="h3",
        discovery_endpoint="10.0.0.1:6443",
        token=token,
        ca_cert_hashes=hashes,
        control_plane=True,
        advertise_address="10.0.0.3",
        certificate_key="0" * 64,
    )
    res = run(h3, api, "kubeadm", "join", "--config", str(bad_key), host="h3", check=False)
    assert res.returncode == 1 and "wrong certificate key" in res.stderr
    wrong_ca = render(
        tmp_path,
        "cpca.yaml",
        kind="join",
        node_name="h3",
        discovery_endpoint="10.0.0.1:6443",
        token=token,
        ca_cert_hashes=["sha256:" + "1" * 64],
        control_plane=False,
    )
    res = run(h3, api, "kubeadm", "join", "--config", str(wrong_ca), host="h3", check=False)
    assert res.returncode == 1 and "are pinned" in res.stderr
    cp = render(
        tmp_path,
        "cp.yaml",
        kind="join",
        node_name="h3",
        discovery_endpoint="10.0.0.1:6443",
        token=token,
        ca_cert_hashes=hashes,
        control_plane=True,
        advertise_address="10.0.0.3",
        certificate_key=key,
    )
    core.create_node({"metadata": {"name": "h3"}})
    run(h3, api, "kubeadm", "join", "--config", str(cp), host="h3")
    assert (h3 / "etc/kubernetes/pki/ca.key").read_bytes() == (h1 / "etc/kubernetes/pki/ca.key").read_bytes()
    assert (h3 / "etc/kubernetes/admin.conf").exists()
    assert {rel: (h3 / rel).read_bytes() for rel in etcd_files} == etcd_files  # shared through kubeadm-certs
    assert "node-role.kubernetes.io/control-plane" in core.read_node("h3").metadata.labels

    # upgrade: one minor at a time, never beyond kubeadm's own version
    res = run(h1, api, "kubeadm", "upgrade", "apply", "v1.36.0", "--yes", check=False)
    assert res.returncode == 1 and "higher than the kubeadm version" in res.stderr
    res = run(h1, api, "kubeadm", "upgrade", "apply", "v1.37.0", "--yes", check=False, version="1.37.0")
    assert res.returncode == 1 and "only 1 minor version at a time" in res.stderr
    run(h1, api, "kubeadm", "upgrade", "apply", "v1.36.1", "--yes", version="1.36.1")
    stored = core.read_namespaced_config_map("kubeadm-config", "kube-system").data["ClusterConfiguration"]
    assert yaml.safe_load(stored)["kubernetesVersion"] == "v1.36.1"
    assert "kube-apiserver:v1.36.1" in (h1 / "etc/kubernetes/manifests/kube-apiserver.yaml").read_text()
    run(h3, api, "kubeadm", "upgrade", "node", host="h3", version="1.36.1")
    assert (h3 / "etc/smcp-standin/cluster-version").read_text().strip() == "1.36.1"

    table = run(h1, api, "kubeadm", "certs", "check-expiration").stdout
    assert "apiserver " in table and "admin.conf" in table and "CERTIFICATE AUTHORITY" in table
    before = (h1 / "etc/kubernetes/pki/apiserver.crt").read_bytes()
    (h1 / "etc/smcp-standin/cert-days").write_text("30\n")  # short-lived certificates for renewal tests
    run(h1, api, "kubeadm", "certs", "renew", "all")
    assert (h1 / "etc/kubernetes/pki/apiserver.crt").read_bytes() != before
    table = run(h1, api, "kubeadm", "certs", "check-expiration").stdout
    rows = {line.split()[0]: line for line in table.splitlines() if line.strip()}
    assert " 29d " in rows["apiserver"] and " 29d " in rows["admin.conf"] and " 3649d " in rows["ca"]

    run(h2, api, "kubeadm", "reset", "-f", host="h2")
    assert not (h2 / "etc/kubernetes/kubelet.conf").exists() and not (h2 / "etc/kubernetes/pki").exists()

    argv = [c["argv"][:2] for c in calls(h1)]
    assert argv[0] == ["kubeadm", "init"] and ["kubeadm", "join"] not in argv
    assert [c["argv"][:2] for c in calls(h2)] == [["kubeadm", "join"], ["kubeadm", "reset"]]
    assert "JoinConfiguration" in calls(h2)[0]["config"]


def test_apiserver_and_kubelet_standins_over_tls(tmp_path: Path, api: KubeAPI) -> None:
    """The TLS kube-apiserver stand-in answers health itself and proxies to the API; the kubelet registers."""
    h1 = _root(tmp_path, "h1", api.url)
    init = render(
        tmp_path,
        "init.yaml",
        kind="init",
        node_name="h1",
        advertise_address="127.0.0.1",
        control_plane_endpoint="127.0.0.1:16443",
        bind_port=16443,
        etcd_endpoints=["https://127.0.0.1:2379"],
    )
    run(h1, api, "kubeadm", "init", "--config", str(init))
    conf = h1 / "etc/smcp-standin/apiserver.json"
    cfg = json.loads(conf.read_text())
    assert cfg["port"] == 16443 and cfg["upstream"] == api.url
    env = dict(os.environ, SMCP_STANDIN_ROOT=str(h1), SMCP_STANDIN_HOSTNAME="h1", SMCP_STANDIN_HEARTBEAT="0.5")
    server = subprocess.Popen(
        [sys.executable, str(STANDIN), "kubeadm", "standin-apiserver", "--config", str(conf)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    kubelet = None
    try:
        ctx = ssl.create_default_context(cafile=str(h1 / "etc/kubernetes/pki/ca.crt"))
        for _ in range(100):
            try:
                with urllib.request.urlopen("https://127.0.0.1:16443/readyz", context=ctx, timeout=2) as r:
                    assert r.read() == b"ok" and r.headers["X-Smcp-Standin-Host"] == "h1"
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the apiserver stand-in did not answer")
        with urllib.request.urlopen("https://127.0.0.1:16443/version", context=ctx, timeout=5) as r:
            assert json.loads(r.read())["gitVersion"] == "v1.35.0"
        env_api = {k: v for k, v in env.items() if k != "SMCP_STANDIN_API"}
        kubelet = subprocess.Popen(
            [
                sys.executable,
                str(STANDIN),
                "kubelet",
                "--kubeconfig=/etc/kubernetes/kubelet.conf",
                "--node-ip=127.0.0.1",
                "--node-labels=smcp.io/pool=a",
                "--unknown-flag=ignored",
            ],
            env=env_api,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        core = client.CoreV1Api(client.ApiClient(client.Configuration(host=api.url)))
        for _ in range(100):
            if any(r["method"] == "PATCH" and r["path"] == "/api/v1/nodes/h1/status" for r in api.requests):
                break
            time.sleep(0.1)
        node = core.read_node("h1")
        assert node.metadata.labels["smcp.io/pool"] == "a"
        # Kubelet config and certificates are in place, but no pod network yet: NotReady, as a real kubelet says.
        ready = {c.type: c for c in node.status.conditions}["Ready"]
        assert ready.status == "False" and "cni plugin not initialized" in ready.message, ready
        # The pod network is applied (what the cni role does): its install step writes the node's CNI config.
        _apply_calico(api)
        for _ in range(100):
            node = core.read_node("h1")
            if {c.type: c.status for c in node.status.conditions}["Ready"] == "True":
                break
            time.sleep(0.1)
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        conflist = json.loads((h1 / "etc/cni/net.d/10-calico.conflist").read_text())
        assert conflist["plugins"][0]["nodename"] == "h1" and conflist["plugins"][0]["mtu"] == 1440
        assert node.status.node_info.kubelet_version == "v1.35.0"
        assert {a.type: a.address for a in node.status.addresses}["InternalIP"] == "127.0.0.1"
        proxied = [r for r in api.requests if r["path"] == "/api/v1/nodes/h1/status"]
        assert proxied and proxied[0]["via"] == "h1"  # went through the TLS stand-in, not straight to the API
    finally:
        for proc in (kubelet, server):
            if proc is not None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(10)


def _apply_calico(api: KubeAPI) -> None:
    """The calico-node DaemonSet and its calico-config, as the cni role applies them (only what the kubelet reads)."""
    network = {"name": "k8s-pod-network", "cniVersion": "0.3.1"}
    network["plugins"] = [{"type": "calico", "nodename": "__KUBERNETES_NODE_NAME__", "mtu": "__CNI_MTU__"}]
    api.handler.store[("", "configmaps", "kube-system", "calico-config")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "calico-config", "namespace": "kube-system", "resourceVersion": "1"},
        "data": {"veth_mtu": "1440", "cni_network_config": json.dumps(network)},
    }
    api.handler.store[("apps", "daemonsets", "kube-system", "calico-node")] = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": "calico-node", "namespace": "kube-system", "resourceVersion": "1"},
        "spec": {},
    }


CERT = b"-----BEGIN CERTIFICATE-----\nMIIBstandin\n-----END CERTIFICATE-----\n"


def _configured_node(root: Path, url: str) -> Path:
    """A node whose kubelet has its config, the cluster CA, a client certificate and a CNI config."""
    (root / "var/lib/kubelet").mkdir(parents=True)
    (root / "var/lib/kubelet/config.yaml").write_text(
        "apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\n"
    )
    (root / "etc/kubernetes/pki").mkdir(parents=True)
    (root / "etc/kubernetes/pki/ca.crt").write_bytes(CERT)
    (root / "etc/cni/net.d").mkdir(parents=True)
    (root / "etc/cni/net.d/10-test.conflist").write_text(json.dumps({"name": "t", "plugins": [{"type": "bridge"}]}))
    conf = root / "kubelet.conf"
    user = {"client-certificate-data": base64.b64encode(CERT).decode()}
    conf.write_text(yaml.safe_dump({"clusters": [{"cluster": {"server": url}}], "users": [{"user": user}]}))
    return conf


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ("var/lib/kubelet/config.yaml", "kubelet config /var/lib/kubelet/config.yaml is missing"),
        ("etc/kubernetes/pki/ca.crt", "client CA certificate /etc/kubernetes/pki/ca.crt is missing"),
        ("etc/cni/net.d/10-test.conflist", "cni plugin not initialized (no network config in /etc/cni/net.d)"),
    ],
)
def test_kubelet_is_ready_only_with_its_configuration_in_place(tmp_path, api, remove, message):
    root = _root(tmp_path, "h1", api.url)
    _configured_node(root, api.url)
    (root / remove).unlink()
    env = dict(os.environ, SMCP_STANDIN_ROOT=str(root), SMCP_STANDIN_HOSTNAME="h1", SMCP_STANDIN_HEARTBEAT="0.2")
    kubelet = subprocess.Popen([sys.executable, str(STANDIN), "kubelet", "--kubeconfig", "/kubelet.conf"], env=env)
    core = client.CoreV1Api(client.ApiClient(client.Configuration(host=api.url)))
    try:
        for _ in range(100):
            if any(r["method"] == "PATCH" and r["path"] == "/api/v1/nodes/h1/status" for r in api.requests):
                break
            time.sleep(0.1)
        ready = {c.type: c for c in core.read_node("h1").status.conditions}["Ready"]
        assert ready.status == "False" and ready.reason == "KubeletNotReady"
        assert message in ready.message, ready.message
    finally:
        kubelet.send_signal(signal.SIGTERM)
        kubelet.wait(10)


def test_injected_kubeadm_failure_and_not_ready_kubelet(tmp_path: Path, api: KubeAPI) -> None:
    root = _root(tmp_path, "h1", api.url)
    (root / "etc/smcp-standin/fail").write_text("# upgrade of this node fails\n^upgrade node\n")
    res = run(root, None, "kubeadm", "upgrade", "node", check=False)
    assert res.returncode == 1 and "injected failure" in res.stderr
    assert run(root, None, "kubeadm", "version", "-o", "short").returncode == 0  # other calls are unaffected
    recorded = calls(root)
    assert recorded[0]["injected_failure"] == "^upgrade node" and "injected_failure" not in recorded[1]

    _configured_node(root, api.url)
    (root / "etc/smcp-standin/kubelet-not-ready").write_text("")
    env = dict(os.environ, SMCP_STANDIN_ROOT=str(root), SMCP_STANDIN_HOSTNAME="h1", SMCP_STANDIN_HEARTBEAT="0.2")
    kubelet = subprocess.Popen([sys.executable, str(STANDIN), "kubelet", "--kubeconfig", "/kubelet.conf"], env=env)
    core = client.CoreV1Api(client.ApiClient(client.Configuration(host=api.url)))

    def ready() -> str | None:
        try:
            conditions = core.read_node("h1").status.conditions or []
        except client.ApiException:
            return None
        return {c.type: c.status for c in conditions}.get("Ready")

    try:
        for _ in range(100):
            if ready() == "False":
                break
            time.sleep(0.1)
        assert ready() == "False"
        (root / "etc/smcp-standin/kubelet-not-ready").unlink()
        for _ in range(100):
            if ready() == "True":
                break
            time.sleep(0.1)
        assert ready() == "True"
    finally:
        kubelet.send_signal(signal.SIGTERM)
        kubelet.wait(10)
