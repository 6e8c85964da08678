"""The cni role end to end on the controller: facts, MTU, render, validate, apply, wait (against the API test server).

The play targets localhost (connection local, node IP 127.0.0.1). The role's host part writes the node's CNI
config (Flannel) and the SR-IOV settings: every run points those paths into the test's temp dir (extra vars, the
only level above the role's vars), so this machine is not changed (tests/conftest.py checks /etc after the session).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.ansible_run import local_inventory, run_play  # noqa: E402
from tests.standins.kubeapi import KubeAPI  # noqa: E402


def run_role(tmp_path: Path, kubeconfig: Path, **extra) -> subprocess.CompletedProcess:
    inventory = local_inventory(
        "node1", vars={"smcp_node_ip": "127.0.0.1"}, children={"control_plane": {"hosts": {"node1": None}}}
    )
    play = [
        {
            "name": "pod network",
            "hosts": "all",
            "gather_facts": True,
            "vars": {"smcp_kubeconfig": str(kubeconfig), "cni_wait_timeout": 5, **extra},
            "module_defaults": {"group/smcp.platform.kube": {"kubeconfig": "{{ smcp_kubeconfig }}"}},
            "roles": ["smcp.platform.cni"],
        }
    ]
    # Where the role writes on the node: into the temp dir, never onto this machine.
    on_node = {"_cni_conf_dir": str(tmp_path / "etc-cni-net.d"), "_cni_sriov_conf": str(tmp_path / "sriov-vfs.conf")}
    return run_play(tmp_path, play, inventory=inventory, extra_vars=on_node)


def add_node(api: KubeAPI, ready: bool = True) -> None:
    api.handler.store[("", "nodes", "", "node1")] = {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": "node1", "labels": {"kubernetes.io/os": "linux"}, "resourceVersion": "1"},
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {"conditions": [{"type": "Ready", "status": "True" if ready else "False", "reason": "Standin"}]},
    }


@pytest.fixture
def api(tmp_path):
    with KubeAPI() as server:
        yield server


def test_role_applies_calico_and_waits(api, tmp_path):
    kc = api.kubeconfig(tmp_path / "admin.conf")
    add_node(api)
    extra = {"smcp_image_registry": "mirror.example:5000", "cni_manifest_dest": str(tmp_path / "m.yml")}
    out = run_role(tmp_path, kc, **extra)
    assert out.returncode == 0, out.stdout + out.stderr
    pool = api.store[("crd.projectcalico.org", "ippools", "", "default-ipv4-ippool")]
    assert pool["spec"]["cidr"] == "10.244.0.0/16"
    config = api.store[("", "configmaps", "kube-system", "calico-config")]
    assert config["data"]["veth_mtu"] == "65486"  # lo's MTU 65536 minus the VXLAN overhead
    ds = api.store[("apps", "daemonsets", "kube-system", "calico-node")]
    assert ds["spec"]["template"]["spec"]["containers"][0]["image"] == "mirror.example:5000/calico/node:v3.31.3"
    assert (tmp_path / "m.yml").stat().st_mode & 0o777 == 0o600
    assert any(r["method"] == "PATCH" and r["query"].get("fieldManager") == "smcp" for r in api.requests)
    # a second run changes nothing on the cluster
    again = run_role(tmp_path, kc, **extra)
    assert again.returncode == 0, again.stdout
    assert "changed=0" in again.stdout.split("PLAY RECAP")[1]


def test_role_times_out_naming_what_is_not_ready(api, tmp_path):
    kc = api.kubeconfig(tmp_path / "admin.conf")
    add_node(api, ready=False)
    api.set_controllers_ready(False)
    out = run_role(tmp_path, kc, smcp_cni="flannel")
    assert out.returncode != 0
    assert "pod network not ready after 5 s" in out.stdout
    assert "DaemonSet kube-flannel/kube-flannel-ds: 0/1 pods ready" in out.stdout
    assert "Node node1 is not Ready (Standin)" in out.stdout
    # The node's Flannel config was written, into the temp dir.
    conflist = json.loads((tmp_path / "etc-cni-net.d" / "10-flannel.conflist").read_text())
    assert conflist["plugins"][0]["type"] == "flannel"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"smcp_pod_cidr": "10.244.0.0/25"}, "smcp_pod_cidr=10.244.0.0/25 is too small"),
        ({"cni_mtu": 1000, "cni_encapsulation": "none"}, "below the minimum 1280"),
        ({"smcp_pod_cidr": "10.96.0.0/16"}, "overlaps smcp_service_cidr 10.96.0.0/12"),
        (
            {"cni_sriov_pfs": [{"name": "smcpnopf0", "num_vfs": 4, "resource_name": "sriov_a"}]},
            "SR-IOV preflight failed: PF smcpnopf0 does not exist",
        ),
    ],
)
def test_bad_input_fails_before_anything_is_applied(api, tmp_path, extra, message):
    kc = api.kubeconfig(tmp_path / "admin.conf")
    out = run_role(tmp_path, kc, **extra)
    assert out.returncode != 0
    assert message in out.stdout
    assert not [r for r in api.requests if r["method"] in ("PATCH", "POST", "PUT")]


def test_unknown_cni_is_refused_by_the_argument_spec(api, tmp_path):
    out = run_role(tmp_path, api.kubeconfig(tmp_path / "admin.conf"), smcp_cni="weave")
    assert out.returncode != 0
    assert "smcp_cni" in out.stdout and "weave" in out.stdout
    assert not api.requests


def test_pod_cidr_mismatch_with_kubeadm_fails_before_apply(api, tmp_path):
    kc = api.kubeconfig(tmp_path / "admin.conf")
    api.handler.store[("", "configmaps", "kube-system", "kubeadm-config")] = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "kubeadm-config", "namespace": "kube-system", "resourceVersion": "1"},
        "data": {"ClusterConfiguration": "networking:\n  podSubnet: 10.32.0.0/12\n"},
    }
    out = run_role(tmp_path, kc)
    assert out.returncode != 0
    assert "pod CIDR mismatch, nothing applied" in out.stdout and "10.32.0.0/12" in out.stdout
    assert not [r for r in api.requests if r["method"] in ("PATCH", "POST", "PUT")]
    # The check read the cluster's kubeadm configuration (it did not pass for want of asking).
    assert any(r["method"] == "GET" and r["path"].endswith("/configmaps/kubeadm-config") for r in api.requests), [
        (r["method"], r["path"]) for r in api.requests
    ]
