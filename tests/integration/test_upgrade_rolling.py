"""Playbook smcp.platform.upgrade against the Kubernetes API test server: rolling order, batch sizes, stop
after the first failed batch, resume, the cluster lock and a drain that times out.

The hosts are local-connection inventory entries; the host step (binaries, kubeadm, kubelet restart) is
replaced through upgrade_host_tasks by tests/integration/files/upgrade_host_standin.yml, which reports the
new kubelet version on the Node as a restarted kubelet would. Everything done through the Kubernetes API
(plan from live versions, lock, cordon, drain, Ready wait, uncordon) is the product's own code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils import kube_node as kn
from ansible_collections.smcp.platform.plugins.module_utils import versions
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient

from tests.standins.kubeapi import KubeAPI

REPO = Path(__file__).resolve().parents[2]
HOST_TASKS = REPO / "tests" / "integration" / "files" / "upgrade_host_standin.yml"
WORKERS = ["w1", "w2", "w3", "w4", "w5"]
TARGET = versions.supported_versions()[-1]


def previous_minor(version: str) -> str:
    major, minor, _ = version.split(".")
    return versions.newest_patch(f"{major}.{int(minor) - 1}")


OLD = previous_minor(TARGET)


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[dict[str, Any]]:
    with KubeAPI() as api:
        kubeconfig = api.kubeconfig(tmp_path / "admin.conf")
        client = KubeClient(str(kubeconfig))
        for name in ["cp1", *WORKERS]:
            client.request(
                "POST",
                "/api/v1/nodes",
                {
                    "metadata": {"name": name},
                    "spec": {},
                    "status": {
                        "conditions": [{"type": "Ready", "status": "True"}],
                        "nodeInfo": {"kubeletVersion": f"v{OLD}"},
                    },
                },
            )
        client.request("POST", "/api/v1/namespaces", {"metadata": {"name": "apps"}})
        for name in WORKERS:
            client.request(
                "POST",
                "/api/v1/namespaces/apps/pods",
                {
                    "metadata": {"name": f"web-{name}", "namespace": "apps", "labels": {"app": "web"}},
                    "spec": {"nodeName": name, "containers": [{"name": "c", "image": "nginx"}]},
                    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]},
                },
            )
        hosts = {
            name: {"ansible_connection": "local", "ansible_python_interpreter": sys.executable, "ansible_become": False}
            for name in ["cp1", *WORKERS]
        }
        inventory = {
            "all": {
                "hosts": hosts,
                "children": {"control_plane": {"hosts": {"cp1": {}}}, "workers": {"hosts": {w: {} for w in WORKERS}}},
            }
        }
        inv = tmp_path / "inventory.json"
        inv.write_text(json.dumps(inventory))
        yield {"api": api, "client": client, "kubeconfig": kubeconfig, "inventory": inv, "tmp": tmp_path}


def run(cluster: dict[str, Any], **extra: Any) -> subprocess.CompletedProcess[str]:
    extra_vars = {
        "smcp_kubernetes_version": TARGET,
        "smcp_kubeconfig": str(cluster["kubeconfig"]),
        "smcp_cluster_name": "t",
        "upgrade_host_tasks": str(HOST_TASKS),
        "upgrade_test_api": cluster["api"].url,
        "upgrade_component_steps": "warn",
        "upgrade_etcd_backup": False,
        "upgrade_drain_timeout": 4,
        "upgrade_node_ready_timeout": 10,
        "upgrade_drain_control_planes": False,
        **extra,
    }
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCAL_TEMP": str(cluster["tmp"] / "ansible-tmp"),
    }
    return subprocess.run(
        [
            str(REPO / ".venv" / "bin" / "ansible-playbook"),
            "-i",
            str(cluster["inventory"]),
            "smcp.platform.upgrade",
            "-e",
            json.dumps(extra_vars),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def node_calls(cluster: dict[str, Any]) -> list[tuple[str, str]]:
    """(action, node) in request order: cordon, uncordon, evict, version (the host step)."""
    out = []
    for r in cluster["api"].requests:
        path, body = r["path"], r.get("body") or {}
        if r["method"] == "PATCH" and path.startswith("/api/v1/nodes/"):
            name = path.split("/")[4]
            if path.endswith("/status"):
                out.append(("version", name))
            elif "unschedulable" in (body.get("spec") or {}):
                out.append(("cordon" if body["spec"]["unschedulable"] else "uncordon", name))
        elif r["method"] == "POST" and path.endswith("/eviction"):
            out.append(("evict", path.split("/")[6].removeprefix("web-")))
    return out


def max_unavailable(calls: list[tuple[str, str]]) -> int:
    cordoned: set[str] = set()
    peak = 0
    for action, name in calls:
        if action == "cordon":
            cordoned.add(name)
        elif action == "uncordon":
            cordoned.discard(name)
        peak = max(peak, len(cordoned))
    return peak


def kubelets(cluster: dict[str, Any]) -> dict[str, str]:
    return {n: kn.kubelet_version(kn.get_node(cluster["client"], n)) for n in ["cp1", *WORKERS]}


def test_rolling_order_and_batches(cluster) -> None:
    result = run(cluster, upgrade_batch_size=2)
    assert result.returncode == 0, result.stdout[-4000:]
    calls = node_calls(cluster)
    assert calls[0] == ("version", "cp1")  # the control plane first (not drained: upgrade_drain_control_planes off)
    for w in WORKERS:  # per worker: cordon, evict, host step, uncordon
        mine = [a for a, n in calls if n == w]
        assert mine == ["cordon", "evict", "version", "uncordon"], (w, mine)
    assert max_unavailable(calls) == 2  # batches of 2: never more than one batch out of service
    firsts = [next(i for i, c in enumerate(calls) if c == ("cordon", w)) for w in WORKERS]
    lasts = [next(i for i, c in enumerate(calls) if c == ("uncordon", w)) for w in WORKERS]
    assert max(lasts[0:2]) < min(firsts[2:4]) and max(lasts[2:4]) < firsts[4]  # batches [w1,w2] [w3,w4] [w5]
    assert set(kubelets(cluster).values()) == {TARGET}
    assert kn.read_lock(cluster["client"])[0] is None  # lock released
    again = run(cluster)  # at target: nothing to do, no lock taken, no node touched
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert node_calls(cluster) == calls


def test_failed_batch_stops_releases_the_lock_and_a_rerun_resumes(cluster) -> None:
    failed = run(cluster, upgrade_batch_size=2, upgrade_test_fail_hosts=["w2"])
    assert failed.returncode != 0
    assert "Upgrade stopped at w2" in failed.stdout and "The cluster lock is released" in failed.stdout
    calls = node_calls(cluster)
    touched = {n for _, n in calls}
    assert touched == {"cp1", "w1", "w2"}  # the second batch never started
    versions_now = kubelets(cluster)
    assert versions_now["cp1"] == versions_now["w1"] == TARGET and versions_now["w2"] == OLD
    assert not (kn.get_node(cluster["client"], "w2")["spec"].get("unschedulable"))  # Ready: back in service
    assert kn.read_lock(cluster["client"])[0] is None
    before = len(calls)
    resumed = run(cluster, upgrade_batch_size=2)
    assert resumed.returncode == 0, resumed.stdout[-4000:]
    later = node_calls(cluster)[before:]
    assert {n for _, n in later} == {"w2", "w3", "w4", "w5"}  # upgraded nodes left alone
    assert set(kubelets(cluster).values()) == {TARGET}


def test_a_locked_cluster_refuses_a_second_upgrade(cluster) -> None:
    kn.acquire(cluster["client"], "upgrade/t/other-run", "upgrade", "to something")
    result = run(cluster)
    assert result.returncode != 0
    assert "the cluster is locked by upgrade (upgrade/t/other-run)" in result.stdout
    assert node_calls(cluster) == []  # nothing cordoned, nothing upgraded
    assert kn.read_lock(cluster["client"])[0]["holder"] == "upgrade/t/other-run"  # the other run's lock is kept


def test_a_node_that_will_not_drain_stops_the_upgrade_with_the_cluster_serving(cluster) -> None:
    client = cluster["client"]
    pdb = {
        "metadata": {"name": "web-pdb", "namespace": "apps"},
        "spec": {"minAvailable": len(WORKERS), "selector": {"matchLabels": {"app": "web"}}},
    }
    client.request("POST", "/apis/policy/v1/namespaces/apps/poddisruptionbudgets", pdb)
    result = run(cluster, upgrade_batch_size=1)
    assert result.returncode != 0
    assert "node w1 did not drain within 4 s (apps/web-w1: blocked by PodDisruptionBudget web-pdb)" in result.stdout
    assert "The cluster lock is released" in result.stdout
    assert not any(kn.get_node(client, n)["spec"].get("unschedulable") for n in WORKERS)  # all schedulable
    assert len(client.request("GET", "/api/v1/namespaces/apps/pods")["items"]) == len(WORKERS)  # nothing evicted
    assert kn.read_lock(client)[0] is None
    assert kubelets(cluster)["w1"] == OLD and {n for _, n in node_calls(cluster)} == {"cp1", "w1"}


def test_a_skipped_minor_is_refused_before_any_change(cluster) -> None:
    client = cluster["client"]
    older = previous_minor(OLD)
    for name in ["cp1", *WORKERS]:
        client.request(
            "PATCH",
            f"/api/v1/nodes/{name}/status",
            {"status": {"nodeInfo": {"kubeletVersion": f"v{older}"}}},
            content_type="application/merge-patch+json",
        )
    cluster["api"].handler.log.clear()
    result = run(cluster)
    assert result.returncode != 0
    assert "upgrade refused (skipped_minor)" in result.stdout and "upgrade_allow_multi_hop" in result.stdout
    assert node_calls(cluster) == [] and kn.read_lock(client)[0] is None
