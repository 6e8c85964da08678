"""The in-cluster Prometheus applied through the Kubernetes API (test API server tests/standins/kubeapi.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import yaml

from tests.ansible_run import run_play
from tests.standins.kubeapi import KubeAPI

ROOT = Path(__file__).resolve().parents[2]

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  module_defaults:
    group/smcp.platform.kube:
      kubeconfig: "{{{{ smcp_kubeconfig }}}}"
  vars:
    smcp_kubeconfig: {kubeconfig}
    smcp_cluster_name: edge
    monitoring_incluster_state: {state}
  tasks:
    - ansible.builtin.include_role:
        name: smcp.platform.monitoring
        tasks_from: incluster
    - ansible.builtin.copy:
        content: "{{{{ monitoring_kube_tokens | default({{}}) | to_json }}}}"
        dest: {out}
        mode: "0600"
"""


def _play(tmp_path: Path, kubeconfig: Path, state: str) -> subprocess.CompletedProcess[str]:
    play = PLAY.format(kubeconfig=kubeconfig, state=state, out=tmp_path / "tokens.json")
    run = run_play(tmp_path, play, name=f"incluster-{state}.yml")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    return run


def _kinds(api: KubeAPI) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for key, obj in api.store.items():
        found.setdefault(obj.get("kind") or str(key), set()).add(obj["metadata"]["name"])
    return found


def test_apply_rerun_and_remove(tmp_path):
    with KubeAPI() as api:
        kubeconfig = api.kubeconfig(tmp_path / "admin.conf")
        _play(tmp_path, kubeconfig, "present")
        kinds = _kinds(api)
        assert "smcp-monitoring" in kinds["Namespace"]
        assert kinds["Deployment"] >= {"prometheus"}
        assert kinds["ConfigMap"] >= {"prometheus-config", "prometheus-rules"}
        assert kinds["ServiceAccount"] >= {"prometheus", "smcp-metrics-reader"}
        config = next(
            o
            for o in api.store.values()
            if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == "prometheus-config"
        )
        prometheus = yaml.safe_load(config["data"]["prometheus.yml"])
        assert prometheus["global"]["external_labels"] == {"cluster": "edge"}
        rules = next(
            o
            for o in api.store.values()
            if o.get("kind") == "ConfigMap" and o["metadata"]["name"] == "prometheus-rules"
        )
        assert "KubeApiServerDown" in rules["data"]["smcp-kubernetes.yml"]
        # The test server has no token controller: no token is invented.
        assert (tmp_path / "tokens.json").read_text() == "{}"

        again = _play(tmp_path, kubeconfig, "present")
        recap = [line for line in again.stdout.splitlines() if line.startswith("localhost") and "ok=" in line]
        assert "changed=0" in recap[-1], "a second apply changes nothing"

        _play(tmp_path, kubeconfig, "absent")
        left = _kinds(api)
        assert "prometheus" not in left.get("Deployment", set())
        assert "smcp-monitoring" not in left.get("Namespace", set())
