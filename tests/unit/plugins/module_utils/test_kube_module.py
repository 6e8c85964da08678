"""The Kubernetes module wrapper (kube_module) and client (kube_client) on the Kubernetes API test server:
error mapping, check mode, the shared options, and kube_objects built on them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient, KubeError
from ansible_collections.smcp.platform.plugins.module_utils.kube_module import KUBE_AUTH_SPEC
from ansible_collections.smcp.platform.plugins.modules import (
    bootstrap_token,
    cluster_lock,
    cni_apply,
    kube_node,
    kube_objects,
    node_config,
    upgrade_plan,
)

from tests.standins.kubeapi import KubeAPI

NS = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "mon"}}
CM = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg", "namespace": "mon"}, "data": {"a": "1"}}


@pytest.fixture
def api(tmp_path: Path) -> Iterator[KubeAPI]:
    with KubeAPI() as server:
        server.kc = str(server.kubeconfig(tmp_path / "admin.conf"))
        yield server


def run(mod: Any, capsys: pytest.CaptureFixture[str], **args: Any) -> dict[str, Any]:
    with patch_module_args(args), pytest.raises(SystemExit):
        mod.main()
    return json.loads(capsys.readouterr().out)


def writes(api: KubeAPI) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in api.requests if r["method"] not in ("GET", "HEAD")]


def stored(api: KubeAPI, kind: str, name: str) -> bool:
    return any(o.get("kind") == kind and o["metadata"]["name"] == name for o in api.store.values())


@pytest.mark.parametrize(
    "mod", [bootstrap_token, cluster_lock, cni_apply, kube_node, kube_objects, node_config, upgrade_plan]
)
def test_every_kube_module_takes_the_shared_auth_options(mod: Any) -> None:
    for name, spec in KUBE_AUTH_SPEC.items():
        assert mod.ARGUMENT_SPEC[name] == spec
    assert "smcp.platform.kube_auth" in mod.DOCUMENTATION
    group = yaml.safe_load((Path(__file__).resolve().parents[4] / "meta" / "runtime.yml").read_text())
    assert mod.__name__.rsplit(".", 1)[1] in group["action_groups"]["kube"]


def test_http_errors_are_mapped_to_status_and_fix(api: KubeAPI, capsys) -> None:
    api.fail(method="GET", path=r"/namespaces/kube-system$", status=403, message="user cannot get namespaces")
    out = run(cluster_lock, capsys, kubeconfig=api.kc)
    assert out["failed"] and out["status"] == 403
    assert "GET /api/v1/namespaces/kube-system: HTTP 403: user cannot get namespaces" in out["msg"]
    assert "RBAC" in out["fix"] and out["fix"] in out["msg"]

    api.clear_failures()
    api.fail(method="GET", path=r"/namespaces/kube-system$", status=500, message="etcd unavailable")
    out = run(cluster_lock, capsys, kubeconfig=api.kc)
    assert out["status"] == 500 and "etcd unavailable" in out["msg"] and "look at its log" in out["fix"]


def test_no_answer_and_bad_kubeconfig_are_told_apart(tmp_path: Path, capsys) -> None:
    with KubeAPI() as gone:
        kc = str(gone.kubeconfig(tmp_path / "gone.conf"))
    out = run(kube_node, capsys, kubeconfig=kc, name="w1", state="cordoned")
    assert out["failed"] and out["status"] == 0 and "did not answer" in out["msg"]
    assert "reachable from the controller" in out["fix"]

    (tmp_path / "broken.conf").write_text("clusters: [\n")
    out = run(kube_node, capsys, kubeconfig=str(tmp_path / "broken.conf"), name="w1", state="cordoned")
    assert out["failed"] and out["status"] is None and out["fix"] == ""
    assert out["msg"].startswith(f"cannot load kubeconfig {tmp_path / 'broken.conf'}")


def test_a_missing_kubeconfig_names_module_defaults(capsys) -> None:
    out = run(kube_objects, capsys, objects=[NS])
    assert out["failed"] and "kubeconfig is missing" in out["msg"] and "group/smcp.platform.kube" in out["msg"]
    # upgrade_plan works without one (versions given), so for it the client is optional
    out = run(upgrade_plan, capsys, target="1.35.1", control_planes={"cp1": "1.35.0"}, kubelets={"cp1": "1.35.0"})
    assert not out.get("failed") and out["plan"]["status"] == "ready"


def test_check_mode_client_refuses_writes_that_are_not_dry_runs(api: KubeAPI) -> None:
    client = KubeClient(api.kc, check_mode=True)
    with pytest.raises(KubeError, match="check mode: POST /api/v1/namespaces would change the cluster"):
        client.request("POST", "/api/v1/namespaces", NS)
    assert writes(api) == [] and not stored(api, "Namespace", "mon")
    status, _ = client.call("POST", "/api/v1/namespaces", NS, query={"dryRun": "All"})
    assert status == 201 and not stored(api, "Namespace", "mon")
    assert client.request("GET", "/api/v1/namespaces/default")["metadata"]["name"] == "default"


def test_kube_objects_apply_rerun_check_mode_query_and_delete(api: KubeAPI, capsys) -> None:
    dry = run(kube_objects, capsys, kubeconfig=api.kc, objects=[NS, CM], _ansible_check_mode=True)
    assert dry["changed"] and dry["results"] == [["Namespace mon", "created"], ["ConfigMap mon/cfg", "created"]]
    assert not stored(api, "Namespace", "mon") and not stored(api, "ConfigMap", "cfg")

    first = run(kube_objects, capsys, kubeconfig=api.kc, objects=[NS, CM])
    assert first["changed"] and stored(api, "ConfigMap", "cfg")
    again = run(kube_objects, capsys, kubeconfig=api.kc, objects=[NS, CM])
    assert again["changed"] is False and again["results"][1] == ["ConfigMap mon/cfg", "unchanged"]

    found = run(
        kube_objects,
        capsys,
        kubeconfig=api.kc,
        state="query",
        objects=[CM, {**CM, "metadata": {"name": "x", "namespace": "mon"}}],
    )
    assert [o["data"] for o in found["objects"]] == [{"a": "1"}] and found["changed"] is False

    before = len(writes(api))
    dry = run(kube_objects, capsys, kubeconfig=api.kc, state="absent", objects=[NS, CM], _ansible_check_mode=True)
    assert dry["changed"] and len(writes(api)) == before and stored(api, "ConfigMap", "cfg")
    gone = run(kube_objects, capsys, kubeconfig=api.kc, state="absent", objects=[NS, CM])
    assert gone["results"] == [["ConfigMap mon/cfg", "deleted"], ["Namespace mon", "deleted"]]
    assert not stored(api, "ConfigMap", "cfg") and not stored(api, "Namespace", "mon")
    assert run(kube_objects, capsys, kubeconfig=api.kc, state="absent", objects=[NS, CM])["changed"] is False


def test_an_unknown_kind_is_refused_before_any_call(api: KubeAPI, capsys) -> None:
    out = run(
        kube_objects,
        capsys,
        kubeconfig=api.kc,
        objects=[{"apiVersion": "x.io/v1", "kind": "Widget", "metadata": {"name": "w"}}],
    )
    assert out["failed"] and "no REST resource known for kind Widget (Widget w)" in out["msg"] and api.requests == []
