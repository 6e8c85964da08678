"""Server-side apply and wait of the pod network against the Kubernetes API test server (tests/standins/kubeapi.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / ".venv" / "collections"))
sys.path.insert(0, str(ROOT))

from ansible_collections.smcp.platform.plugins.module_utils import cni_kube, cni_versions  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.cni_render import manifests as cni_render  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient, KubeError  # noqa: E402

from tests.standins.kubeapi import KubeAPI  # noqa: E402

PINS = cni_versions.CNI_BY_MINOR["1.35"]
KUBEADM = (
    "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\n"
    "networking:\n  podSubnet: {}\n  serviceSubnet: 10.96.0.0/12\n"
)


def render(cni="calico", **extra):
    cfg = {"cni": cni, "pod_cidr": "10.244.0.0/16", "encapsulation": "vxlan", "mtu": 1450, **extra}
    return cni_render.render_all(cfg, PINS)[0]


class Clock:
    """Fake time: sleeping advances it, so waits end without real delays."""

    def __init__(self):
        self.now = 0.0
        self.sleeps = 0

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps += 1
        self.now += max(seconds, 0.01)


@pytest.fixture
def api(tmp_path):
    with KubeAPI() as server:
        server.kc = str(server.kubeconfig(tmp_path / "admin.conf"))
        yield server


def applier(api, clock=None):
    clock = clock or Clock()
    return cni_kube.CniApplier(KubeClient(api.kc), "smcp", clock=clock, sleep=clock.sleep)


def add_node(a, name, ready=True, pod_cidr="10.244.1.0/24"):
    node = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux", "kubernetes.io/hostname": name}},
        "spec": {"podCIDR": pod_cidr, "podCIDRs": [pod_cidr]},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "KubeletNotReady"}]
        },
    }
    status, data = a.client.call("POST", "/api/v1/nodes", node)
    assert status == 201, data


def add_kubeadm_config(a, pod_subnet):
    cm = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
        "data": {"ClusterConfiguration": KUBEADM.format(pod_subnet)},
    }
    assert a.client.call("POST", "/api/v1/namespaces/kube-system/configmaps", cm)[0] == 201


def test_apply_uses_server_side_apply_and_is_idempotent(api):
    a = applier(api)
    objs = render(multus=True)
    results = a.apply_all(objs)
    assert [state for _, state in results] == ["created"] * len(objs)
    patches = [r for r in api.requests if r["method"] == "PATCH"]
    assert len(patches) == len(objs)
    assert all(r["query"].get("fieldManager") == "smcp" and r["query"].get("force") == "true" for r in patches)
    pool = api.store[("crd.projectcalico.org", "ippools", "", "default-ipv4-ippool")]
    assert pool["spec"]["cidr"] == "10.244.0.0/16"
    ds = api.store[("apps", "daemonsets", "kube-system", "calico-node")]
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/calico/node:v3.31.3"
    again = a.apply_all(objs)
    assert {state for _, state in again} == {"unchanged"}


def test_a_changed_manifest_is_reported_changed(api):
    a = applier(api)
    a.apply_all(render())
    changed = [r for r in a.apply_all(render(mtu=1400)) if r[1] != "unchanged"]
    assert changed == [("ConfigMap kube-system/calico-config", "changed")]


def test_dry_run_changes_nothing(api):
    a = applier(api)
    objs = render("flannel")
    results = a.apply_all(objs, dry_run=True)
    assert {state for _, state in results} == {"created"}
    assert not [k for k in api.store if k[1] in ("daemonsets", "configmaps") and k[2] == "kube-flannel"]
    assert all(r["query"].get("dryRun") == "All" for r in api.requests if r["method"] == "PATCH")


def test_wait_passes_when_daemonsets_and_nodes_are_ready(api):
    a = applier(api)
    add_node(a, "n1")
    add_node(a, "n2")
    objs = render()
    a.apply_all(objs)
    assert a.wait(cni_render.workloads(objs), timeout=30) == []


def test_wait_times_out_naming_what_is_not_ready(api):
    clock = Clock()
    a = applier(api, clock)
    add_node(a, "n1")
    add_node(a, "n2", ready=False)
    objs = render()
    a.apply_all(objs)
    api.set_controllers_ready(False)
    waiting = a.wait(cni_render.workloads(objs), timeout=20, interval=5)
    assert waiting == [
        "DaemonSet kube-system/calico-node: 0/2 pods ready, 2/2 updated",
        "Deployment kube-system/calico-kube-controllers: 0/1 replicas available",
        "Node n2 is not Ready (KubeletNotReady)",
    ]
    assert clock.now >= 20 and clock.sleeps >= 4


def test_wait_reports_missing_workloads_and_no_nodes(api):
    a = applier(api)
    waiting = a.wait([("DaemonSet", "kube-system", "calico-node")], timeout=0)
    assert waiting == ["DaemonSet kube-system/calico-node does not exist", "no Node registered yet"]


def test_pod_cidr_consistency_with_kubeadm_and_nodes(api):
    a = applier(api)
    add_kubeadm_config(a, "10.244.0.0/16")
    add_node(a, "n1", pod_cidr="10.244.7.0/24")
    assert a.check_consistency("10.244.0.0/16", "10.244.0.0/16") == []
    add_node(a, "n2", pod_cidr="10.99.1.0/24")
    problems = a.check_consistency("10.244.0.0/16", "10.244.0.0/16")
    assert problems == ["Node n2 spec.podCIDR 10.99.1.0/24 is outside smcp_pod_cidr 10.244.0.0/16"]


def test_kubeadm_pod_subnet_mismatch_is_reported(api):
    a = applier(api)
    add_kubeadm_config(a, "192.168.0.0/16")
    problems = a.check_consistency("10.244.0.0/16", "10.244.0.0/16")
    assert len(problems) == 1 and "podSubnet '192.168.0.0/16'" in problems[0]


def test_api_errors_name_the_object(api):
    a = applier(api)
    api.fail(method="PATCH", path=r"/daemonsets/calico-node$", status=500, message="etcd unavailable")
    with pytest.raises(KubeError) as err:
        a.apply_all(render())
    assert "apply DaemonSet kube-system/calico-node failed: HTTP 500" in str(err.value)


def test_unreachable_api_is_a_clear_error(tmp_path):
    kc = tmp_path / "admin.conf"
    with KubeAPI() as server:
        server.kubeconfig(kc)
    a = cni_kube.CniApplier(KubeClient(str(kc)))
    with pytest.raises(KubeError, match="GET /api/v1/namespaces/kube-system/configmaps/kubeadm-config failed"):
        a.check_consistency("10.244.0.0/16", "10.244.0.0/16")
