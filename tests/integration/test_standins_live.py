"""The stand-ins on real sandbox hosts: kubeadm init on host 1, join on host 2, against the API test server.

The Kubernetes API test server runs in this process, bound to the sandbox gateway (hosts reach the
controller there). The bundle is built with that URL as the kube-apiserver stand-in's upstream.
Run under the machine-wide lock: `flock /tmp/smcp-heavy.lock pytest -m sandbox tests/integration/test_standins_live.py`.
"""

from __future__ import annotations

import json
import secrets
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from kubernetes import client

from tests.standins import bundle
from tests.standins.kubeapi import KubeAPI
from tests.standins.standin import ca_hash, new_token, token_secret

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".venv" / "collections"))
from ansible_collections.smcp.platform.plugins.module_utils import kubeadm_config

from tests.sandbox_ssh import ssh_argv

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
NAME = f"sti-{secrets.token_hex(2)}"  # the STANDINS sandbox prefix; unique per run

KUBELET_UNIT = """[Unit]
Description=kubelet stand-in
After=network-online.target
[Service]
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
ExecStart=/usr/local/bin/kubelet --kubeconfig=/etc/kubernetes/kubelet.conf --config=/var/lib/kubelet/config.yaml \
$KUBELET_KUBEADM_ARGS
Restart=always
RestartSec=2
[Install]
WantedBy=multi-user.target
"""


