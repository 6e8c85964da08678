"""Day-2 playbooks on real sandbox hosts with a real 3-member etcd: certs (report, etcd renewal with a rolling
restart), remove_node (drain and delete through the Kubernetes API test server, etcd member removed, the
rest healthy and writable) and reset (refused without confirmation, then etcd and Kubernetes state gone).

Needs root and podman; heavy (3 hosts): run under `flock /tmp/smcp-heavy.lock`.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / ".venv" / "collections"))

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeClient

from tests.standins.kubeapi import KubeAPI

pytestmark = pytest.mark.sandbox

REPO = Path(__file__).resolve().parents[2]
SMCPCTL = str(REPO / ".venv" / "bin" / "smcpctl")


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=900)


@pytest.fixture(scope="module")
def box(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    name = f"upg-{secrets.token_hex(2)}"
    tmp = tmp_path_factory.mktemp("day2")
    info = json.loads(sh(SMCPCTL, "sandbox", "up", "--hosts", "3", "--name", name, "--json").stdout)
    try:
        base = Path(info.get("inventory") or f"/var/lib/smcp/sandbox/{name}/inventory.yml")
        names = sorted(yaml.safe_load(base.read_text())["all"]["hosts"])
        groups = {
            "all": {
                "vars": {"etcd_health_timeout": 60},
                "children": {
                    "etcd": {"hosts": dict.fromkeys(names)},
                    "control_plane": {"hosts": {names[0]: None}},
                    "workers": {"hosts": dict.fromkeys(names[1:])},
                },
            }
        }
        extra = tmp / "groups.yml"
        extra.write_text(yaml.safe_dump(groups))
        with KubeAPI() as api:
            kubeconfig = api.kubeconfig(tmp / "admin.conf")
            client = KubeClient(str(kubeconfig))
            for n in names:
                client.request(
                    "POST",
                    "/api/v1/nodes",
                    {"metadata": {"name": n}, "status": {"conditions": [{"type": "Ready", "status": "True"}]}},
                )
            client.request("POST", "/api/v1/namespaces", {"metadata": {"name": "apps"}})
            client.request(
                "POST",
                "/api/v1/namespaces/apps/pods",
                {"metadata": {"name": "web", "namespace": "apps"}, "spec": {"nodeName": names[2], "containers": []}},
            )
            yield {
                "names": names,
                "inventories": [str(base), str(extra)],
                "api": api,
                "client": client,
                "kubeconfig": kubeconfig,
                "tmp": tmp,
            }
    finally:
        sh(SMCPCTL, "sandbox", "down", "--name", name, check=False)


def play(box: dict[str, Any], playbook: str, *args: str, **extra: Any) -> subprocess.CompletedProcess[str]:
    cmd = [str(REPO / ".venv" / "bin" / "ansible-playbook")]
    for inv in box["inventories"]:
        cmd += ["-i", inv]
    cmd += [playbook, "-e", json.dumps({"smcp_kubeconfig": str(box["kubeconfig"]), **extra}), *args]
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
        "ANSIBLE_FORCE_COLOR": "0",
    }
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, check=False)


def on(box: dict[str, Any], host: str, command: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(REPO / ".venv" / "bin" / "ansible")]
    for inv in box["inventories"]:
        cmd += ["-i", inv]
    env = {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"), "ANSIBLE_FORCE_COLOR": "0"}
    cmd += [host, "-b", "-m", "ansible.builtin.shell", "-a", command, "-o"]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300, check=False)


def etcdctl(box: dict[str, Any], host: str, args: str) -> str:
    out = on(box, host, f"set -a; . /etc/etcd/etcd.env; set +a; etcdctl {args}")
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout.split("(stdout) ", 1)[-1].strip()


def test_day2_on_a_real_etcd_cluster(box) -> None:
    names = box["names"]
    first, second, third = names
    r = play(box, "smcp.platform.etcd")
    assert r.returncode == 0, r.stdout[-3000:]
    etcdctl(box, first, "put /smcp/day2 before")

    # certs: report only, then renew etcd's with a threshold longer than their lifetime (365 days)
    report = play(box, "smcp.platform.certs", certs_renew=False)
    assert report.returncode == 0, report.stdout[-3000:]
    assert "/etc/etcd/pki/ca.crt" in report.stdout and "CA)" in report.stdout
    before = on(box, third, "openssl x509 -noout -enddate -in /etc/etcd/pki/server.crt").stdout
    renew = play(box, "smcp.platform.certs", certs_renew_days=400)
    assert renew.returncode == 0, renew.stdout[-3000:]
    assert "EXPIRING" in renew.stdout and "Certificates - renew etcd's" in renew.stdout
    after = on(box, third, "openssl x509 -noout -enddate -in /etc/etcd/pki/server.crt").stdout
    assert before != after  # re-issued
    assert "before" in etcdctl(box, second, "get /smcp/day2 --print-value-only")

    # remove_node without --limit is refused
    refused = play(box, "smcp.platform.remove_node")
    assert refused.returncode != 0 and "Name the hosts to remove with --limit" in refused.stdout

    # remove the third host: drained and deleted in the API, its etcd member gone, the rest healthy
    on(box, third, "mkdir -p /etc/kubernetes /etc/cni/net.d && touch /etc/kubernetes/kubelet.conf")
    removed = play(box, "smcp.platform.remove_node", "--limit", third, remove_node_drain_timeout=20)
    assert removed.returncode == 0, removed.stdout[-3000:]
    assert "etcd: 2 of 2 members healthy" in removed.stdout
    calls = [(q["method"], q["path"]) for q in box["api"].requests]
    assert ("POST", "/api/v1/namespaces/apps/pods/web/eviction") in calls
    assert calls.index(("PATCH", f"/api/v1/nodes/{third}")) < calls.index(("DELETE", f"/api/v1/nodes/{third}"))
    nodes = {n["metadata"]["name"] for n in box["client"].request("GET", "/api/v1/nodes")["items"]}
    assert nodes == {first, second}
    members = json.loads(etcdctl(box, first, "member list -w json"))
    assert sorted(m["name"] for m in members["members"]) == [first, second]
    etcdctl(box, second, "put /smcp/day2 after")
    assert "after" in etcdctl(box, first, "get /smcp/day2 --print-value-only")
    gone = on(
        box,
        third,
        "systemctl is-active etcd; test -e /var/lib/etcd || echo no-data; test -e /etc/kubernetes || echo no-kube",
    )
    assert "no-data" in gone.stdout and "no-kube" in gone.stdout and "inactive" in gone.stdout

    # reset: refused without the confirmation (nothing touched), then wipes what is left
    no = play(box, "smcp.platform.reset", "--limit", f"{first},{second}")
    assert no.returncode != 0 and "reset_confirm=true" in no.stdout
    assert "after" in etcdctl(box, first, "get /smcp/day2 --print-value-only")
    yes = play(box, "smcp.platform.reset", "--limit", f"{first},{second}", reset_confirm=True)
    assert yes.returncode == 0, yes.stdout[-3000:]
    wiped = on(
        box, first, "systemctl is-active etcd; test -e /var/lib/etcd || echo no-data; test -e /etc/etcd || echo no-conf"
    )
    assert "inactive" in wiped.stdout and "no-data" in wiped.stdout and "no-conf" in wiped.stdout
    again = play(box, "smcp.platform.reset", "--limit", f"{first},{second}", reset_confirm=True)
    assert again.returncode == 0 and "changed=0" in again.stdout.split("PLAY RECAP", 1)[1]
