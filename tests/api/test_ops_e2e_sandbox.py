"""End to end: every cluster operation of the API runs its real playbook on sandbox hosts.

test_e2e_sandbox.py covers preflight, prepare_hosts and etcd_backup; this file covers the rest, in the order
a cluster lives: create_cluster (smcp.platform.cluster), add_nodes (scale), upgrade, certs, remove_node
and reset, each as an API job (TestClient, the job worker, the real collection, job isolation and pinned
host keys as in production) on 3 sandbox hosts (host 1: etcd + control plane, host 2: worker,
host 3: the worker added and removed later), local load-balancer mode.

No Kubernetes binary can be obtained here, so the cluster runs the stand-ins of tests/standins
(docs/testing.md): two offline bundles (the previous minor, then the newest release) built with
bundle.py, whose kube-apiserver stand-ins forward to the Kubernetes API test server (kubeapi.py) on the
sandbox gateway, served over HTTP from the gateway. Jobs point at a bundle with `smcp_bundle_url` and
`kube_artifacts_checksums` in `params.extra_vars`: both are role options the variable policy allows, so
the API needs no controller path from users (smcp_bundle_dir stays refused).

Each job must succeed, and each must leave its effect: Nodes registered (create, add), the Nodes' kubelets
and the cluster's version at the target (upgrade), certificates re-issued (certs), the Node and its host's
Kubernetes files gone and the host out of the cluster (remove_node), Kubernetes and etcd wiped (reset).
Heavy: run under `flock /tmp/smcp-heavy.lock`.
"""

from __future__ import annotations

import functools
import json
import secrets
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from smcp_api import versions

from tests.api.sandbox_api import api_on_sandbox, sandbox_up
from tests.standins.kubeapi import KubeAPI

pytestmark = pytest.mark.sandbox

SANDBOX = f"apiops-{secrets.token_hex(2)}"  # its own: test runs side by side never share a sandbox
REPO = Path(__file__).resolve().parents[2]

NEW = versions.supported_versions()[-1]
_major, _minor, _ = NEW.split(".")
OLD = max(
    (v for v in versions.supported_versions() if v.startswith(f"{_major}.{int(_minor) - 1}.")),
    key=lambda v: int(v.split(".")[2]),
)


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def sandbox():
    with sandbox_up(SANDBOX, 3) as info:
        yield info


