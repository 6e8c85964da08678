"""The Kubernetes API test server (tests/standins/kubeapi.py) against the real clients that use it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from kubernetes import client
from kubernetes.dynamic import DynamicClient

from tests.standins.kubeapi import KubeAPI, cordon_timeline, label_selector_matches, max_cordoned, strategic_merge

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def api(tmp_path: Path):
    with KubeAPI(log=tmp_path / "requests.jsonl") as server:
        yield server


@pytest.fixture
def core(api: KubeAPI) -> client.CoreV1Api:
    cfg = client.Configuration()
    cfg.host = api.url
    return client.CoreV1Api(client.ApiClient(cfg))


def _pod(name: str, node: str, labels: dict[str, str], phase: str = "Running") -> dict:
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "registry.k8s.io/pause:3.10"}]},
        "status": {"phase": phase, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_crud_selectors_and_request_log(api: KubeAPI, core: client.CoreV1Api, tmp_path: Path) -> None:
    assert {n.metadata.name for n in core.list_namespace().items} >= {"default", "kube-system", "kube-public"}
    core.create_node({"metadata": {"name": "cp1", "labels": {"node-role.kubernetes.io/control-plane": ""}}})
    core.create_node({"metadata": {"name": "w1", "labels": {"tier": "workers"}}})
    with pytest.raises(client.ApiException) as exc:
        core.create_node({"metadata": {"name": "w1"}})
    assert exc.value.status == 409
    cps = core.list_node(label_selector="node-role.kubernetes.io/control-plane").items
    assert [n.metadata.name for n in cps] == ["cp1"]
    assert [n.metadata.name for n in core.list_node(label_selector="tier notin (workers)").items] == ["cp1"]

    before = core.read_node("w1").metadata.resource_version
    core.patch_node("w1", {"spec": {"unschedulable": True}})
    node = core.read_node("w1")
    assert node.spec.unschedulable is True
    assert int(node.metadata.resource_version) > int(before)
    core.patch_node_status("w1", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert core.read_node_status("w1").status.conditions[0].status == "True"

    core.create_namespace({"metadata": {"name": "smcp"}})
    core.create_namespaced_secret("smcp", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert core.read_namespaced_secret("s", "smcp").data == {"k": "dg=="}
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_config_map("missing", {"metadata": {"name": "c"}})
    assert exc.value.status == 404
    core.delete_namespace("smcp")
    with pytest.raises(client.ApiException) as exc:
        core.read_namespaced_secret("s", "smcp")
    assert exc.value.status == 404

    patches = [(r["method"], r["path"]) for r in api.requests if r["method"] == "PATCH"]
    assert patches == [("PATCH", "/api/v1/nodes/w1"), ("PATCH", "/api/v1/nodes/w1/status")]
    first = next(r for r in api.requests if r["method"] == "PATCH")
    assert first["body"] == {"spec": {"unschedulable": True}}
    logged = [json.loads(line) for line in (tmp_path / "requests.jsonl").read_text().splitlines()]
    assert [(r["method"], r["path"]) for r in logged] == [(r["method"], r["path"]) for r in api.requests]


def test_eviction_honours_pod_disruption_budgets(api: KubeAPI, core: client.CoreV1Api) -> None:
    for i, node in enumerate(["w1", "w2", "w3"]):
        core.create_namespaced_pod("default", _pod(f"web-{i}", node, {"app": "web"}))
    policy = client.PolicyV1Api(core.api_client)
    policy.create_namespaced_pod_disruption_budget(
        "default",
        {"metadata": {"name": "web"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}},
    )
    assert policy.read_namespaced_pod_disruption_budget("web", "default").status.disruptions_allowed == 1

    def evict(name: str) -> None:
        body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace="default"))
        core.create_namespaced_pod_eviction(name, "default", body)

    evict("web-0")  # 3 expected, 3 healthy: one may go
    # web-0 is gone: 2 pods left, both healthy, maxUnavailable 1 of 2 expected -> one more allowed
    core.patch_namespaced_pod_status("web-1", "default", {"status": {"phase": "Pending"}})
    with pytest.raises(client.ApiException) as exc:  # web-1 unhealthy: evicting healthy web-2 would exceed the budget
        evict("web-2")
    assert exc.value.status == 429
    assert "disruption budget" in json.loads(exc.value.body)["message"]
    evict("web-1")  # an unhealthy pod may always be evicted
    pods = core.list_pod_for_all_namespaces(field_selector="spec.nodeName=w3").items
    assert [p.metadata.name for p in pods] == ["web-2"]


def test_injected_failures_and_readiness_simulation(api: KubeAPI, core: client.CoreV1Api) -> None:
    core.create_node({"metadata": {"name": "w1"}})
    core.create_node({"metadata": {"name": "w2"}})
    core.create_namespaced_pod("default", _pod("a", "w1", {}))
    core.create_namespaced_pod("default", _pod("b", "w2", {}))
    req = urllib.request.Request(
        f"{api.url}/_standin/fail",
        data=json.dumps({"method": "POST", "path": "/eviction$", "node": "w2", "status": 500, "count": 1}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(req, timeout=10).close()
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name="b", namespace="default"))
    with pytest.raises(client.ApiException) as exc:
        core.create_namespaced_pod_eviction("b", "default", body)
    assert exc.value.status == 500
    core.create_namespaced_pod_eviction("b", "default", body)  # count 1: the second attempt passes
    assert [p.metadata.name for p in core.list_namespaced_pod("default").items] == ["a"]

    apps = client.AppsV1Api(core.api_client)
    template = {"metadata": {"labels": {"k8s-app": "x"}}, "spec": {"containers": [{"name": "x", "image": "x"}]}}
    spec = {"selector": {"matchLabels": {"k8s-app": "x"}}, "template": template}
    apps.create_namespaced_daemon_set("kube-system", {"metadata": {"name": "cni"}, "spec": spec})
    apps.create_namespaced_deployment("kube-system", {"metadata": {"name": "dns"}, "spec": dict(spec, replicas=2)})
    ds = apps.read_namespaced_daemon_set("cni", "kube-system")
    assert (ds.status.desired_number_scheduled, ds.status.number_ready) == (2, 2)
    assert apps.read_namespaced_deployment("dns", "kube-system").status.ready_replicas == 2
    api.set_controllers_ready(False)
    assert apps.read_namespaced_daemon_set("cni", "kube-system").status.number_ready == 0
    assert not apps.read_namespaced_deployment("dns", "kube-system").status.ready_replicas


def test_dynamic_client_crds_apply_and_watch(api: KubeAPI, core: client.CoreV1Api) -> None:
    dyn = DynamicClient(core.api_client)
    crds = dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
    crds.create(
        body={
            "metadata": {"name": "ippools.crd.projectcalico.org"},
            "spec": {
                "group": "crd.projectcalico.org",
                "scope": "Cluster",
                "names": {"plural": "ippools", "singular": "ippool", "kind": "IPPool"},
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        }
    )
    established = crds.get(name="ippools.crd.projectcalico.org").status.conditions
    assert {c.type: c.status for c in established}["Established"] == "True"
    pools = DynamicClient(core.api_client).resources.get(api_version="crd.projectcalico.org/v1", kind="IPPool")
    body = {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "default"}}
    pools.server_side_apply(body=dict(body, spec={"cidr": "10.244.0.0/16"}), name="default", field_manager="t")
    pools.server_side_apply(body=dict(body, spec={"natOutgoing": True}), name="default", field_manager="t")
    assert pools.get(name="default").spec.to_dict() == {"cidr": "10.244.0.0/16", "natOutgoing": True}

    core.create_node({"metadata": {"name": "w1"}})
    events = []
    url = f"{api.url}/api/v1/nodes?watch=true&timeoutSeconds=1"
    t0 = time.monotonic()
    with urllib.request.urlopen(url, timeout=10) as resp:
        events = [json.loads(line) for line in resp.read().splitlines() if line.strip()]
    assert time.monotonic() - t0 < 5
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "w1")]


def test_selector_and_strategic_merge_helpers() -> None:
    labels = {"a": "1", "b": "2"}
    assert label_selector_matches("a=1,b in (2,3),!c", labels)
    assert not label_selector_matches("a!=1", labels)
    merged = strategic_merge(
        {"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "DiskPressure", "status": "False"}]}},
        {"status": {"conditions": [{"type": "Ready", "status": "True"}]}},
    )
    assert merged["status"]["conditions"] == [
        {"type": "Ready", "status": "True"},
        {"type": "DiskPressure", "status": "False"},
    ]


def test_kubernetes_core_modules_drain_against_the_server(api: KubeAPI, core: client.CoreV1Api, tmp_path: Path):
    """kubernetes.core.k8s and k8s_drain (what the upgrade playbook uses) work against the stand-in."""
    core.create_node({"metadata": {"name": "w1"}})
    core.create_namespaced_pod("default", _pod("app", "w1", {"app": "x"}))
    kubeconfig = api.kubeconfig(tmp_path / "kubeconfig")
    playbook = tmp_path / "drain.yml"
    tasks = [
        {
            "name": "Namespace",
            "kubernetes.core.k8s": {
                "kubeconfig": str(kubeconfig),
                "definition": {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "smcp-test"}},
            },
        },
        {
            "name": "Drain",
            "kubernetes.core.k8s_drain": {
                "kubeconfig": str(kubeconfig),
                "name": "w1",
                "delete_options": {"ignore_daemonsets": True, "delete_emptydir_data": True, "force": True},
            },
        },
        {
            "name": "Uncordon",
            "kubernetes.core.k8s_drain": {"kubeconfig": str(kubeconfig), "name": "w1", "state": "uncordon"},
        },
    ]
    playbook.write_text(yaml.safe_dump([{"hosts": "localhost", "gather_facts": False, "tasks": tasks}]))
    env = dict(os.environ, ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"), ANSIBLE_HOME=str(tmp_path / "ah"))
    env["KUBE_CACHE_DIR"] = str(tmp_path / "kcache")
    run = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            "localhost,",
            "-c",
            "local",
            "-e",
            f"ansible_python_interpreter={sys.executable}",
            str(playbook),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    calls = [(r["method"], r["path"]) for r in api.requests if r["method"] != "GET"]
    assert ("POST", "/api/v1/namespaces") in calls
    cordon = calls.index(("PATCH", "/api/v1/nodes/w1"))
    evict = calls.index(("POST", "/api/v1/namespaces/default/pods/app/eviction"))
    uncordon = len(calls) - 1 - calls[::-1].index(("PATCH", "/api/v1/nodes/w1"))
    assert cordon < evict < uncordon
    assert core.read_node("w1").spec.unschedulable in (None, False)
    assert core.list_namespaced_pod("default").items == []


def test_node_ipam_allocates_pod_cidrs_from_kubeadm_config(api: KubeAPI, core: client.CoreV1Api) -> None:
    core.create_node({"metadata": {"name": "early"}})  # before kubeadm init: no podSubnet known yet
    cluster = yaml.safe_dump({"networking": {"podSubnet": "10.244.0.0/16"}})
    core.create_namespaced_config_map(
        "kube-system", {"metadata": {"name": "kubeadm-config"}, "data": {"ClusterConfiguration": cluster}}
    )
    core.create_node({"metadata": {"name": "a"}})
    core.create_node({"metadata": {"name": "b"}})
    assert core.read_node("early").spec.pod_cidr is None
    assert [core.read_node(n).spec.pod_cidr for n in ("a", "b")] == ["10.244.0.0/24", "10.244.1.0/24"]
    core.patch_node_status("early", {"status": {"conditions": [{"type": "Ready", "status": "True"}]}})
    assert core.read_node("early").spec.pod_cidr == "10.244.2.0/24"  # allocated at its next write


def test_cli_start_serve_stop(tmp_path: Path) -> None:
    script = ROOT / "tests" / "standins" / "kubeapi.py"
    pidfile, log = tmp_path / "k.pid", tmp_path / "k.jsonl"
    started = subprocess.run(
        [
            sys.executable,
            str(script),
            "start",
            "--listen",
            "127.0.0.1:0",
            "--pidfile",
            str(pidfile),
            "--log",
            str(log),
            "--version",
            "1.34.4",
            "--fail-eviction-for",
            "w9",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    url = json.loads(started.stdout)["url"]
    try:
        with urllib.request.urlopen(f"{url}/version", timeout=5) as resp:
            assert json.loads(resp.read())["gitVersion"] == "v1.34.4"
        with urllib.request.urlopen(f"{url}/_standin/fail", timeout=5) as resp:
            assert json.loads(resp.read())[0]["node"] == "w9"
        logged = [json.loads(line)["path"] for line in log.read_text().splitlines()]
        assert logged and set(logged) == {"/version"}  # the admin endpoint is not logged
    finally:
        stopped = subprocess.run(
            [sys.executable, str(script), "stop", "--pidfile", str(pidfile)],
            capture_output=True,
            timeout=60,
            check=False,
        )
    assert stopped.returncode == 0 and not pidfile.exists()


def test_cordon_timeline_from_the_request_log(api: KubeAPI, core: client.CoreV1Api) -> None:
    for name in ("w1", "w2"):
        core.create_node({"metadata": {"name": name}})
    core.create_namespaced_pod("default", _pod("p", "w2", {}))
    core.patch_node("w1", {"spec": {"unschedulable": True}})
    core.patch_node("w1", [{"op": "replace", "path": "/spec/unschedulable", "value": False}])
    core.patch_node("w2", {"spec": {"unschedulable": True}})
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name="p", namespace="default"))
    core.create_namespaced_pod_eviction("p", "default", body)
    core.patch_node("w2", {"spec": {"unschedulable": None}})
    assert [(node, flag) for _, node, flag in cordon_timeline(api.requests)] == [
        ("w1", True),
        ("w1", False),
        ("w2", True),
        ("w2", False),
    ]
    assert max_cordoned(api.requests) == 1
    eviction = next(r for r in api.requests if r["path"].endswith("/eviction"))
    assert eviction["node"] == "w2"
    core.patch_node("w1", {"spec": {"unschedulable": True}})
    core.patch_node("w2", {"spec": {"unschedulable": True}})
    assert max_cordoned(api.requests) == 2
