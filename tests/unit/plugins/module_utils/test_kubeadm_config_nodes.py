"""Node labels/taints (smcp.platform.node_config) against the API test server, and the operator kubeconfig filter."""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / ".venv" / "collections"))

from ansible.errors import AnsibleFilterError
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.filter.kubeadm import FilterModule
from ansible_collections.smcp.platform.plugins.module_utils import kube_nodes as kn
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient, KubeError
from ansible_collections.smcp.platform.plugins.modules import node_config as module

from tests.standins.kubeapi import KubeAPI

CP_TAINT = {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}


@pytest.fixture
def api(tmp_path: Path):
    with KubeAPI(log=tmp_path / "requests.jsonl") as server:
        yield server


@pytest.fixture
def kubeconfig(api: KubeAPI, tmp_path: Path) -> Path:
    return api.kubeconfig(tmp_path / "admin.conf")


@pytest.fixture
def client(kubeconfig: Path, api: KubeAPI) -> KubeClient:
    c = KubeClient(str(kubeconfig))
    for name, labels, taints in (
        ("cp1", {"kubernetes.io/hostname": "cp1", "node-role.kubernetes.io/control-plane": ""}, [CP_TAINT]),
        ("w1", {"kubernetes.io/hostname": "w1"}, []),
    ):
        c.request(
            "POST", "/api/v1/nodes", body={"metadata": {"name": name, "labels": labels}, "spec": {"taints": taints}}
        )
    return c


def node(client: KubeClient, name: str) -> dict:
    return client.request("GET", f"/api/v1/nodes/{name}")


def patches(api: KubeAPI) -> list[dict]:
    return [r for r in api.requests if r["method"] == "PATCH"]


def test_sets_then_removes_only_what_it_set(api: KubeAPI, client: KubeClient) -> None:
    want = [
        {"name": "cp1", "labels": {"zone": "a"}, "taints": []},
        {"name": "w1", "labels": {"zone": "b", "node-role.kubernetes.io/worker": ""}, "taints": [{"key": "gpu"}]},
    ]
    out = kn.apply(client, want, check_mode=False, wait_timeout=0)
    assert out["changed"]
    cp1, w1 = node(client, "cp1"), node(client, "w1")
    assert cp1["metadata"]["labels"]["zone"] == "a"
    assert cp1["spec"]["taints"] == [CP_TAINT]  # kubeadm's taint is not ours: kept
    assert w1["metadata"]["labels"]["node-role.kubernetes.io/worker"] == ""
    assert w1["spec"]["taints"] == [{"key": "gpu", "effect": "NoSchedule"}]

    count = len(patches(api))
    assert kn.apply(client, want, check_mode=False, wait_timeout=0)["changed"] is False
    assert len(patches(api)) == count  # a re-run patches nothing

    # an operator adds a label by hand; the inventory drops zone and the gpu taint
    client.request(
        "PATCH",
        "/api/v1/nodes/w1",
        body={"metadata": {"labels": {"team": "x"}}},
        content_type="application/merge-patch+json",
    )
    out = kn.apply(client, [{"name": "w1", "labels": {"node-role.kubernetes.io/worker": ""}}], False, 0)
    w1 = node(client, "w1")
    assert out["changed"]
    assert "zone" not in w1["metadata"]["labels"]
    assert w1["metadata"]["labels"]["team"] == "x"  # not ours: kept
    assert w1["metadata"]["labels"]["kubernetes.io/hostname"] == "w1"
    assert not w1["spec"].get("taints")


def test_check_mode_sends_no_patch(api: KubeAPI, client: KubeClient) -> None:
    out = kn.apply(client, [{"name": "w1", "labels": {"zone": "b"}, "taints": [{"key": "gpu"}]}], True, 0)
    assert out["changed"] and patches(api) == []
    assert out["nodes"]["w1"]["after"]["labels"]["zone"] == "b"
    assert "zone" not in node(client, "w1")["metadata"]["labels"]