@pytest.fixture(scope="module")
def standins(sandbox, tmp_path_factory) -> Iterator[dict[str, Any]]:
    """The Kubernetes API test server and a mirror of both stand-in bundles, on the sandbox gateway."""
    tmp = tmp_path_factory.mktemp("standins")
    with KubeAPI(host=sandbox.gateway, version=OLD) as kubeapi:
        build = [sys.executable, str(REPO / "tests" / "standins" / "bundle.py"), "build", "--out", str(tmp / "bundles")]
        built = subprocess.run(
            [*build, "--version", OLD, "--version", NEW, "--upstream", kubeapi.url, "--no-images"],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert built.returncode == 0, built.stderr[-3000:]
        handler = functools.partial(_QuietHandler, directory=str(tmp / "bundles"))
        mirror = ThreadingHTTPServer((sandbox.gateway, 0), handler)
        thread = threading.Thread(target=mirror.serve_forever, daemon=True)
        thread.start()
        try:
            base = f"http://{sandbox.gateway}:{mirror.server_address[1]}"
            bundles = {
                v: {"smcp_bundle_url": f"{base}/{v}-amd64", "kube_artifacts_checksums": b["kube_artifacts_checksums"]}
                for v, b in json.loads(built.stdout)["bundles"].items()
            }
            yield {"kubeapi": kubeapi, "bundles": bundles}
        finally:
            mirror.shutdown()
            mirror.server_close()


@pytest.fixture(scope="module")
def ops_api(sandbox, standins, tmp_path_factory, reachable_dir, job_user_prefix):
    tmp = tmp_path_factory.mktemp("ops")
    with api_on_sandbox(sandbox, tmp, reachable_dir, job_user_prefix, "ops-key") as (api, hosts):
        body = {
            "name": SANDBOX,
            "kubernetes_version": OLD,
            "hosts": [
                {"host_id": hosts[0]["id"], "roles": ["etcd", "control_plane"]},
                {"host_id": hosts[1]["id"], "roles": ["workers"]},
            ],
            "options": {"smcp_lb_mode": "local", "etcd_single_node": True, "etcd_health_timeout": 60},
        }
        r = api.post("/api/v1/clusters", json=body)
        assert r.status_code == 201, r.text
        yield api, hosts, r.json()


def run_job(api: Any, durations: dict[str, float], operation: str, cluster: dict[str, Any], **body: Any) -> str:
    """Run one job through the API to its end; its stdout (the job must have succeeded)."""
    t0 = time.monotonic()
    r = api.post("/api/v1/jobs", role="operator", json={"operation": operation, "cluster_id": cluster["id"], **body})
    assert r.status_code == 202, r.text
    job = api.wait_job(r.json()["id"], timeout=900)
    durations[operation] = round(time.monotonic() - t0, 1)
    print(f"\n{operation}: {job['status']} in {durations[operation]} s")
    stdout = api.get(f"/api/v1/jobs/{job['id']}/stdout").text
    assert job["status"] == "successful", f"{operation}: {job.get('reason')}\n{stdout[-6000:]}"
    assert job["host_summary"], operation
    for stats in job["host_summary"].values():
        assert stats["failed"] == 0 and stats["unreachable"] == 0, (operation, job["host_summary"])
    assert "PRIVATE KEY" not in stdout
    return stdout


def on(sandbox: Any, index: int, command: str) -> str:
    """`command` run as root on sandbox host `index`; its stdout."""
    from smcp_api import sandbox as core

    cmd = [*core.ssh_command(sandbox, sandbox.hosts[index]), "sudo", "sh", "-c", shlex.quote(command)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0, f"{command}: {out.stdout}{out.stderr}"
    return out.stdout


def kubeadm_calls(sandbox: Any, index: int) -> list[list[str]]:
    """The argv of every kubeadm call the stand-in recorded on host `index`."""
    text = on(sandbox, index, "cat /var/lib/smcp-standin/calls.jsonl 2>/dev/null || true")
    calls = [json.loads(line) for line in text.splitlines() if line.strip()]
    return [c["argv"] for c in calls if c["argv"][:1] == ["kubeadm"]]


def nodes(kubeapi: KubeAPI) -> dict[str, str]:
    """Node name -> kubelet version, as the Kubernetes API test server holds them."""
    return {
        name: obj.get("status", {}).get("nodeInfo", {}).get("kubeletVersion", "")
        for (group, plural, _, name), obj in list(kubeapi.store.items())
        if group == "" and plural == "nodes"
    }


def fingerprint(sandbox: Any, index: int, path: str) -> str:
    return on(sandbox, index, f"openssl x509 -noout -fingerprint -sha256 -in {path}").strip()


def test_every_operation_runs_its_playbook_on_sandbox_hosts(ops_api, sandbox, standins) -> None:
    api, hosts, cluster = ops_api
    kubeapi = standins["kubeapi"]
    bundles = standins["bundles"]
    first, second, third = (h.name for h in sandbox.hosts)
    durations: dict[str, float] = {}
    t0 = time.monotonic()

    # create_cluster: etcd, load balancer, binaries from the OLD bundle, kubeadm init on the control plane,
    # the worker joined, pod network; both Nodes registered by their kubelets, the kubeconfig kept
    run_job(api, durations, "create_cluster", cluster, params={"extra_vars": bundles[OLD]})
    assert [c[1] for c in kubeadm_calls(sandbox, 0)].count("init") == 1
    assert [c[1] for c in kubeadm_calls(sandbox, 1)].count("join") == 1
    assert nodes(kubeapi) == {first: f"v{OLD}", second: f"v{OLD}"}
    kept = api.get("/api/v1/artifacts", params={"cluster": SANDBOX, "kind": "cluster_file"}).json()  # the store
    assert {a["name"] for a in kept} == {"admin.conf", "ca.crt"}  # later jobs get both

    # add_nodes: the third host prepared and joined as a worker, nothing else touched
    run_job(api, durations, "add_nodes", cluster, host_ids=[hosts[2]["id"]], params={"extra_vars": bundles[OLD]})
    assert [c[1] for c in kubeadm_calls(sandbox, 2)].count("join") == 1
    assert set(nodes(kubeapi)) == {first, second, third}
    assert api.get(f"/api/v1/hosts/{hosts[2]['id']}").json()["cluster_id"] == cluster["id"]

    # upgrade to the newest release (NEW bundle): kubeadm upgrade apply on the control plane, every kubelet
    # at the new version, the cluster's recorded version follows, the etcd snapshot taken first is kept
    extra = {"smcp_kubernetes_version": NEW, **bundles[NEW]}
    run_job(api, durations, "upgrade", cluster, params={"extra_vars": extra})
    assert ["kubeadm", "upgrade", "apply", f"v{NEW}"] == kubeadm_calls(sandbox, 0)[-1][:4]
    assert set(nodes(kubeapi).values()) == {f"v{NEW}"}
    assert on(sandbox, 0, "cat /etc/smcp/kubernetes-version").strip() == NEW
    assert api.get(f"/api/v1/clusters/{cluster['id']}").json()["kubernetes_version"] == NEW
    kept = api.get("/api/v1/artifacts", params={"cluster": SANDBOX, "kind": "etcd_snapshot"}).json()
    assert len([a for a in kept if a["name"].endswith(".db")]) == 1  # the pre-upgrade snapshot, in the store

    # certs: every certificate within 400 days (all: they last a year) re-issued, kubeadm's and etcd's
    certs = ("/etc/kubernetes/pki/apiserver.crt", "/etc/etcd/pki/server.crt")
    before = {path: fingerprint(sandbox, 0, path) for path in certs}
    run_job(api, durations, "certs", cluster, params={"extra_vars": {"certs_renew_days": 400}})
    for path in certs:
        assert fingerprint(sandbox, 0, path) != before[path], f"{path} was not re-issued"
    assert ["kubeadm", "certs", "renew", "all"] in [c[:4] for c in kubeadm_calls(sandbox, 0)]

    # remove_node: the third host drained and deleted from the API, reset, and out of the cluster in the store
    run_job(
        api,
        durations,
        "remove_node",
        cluster,
        host_ids=[hosts[2]["id"]],
        params={"extra_vars": {"remove_node_drain_timeout": 20}},
    )
    assert set(nodes(kubeapi)) == {first, second}
    assert "no-kube" in on(sandbox, 2, "test -e /etc/kubernetes || echo no-kube")
    assert api.get(f"/api/v1/hosts/{hosts[2]['id']}").json()["cluster_id"] is None

    # reset: Kubernetes and etcd wiped from the cluster's hosts
    run_job(api, durations, "reset", cluster, params={"extra_vars": {"reset_confirm": True}})
    wiped = on(
        sandbox,
        0,
        "systemctl is-active etcd || true; test -e /var/lib/etcd || echo no-data;"
        " test -e /etc/kubernetes || echo no-kube",
    )
    assert "inactive" in wiped and "no-data" in wiped and "no-kube" in wiped, wiped
    assert "no-kube" in on(sandbox, 1, "test -e /etc/kubernetes || echo no-kube")

    print(f"\njob durations (s): {durations}; all jobs {time.monotonic() - t0:.0f} s")