def _run(*cmd: str, check: bool = True, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    res = subprocess.run(list(cmd), capture_output=True, check=False, input=stdin, timeout=600)
    if check and res.returncode != 0:
        raise AssertionError(
            f"{cmd}: rc={res.returncode}\n{res.stdout.decode()[-3000:]}\n{res.stderr.decode()[-3000:]}"
        )
    return res


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Box:
    def __init__(self, info: dict) -> None:
        self.info = info
        self.hosts = info["hosts"]

    def ssh(self, host: dict, command: str, stdin: bytes | None = None, check: bool = True):
        return _run(
            *ssh_argv(host),
            f"sudo sh -c {json.dumps(command)}",
            stdin=stdin,
            check=check,
        )

    def put(self, host: dict, path: str, data: bytes, mode: str = "0644") -> None:
        self.ssh(host, f"mkdir -p $(dirname {path}) && cat > {path} && chmod {mode} {path}", stdin=data)


@pytest.fixture(scope="module")
def box():
    up = _run(SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", NAME, "--json")
    try:
        yield Box(json.loads(up.stdout))
    finally:
        _run(SMCPCTL, "sandbox", "down", "--name", NAME, check=False)


@pytest.fixture(scope="module")
def api(box: Box, tmp_path_factory):
    gateway = box.info["gateway"]
    log = tmp_path_factory.mktemp("kubeapi") / "requests.jsonl"
    with KubeAPI(host=gateway, port=_free_port(gateway), log=log) as server:
        yield server


def test_init_then_join_on_sandbox_hosts(box: Box, api: KubeAPI, tmp_path: Path) -> None:
    h1, h2 = box.hosts
    built = bundle.build(
        tmp_path / "bundle", "1.35.0", "amd64", api.url, Path("/var/cache/smcp/standins"), use_apt=False, images=False
    )
    exe = (Path(built["dir"]) / "bin" / "kubeadm").read_bytes()
    for host in (h1, h2):
        box.put(host, "/usr/local/bin/kubeadm", exe, "0755")
        box.put(host, "/usr/local/bin/kubelet", exe, "0755")
        box.put(host, "/etc/systemd/system/kubelet.service", KUBELET_UNIT.encode())
        box.ssh(host, "command -v openssl && systemctl daemon-reload && systemctl enable kubelet.service")
    common = {"control_plane_endpoint": f"{h1['ip']}:6443", "etcd_endpoints": [f"https://{h1['ip']}:2379"]}
    init, _, _ = kubeadm_config.render(
        kubeadm_config.KubeadmParams.from_dict(
            dict(common, kind="init", node_name=h1["name"], advertise_address=h1["ip"], node_ip=h1["ip"])
        )
    )
    box.put(h1, "/etc/kubernetes/smcp/kubeadm-init.yaml", init.encode(), "0600")
    init_cmd = "kubeadm init --config /etc/kubernetes/smcp/kubeadm-init.yaml --upload-certs"
    refused = box.ssh(h1, init_cmd, check=False)  # no etcd client files: kubeadm's preflight refuses
    assert refused.returncode == 1
    assert b"[ERROR ExternalEtcdClientCertificates]: /etc/kubernetes/pki/etcd/ca.crt doesn't exist" in refused.stderr
    skip = " --ignore-preflight-errors=ExternalEtcdClientCertificates,ExternalEtcdVersion"  # no etcd in this test
    out = box.ssh(h1, init_cmd + skip).stdout.decode()
    assert "initialized successfully" in out

    ca_pem = box.ssh(h1, "cat /etc/kubernetes/pki/ca.crt").stdout
    core = client.CoreV1Api(client.ApiClient(client.Configuration(host=api.url)))
    token = new_token()  # as the bootstrap_token module does: a Secret made through the API
    core.create_namespaced_secret("kube-system", token_secret(token, 3600))
    join, _, _ = kubeadm_config.render(
        kubeadm_config.KubeadmParams.from_dict(
            dict(
                common,
                kind="join",
                node_name=h2["name"],
                node_ip=h2["ip"],
                control_plane=False,
                discovery_endpoint=f"{h1['ip']}:6443",
                token=token,
                ca_cert_hashes=[ca_hash(ca_pem)],
            )
        )
    )
    box.put(h2, "/etc/kubernetes/smcp/kubeadm-join.yaml", join.encode(), "0600")
    out = box.ssh(h2, "kubeadm join --config /etc/kubernetes/smcp/kubeadm-join.yaml").stdout.decode()
    assert "This node has joined the cluster" in out
    # No pod network is applied here: the test writes the nodes' CNI config (the kubelet stand-in reports Ready only
    # with its configuration, certificates and a CNI config in place).
    for host in (h1, h2):
        conflist = {"cniVersion": "0.3.1", "name": "test", "plugins": [{"type": "bridge", "bridge": "cni0"}]}
        box.put(host, "/etc/cni/net.d/10-test.conflist", json.dumps(conflist).encode(), "0644")

    def ready(name: str) -> bool:
        try:
            node = core.read_node(name)
        except client.ApiException:
            return False
        return {c.type: c.status for c in node.status.conditions or []}.get("Ready") == "True"

    for _ in range(120):
        if ready(h1["name"]) and ready(h2["name"]):
            break
        time.sleep(0.5)
    nodes = {n.metadata.name: n for n in core.list_node().items}
    assert set(nodes) == {h1["name"], h2["name"]}
    assert all(ready(n) for n in nodes)
    assert {n.status.node_info.kubelet_version for n in nodes.values()} == {"v1.35.0"}
    assert "node-role.kubernetes.io/control-plane" in nodes[h1["name"]].metadata.labels
    assert "node-role.kubernetes.io/control-plane" not in nodes[h2["name"]].metadata.labels
    internal = {a.type: a.address for a in nodes[h2["name"]].status.addresses}["InternalIP"]
    assert internal == h2["ip"]

    # the kube-apiserver stand-in answers over TLS with a certificate the cluster CA signed for the endpoint
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    with urllib.request.urlopen(f"https://{h1['ip']}:6443/readyz", context=ctx, timeout=10) as resp:
        assert resp.read() == b"ok"
        assert resp.headers["X-Smcp-Standin-Host"] == h1["name"]
    # both kubelets reached the API through it (kubelet.conf names the controlPlaneEndpoint)
    vias = {r["via"] for r in api.requests if r["path"].startswith("/api/v1/nodes/") and r["method"] == "PATCH"}
    assert vias == {h1["name"]}

    first = [json.loads(line) for line in box.ssh(h1, "cat /var/lib/smcp-standin/calls.jsonl").stdout.splitlines()]
    second = [json.loads(line) for line in box.ssh(h2, "cat /var/lib/smcp-standin/calls.jsonl").stdout.splitlines()]
    assert [c["argv"][:2] for c in first] == [["kubeadm", "init"], ["kubeadm", "init"]]
    assert [c["argv"][:2] for c in second] == [["kubeadm", "join"]]
    assert "InitConfiguration" in first[0]["config"] and "JoinConfiguration" in second[0]["config"]
    # a second join on a joined node is refused (a re-run must skip it)
    again = box.ssh(h2, "kubeadm join --config /etc/kubernetes/smcp/kubeadm-join.yaml", check=False)
    assert again.returncode == 1 and b"kubelet.conf already exists" in again.stderr
