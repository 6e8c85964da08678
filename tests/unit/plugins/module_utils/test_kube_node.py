"""kube_node: cordon/drain/uncordon order, PodDisruptionBudgets, Ready waits and the cluster lock, on the test API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.smcp.platform.plugins.module_utils import kube_node as kn
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient, KubeError

from tests.standins.kubeapi import KubeAPI


class Clock:
    """A fake clock: each sleep advances it, so timeouts are reached without waiting."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[tuple[KubeAPI, KubeClient]]:
    with KubeAPI() as api:
        client = KubeClient(str(api.kubeconfig(tmp_path / "kubeconfig")))
        client.request("POST", "/api/v1/namespaces", {"metadata": {"name": "apps"}})
        for name in ("w1", "w2"):
            client.request("POST", "/api/v1/nodes", node(name))
        yield api, client


def node(name: str, version: str = "v1.35.0", ready: bool = True) -> dict:
    return {
        "metadata": {"name": name},
        "spec": {},
        "status": {
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "nodeInfo": {"kubeletVersion": version},
        },
    }


def pod(client: KubeClient, name: str, node_name: str, app: str = "web", daemonset: bool = False) -> None:
    meta: dict = {"name": name, "namespace": "apps", "labels": {"app": app}}
    if daemonset:
        meta["ownerReferences"] = [{"apiVersion": "apps/v1", "kind": "DaemonSet", "name": "ds", "uid": "u"}]
    body = {
        "metadata": meta,
        "spec": {"nodeName": node_name, "containers": [{"name": "c", "image": "x"}]},
        "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
    }
    client.request("POST", "/api/v1/namespaces/apps/pods", body)


def names_on(client: KubeClient, node_name: str) -> list[str]:
    items = client.request("GET", "/api/v1/pods", query={"fieldSelector": f"spec.nodeName={node_name}"})["items"]
    return sorted(p["metadata"]["name"] for p in items)


def test_drain_cordons_then_evicts_and_leaves_daemonset_pods(kube) -> None:
    api, client = kube
    pod(client, "a", "w1")
    pod(client, "b", "w1")
    pod(client, "ds-1", "w1", daemonset=True)
    pod(client, "other", "w2")
    clock = Clock()
    result = kn.drain(client, "w1", timeout=30, clock=clock, sleep=clock.sleep)
    assert result == {"cordoned": True, "evicted": ["apps/a", "apps/b"]}
    assert names_on(client, "w1") == ["ds-1"] and names_on(client, "w2") == ["other"]
    assert client.request("GET", "/api/v1/nodes/w1")["spec"]["unschedulable"] is True
    calls = [(r["method"], r["path"]) for r in api.requests if r["method"] in ("PATCH", "POST")]
    patch = calls.index(("PATCH", "/api/v1/nodes/w1"))
    evictions = [i for i, c in enumerate(calls) if c[1].endswith("/eviction")]
    assert evictions and patch < min(evictions)  # cordoned before the first eviction
    assert kn.set_unschedulable(client, "w1", False) is True
    assert kn.set_unschedulable(client, "w1", False) is False
    assert not client.request("GET", "/api/v1/nodes/w1")["spec"].get("unschedulable")


def test_drain_blocked_by_a_budget_stops_after_the_timeout(kube) -> None:
    _, client = kube
    pod(client, "db-0", "w1", app="db")
    pod(client, "db-1", "w2", app="db")
    pdb = {
        "metadata": {"name": "db-pdb", "namespace": "apps"},
        "spec": {"minAvailable": 2, "selector": {"matchLabels": {"app": "db"}}},
    }
    client.request("POST", "/apis/policy/v1/namespaces/apps/poddisruptionbudgets", pdb)
    clock = Clock()
    with pytest.raises(kn.DrainError) as info:
        kn.drain(client, "w1", timeout=10, interval=2, clock=clock, sleep=clock.sleep)
    assert info.value.blocked == {"apps/db-0": "blocked by PodDisruptionBudget db-pdb"}
    assert "did not drain within 10 s" in str(info.value) and clock.now >= 10
    assert names_on(client, "w1") == ["db-0"]  # the budget held: the pod is still there


def test_drain_succeeds_once_the_budget_allows(kube) -> None:
    _, client = kube
    pod(client, "db-0", "w1", app="db")
    pod(client, "db-1", "w2", app="db")
    pdb = {
        "metadata": {"name": "db-pdb", "namespace": "apps"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "db"}}},
    }
    client.request("POST", "/apis/policy/v1/namespaces/apps/poddisruptionbudgets", pdb)
    clock = Clock()
    assert kn.drain(client, "w1", timeout=10, clock=clock, sleep=clock.sleep)["evicted"] == ["apps/db-0"]


def test_eviction_errors_are_reported(kube) -> None:
    api, client = kube
    pod(client, "a", "w2")
    api.fail(method="POST", path=r"/eviction$", node="w2", status=500)
    clock = Clock()
    with pytest.raises(kn.DrainError) as info:
        kn.drain(client, "w2", timeout=4, clock=clock, sleep=clock.sleep)
    assert info.value.blocked["apps/a"].startswith("eviction failed")


def test_wait_ready_checks_the_kubelet_version(kube) -> None:
    _, client = kube
    clock = Clock()
    assert (
        kn.kubelet_version(kn.wait_ready(client, "w1", 5, version="1.35.0", clock=clock, sleep=clock.sleep)) == "1.35.0"
    )
    with pytest.raises(KubeError, match=r"node w1 is Ready, kubelet 1.35.0 \(want 1.35.1\) after 5 s"):
        kn.wait_ready(client, "w1", 5, version="1.35.1", clock=clock, sleep=clock.sleep)
    with pytest.raises(KubeError, match="node nope is not registered"):
        kn.wait_ready(client, "nope", 1, clock=clock, sleep=clock.sleep)


def test_delete_node_is_idempotent(kube) -> None:
    _, client = kube
    assert kn.delete_node(client, "w2") is True
    assert kn.delete_node(client, "w2") is False
    assert kn.get_node(client, "w2") is None


def test_lock_refuses_a_second_holder_and_is_released(kube) -> None:
    _, client = kube
    changed, lock = kn.acquire(client, "upgrade@a", "upgrade", "to 1.35.1", now=0)
    assert changed and lock["since"] == "1970-01-01T00:00:00Z"
    assert kn.acquire(client, "upgrade@a", "upgrade")[0] is False  # resumed run: same holder
    with pytest.raises(kn.LockHeld, match=r"locked by upgrade \(upgrade@a\) since 1970-01-01T00:00:00Z: to 1.35.1"):
        kn.acquire(client, "upgrade@b", "upgrade")
    with pytest.raises(kn.LockHeld):
        kn.release(client, "upgrade@b")
    assert kn.release(client, "upgrade@a") == (True, lock)
    assert kn.read_lock(client)[0] is None and kn.release(client, "upgrade@a") == (False, None)
    kn.acquire(client, "upgrade@a", "upgrade")
    assert kn.acquire(client, "upgrade@b", "upgrade", force=True)[1]["holder"] == "upgrade@b"


def test_lock_race_has_one_winner(kube) -> None:
    _, client = kube
    current, ns = kn.read_lock(client)
    assert current is None
    kn.acquire(client, "first", "upgrade")
    with pytest.raises(KubeError) as info:  # a writer holding the old resourceVersion loses
        kn._write(client, ns, '{"holder": "second"}')
    assert info.value.status == 409
    assert kn.read_lock(client)[0]["holder"] == "first"