def test_missing_node_waits_then_fails_clearly(client: KubeClient) -> None:
    with pytest.raises(KubeError, match="not registered"):
        kn.apply(client, [{"name": "w9", "labels": {"a": "b"}}], False, 0)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"name": "w1", "labels": {"bad key!": "x"}}, "nodes[w1].labels key"),
        ({"name": "w1", "labels": {"a": "x" * 64}}, "nodes[w1].labels[a]"),
        ({"name": "w1", "taints": [{"key": "a", "effect": "Never"}]}, "nodes[w1].taints[0].effect"),
        ({"name": "w1", "taints": [{"effect": "NoSchedule"}]}, "nodes[w1].taints[0]"),
        ({"name": ""}, "nodes[].name"),
    ],
)
def test_bad_specs_name_the_field(spec: dict, field: str) -> None:
    with pytest.raises(kn.ConfigError) as exc:
        kn.normalise(spec)
    assert exc.value.field == field and exc.value.fix


def test_bool_label_values_become_strings() -> None:
    assert kn.normalise({"name": "w1", "labels": {"gpu": True, "x": None}})["labels"] == {"gpu": "true", "x": ""}


def run(capsys, **args) -> dict:
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def test_module_diff_and_error(api: KubeAPI, client: KubeClient, kubeconfig: Path, capsys) -> None:
    result = run(
        capsys,
        kubeconfig=str(kubeconfig),
        nodes=[{"name": "w1", "labels": {"zone": "b"}}],
        _ansible_diff=True,
    )
    assert result["changed"]
    assert result["diff"]["after"]["w1"]["labels"]["zone"] == "b"
    assert "zone" not in result["diff"]["before"]["w1"]["labels"]
    bad = run(capsys, kubeconfig=str(kubeconfig), nodes=[{"name": "w1", "taints": [{"key": "a", "effect": "x"}]}])
    assert bad["failed"] and bad["error"]["field"] == "nodes[w1].taints[0].effect"


# --------------------------------------------------------------------------- operator kubeconfig filter

ADMIN_CONF = """
apiVersion: v1
kind: Config
clusters:
- cluster:
    certificate-authority-data: Q0EK
    server: https://127.0.0.1:7443
  name: kubernetes
contexts:
- context:
    cluster: kubernetes
    user: kubernetes-admin
  name: kubernetes-admin@kubernetes
current-context: kubernetes-admin@kubernetes
users:
- name: kubernetes-admin
  user:
    client-certificate-data: Q0VSVAo=
    client-key-data: S0VZCg==
"""


def test_operator_kubeconfig_rewrites_server_and_names() -> None:
    f = FilterModule().filters()["operator_kubeconfig"]
    doc = yaml.safe_load(f(ADMIN_CONF, "https://10.0.0.10:7443/", "prod"))
    assert doc["current-context"] == "prod"
    assert doc["contexts"] == [{"name": "prod", "context": {"cluster": "prod", "user": "prod-admin"}}]
    assert doc["clusters"][0]["cluster"] == {"certificate-authority-data": "Q0EK", "server": "https://10.0.0.10:7443"}
    assert base64.b64decode(doc["users"][0]["user"]["client-key-data"]) == b"KEY\n"


@pytest.mark.parametrize(
    ("text", "server", "match"),
    [
        (ADMIN_CONF, "10.0.0.10:7443", "not an URL"),
        ("kind: Config\n", "https://x:1", "no context"),
        (": [", "https://x:1", "not YAML"),
    ],
)
def test_operator_kubeconfig_errors(text: str, server: str, match: str) -> None:
    f = FilterModule().filters()["operator_kubeconfig"]
    with pytest.raises(AnsibleFilterError, match=match):
        f(text, server, "prod")


@pytest.mark.parametrize(
    ("kubelet", "server", "allowed"),
    [("1.35.0", "1.35.0", True), ("v1.32.1", "1.35.0", True), ("1.36.0", "1.35.0", False), ("1.31.0", "1.35.0", False)],
)
def test_kubelet_skew_filter(kubelet: str, server: str, allowed: bool) -> None:
    message = FilterModule().filters()["kubelet_skew"](kubelet, server)
    assert (message == "") is allowed
    if not allowed:
        assert "kubelet_version" in message and "fix:" in message


def test_check_mode_reports_labels_for_a_node_that_has_not_joined_yet(api: KubeAPI, client: KubeClient) -> None:
    out = kn.apply(client, [{"name": "w9", "labels": {"zone": "c"}}], check_mode=True, wait_timeout=60)
    assert out["changed"] and out["nodes"]["w9"]["after"]["labels"] == {"zone": "c"}
    assert patches(api) == []
