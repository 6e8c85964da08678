"""smcp.platform.upgrade_plan: the module's result, refusals (fail or report) and the real versions table."""

from __future__ import annotations

import json

import pytest
from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils import upgrade_plan as up
from ansible_collections.smcp.platform.plugins.module_utils import versions
from ansible_collections.smcp.platform.plugins.modules import upgrade_plan

TABLE = up.Table(["1.34.4", "1.35.0", "1.35.1"])


def run(capsys, table: up.Table | None = TABLE, client=None, **args) -> dict:
    with patch_module_args(args):
        module = AnsibleModule(argument_spec=upgrade_plan.ARGUMENT_SPEC, supports_check_mode=True)
        with pytest.raises(SystemExit):
            upgrade_plan.execute_module(module, table=table, client=client)
    return json.loads(capsys.readouterr().out)


def test_plan_is_returned_unchanged(capsys) -> None:
    out = run(capsys, target="1.35.1", control_planes={"cp1": "1.34.4"}, kubelets={"cp1": "1.34.4", "w1": "1.34.4"})
    assert out["changed"] is False and out["plan"]["status"] == "ready"
    assert [s["host"] for s in out["plan"]["steps"]] == ["cp1", "w1"]


def test_refusal_fails_naming_the_rule(capsys) -> None:
    out = run(capsys, target="1.34.4", control_planes={"cp1": "1.35.0"})
    assert out["failed"] is True and out["refused"]["rule"] == "downgrade"
    assert out["msg"].startswith("upgrade refused (downgrade): target 1.34.4 is older than control plane cp1")


def test_refusal_can_be_reported_only(capsys) -> None:
    out = run(capsys, target="1.34.4", control_planes={"cp1": "1.35.0"}, fail_on_refusal=False)
    assert "failed" not in out and out["refused"]["rule"] == "downgrade" and "plan" not in out


def test_default_table_is_the_collections_versions_table(capsys) -> None:
    newest = versions.supported_versions()[-1]
    minor = tuple(int(x) for x in newest.split(".")[:2])
    previous = versions.newest_patch(f"{minor[0]}.{minor[1] - 1}")
    out = run(capsys, table=None, target=newest, control_planes={"cp1": previous}, kubelets={"cp1": previous})
    assert out["plan"]["hops"] == [newest]
    table = up.default_table()
    assert table.listing() == ", ".join(versions.supported_versions())
    needs = table.requirements(up.parse(newest))
    assert needs["etcd"] == versions.release(newest)["files"]["etcd"]["version"]
    assert needs["containerd"] == versions.release(newest)["files"]["containerd"]["version"]


def test_versions_read_from_the_cluster(capsys, tmp_path) -> None:
    from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient

    from tests.standins.kubeapi import KubeAPI

    with KubeAPI() as api:
        client = KubeClient(str(api.kubeconfig(tmp_path / "kubeconfig")))
        for name, version in (("cp1", "v1.35.0"), ("w1", "v1.34.4"), ("w2", "v1.35.1")):
            status = {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": version}}
            client.request("POST", "/api/v1/nodes", {"metadata": {"name": name}, "status": status})
        static = {
            "metadata": {
                "name": "kube-apiserver-cp1",
                "namespace": "kube-system",
                "labels": {"component": "kube-apiserver"},
            },
            "spec": {
                "nodeName": "cp1",
                "containers": [{"name": "a", "image": "registry.k8s.io/kube-apiserver:v1.35.1"}],
            },
        }
        client.request("POST", "/api/v1/namespaces/kube-system/pods", static)
        out = run(
            capsys,
            target="1.35.1",
            control_planes=["cp1"],
            kubelets=["cp1", "w1", "w2", "w9"],
            kubeconfig=str(tmp_path / "kubeconfig"),
            client=client,
        )
    plan = out["plan"]
    assert plan["current"]["control_planes"] == {"cp1": "1.35.1"}  # the static pod's image tag
    assert plan["current"]["kubelets"] == {"cp1": "1.35.0", "w1": "1.34.4", "w2": "1.35.1"}
    assert out["missing"] == ["w9"]
    assert plan["by_hop"] == [
        {
            "version": "1.35.1",
            "components": [],
            "control_planes": ["cp1"],
            "nodes": ["w1"],
            "steps": {
                "cp1": {
                    "hop": "1.35.1",
                    "kind": "control_plane",
                    "host": "cp1",
                    "kubeadm": None,
                    "kubelet": True,
                    "from": "1.35.0",
                    "to": "1.35.1",
                },
                "w1": {"hop": "1.35.1", "kind": "node", "host": "w1", "from": "1.34.4", "to": "1.35.1"},
            },
        }
    ]


def test_a_missing_control_plane_fails(capsys, tmp_path) -> None:
    from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient

    from tests.standins.kubeapi import KubeAPI

    with KubeAPI() as api:
        client = KubeClient(str(api.kubeconfig(tmp_path / "kubeconfig")))
        out = run(capsys, target="1.35.1", control_planes=["cp1"], kubelets=["cp1"], kubeconfig="x", client=client)
    assert out["failed"] and "control plane(s) cp1 not registered as nodes" in out["msg"]


def test_cni_version_read_from_its_daemonset(capsys, tmp_path) -> None:
    from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient

    from tests.standins.kubeapi import KubeAPI

    table = up.Table(["1.34.4", "1.35.1"], lambda v: {"cni": {"calico": "v3.31.3"}})
    with KubeAPI() as api:
        client = KubeClient(str(api.kubeconfig(tmp_path / "kubeconfig")))
        status = {"conditions": [{"type": "Ready", "status": "True"}], "nodeInfo": {"kubeletVersion": "v1.34.4"}}
        client.request("POST", "/api/v1/nodes", {"metadata": {"name": "cp1"}, "status": status})
        containers = [{"name": "calico-node", "image": "docker.io/calico/node:v3.30.2"}]
        ds = {
            "metadata": {"name": "calico-node", "namespace": "kube-system"},
            "spec": {
                "selector": {"matchLabels": {"k": "calico-node"}},
                "template": {"spec": {"containers": containers}},
            },
        }
        client.request("POST", "/apis/apps/v1/namespaces/kube-system/daemonsets", ds)
        out = run(
            capsys,
            table=table,
            client=client,
            target="1.35.1",
            control_planes=["cp1"],
            kubelets=["cp1"],
            kubeconfig="x",
            cni={"name": "calico"},
        )
    cni = [s for s in out["plan"]["steps"] if s["kind"] == "cni"]
    assert cni == [{"hop": "1.35.1", "kind": "cni", "from": "3.30.2", "to": "3.31.3", "cni": "calico"}]
