"""Monitoring on real sandbox hosts: A = management host (standalone Debian Prometheus), B = a worker.

The playbook smcp.platform.monitoring installs the node exporter on B (listening on B's address only)
and, on A, the rules, the inventory targets and the API targets (from a stand-in of the smcp API's
/hosts and /clusters on the sandbox gateway). Checks: Prometheus scrapes B, the rules load and pass
promtool (syntax and expression tests), NodeDown goes pending when B's exporter stops, certificate
expiry metrics reach Prometheus, the API targets appear, a second run changes nothing.

Run with `flock /tmp/smcp-heavy.lock pytest -m sandbox tests/integration/test_monitoring_live.py`.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from tests.sandbox_ssh import ssh_argv

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
SMCPCTL = str(ROOT / ".venv" / "bin" / "smcpctl")
RULES = ROOT / "roles" / "monitoring" / "files" / "rules"
NAME = "ops-mon"
TOKEN = "viewer-token-for-test"


def _run(*cmd: str, check: bool = True, input_text: str | None = None, env: dict[str, str] | None = None):
    proc = subprocess.run(
        list(cmd), capture_output=True, text=True, check=False, input=input_text, env=env, timeout=900
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{cmd} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


class _API(BaseHTTPRequestHandler):
    """GET /api/v1/hosts and /api/v1/clusters as the smcp API answers them (bearer token checked)."""

    body: dict[str, object] = {}

    def do_GET(self):
        if self.headers.get("Authorization") != f"Bearer {TOKEN}" or self.path not in self.body:
            self.send_response(401 if self.path in self.body else 404)
            self.end_headers()
            return
        data = json.dumps(self.body[self.path]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def mon(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("monitoring")
    info = json.loads(_run(SMCPCTL, "sandbox", "up", "--hosts", "2", "--name", NAME, "--json").stdout)
    server = None
    try:
        mgmt, worker = info["hosts"]
        _API.body = {
            "/api/v1/hosts": [
                {"id": "h9", "name": "api-node", "address": worker["ip"], "roles": ["workers"], "cluster_id": "c9"}
            ],
            "/api/v1/clusters": [
                {"id": "c9", "name": "from-api", "options": {}, "hosts": [{"host_id": "h9", "roles": ["workers"]}]}
            ],
        }
        server = ThreadingHTTPServer((info["gateway"], 0), _API)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        # A certificate expiring in 10 days on B, for the expiry metrics.
        cert = _run(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(tmp / "k.pem"),
            "-out",
            "-",
            "-days",
            "10",
            "-subj",
            "/CN=soon",
        ).stdout
        _ssh(
            info, worker, "sudo mkdir -p /etc/kubernetes/pki && sudo tee /etc/kubernetes/pki/soon.crt >/dev/null", cert
        )
        inventory = {
            "all": {
                "vars": {
                    "ansible_user": info["user"],
                    "ansible_ssh_private_key_file": info["key"],
                    "ansible_ssh_common_args": f"-o UserKnownHostsFile={info['known_hosts']} "
                    "-o StrictHostKeyChecking=yes -o IdentitiesOnly=yes",
                    "ansible_python_interpreter": "/usr/bin/python3",
                    "smcp_sandbox": True,
                    "smcp_cluster_name": "edge",
                    "monitoring_scrape_interval": "5s",
                },
                "children": {
                    "mgmt": {
                        "hosts": {
                            mgmt["name"]: {
                                "ansible_host": mgmt["ip"],
                                "monitoring_server_standalone": True,
                                "monitoring_server_listen_address": f"{mgmt['ip']}:9090",
                                "monitoring_api_url": f"http://{info['gateway']}:{server.server_address[1]}",
                                "monitoring_api_token": TOKEN,
                            }
                        }
                    },
                    "workers": {
                        "hosts": {worker["name"]: {"ansible_host": worker["ip"], "smcp_node_ip": worker["ip"]}}
                    },
                },
            }
        }
        inv = tmp / "inventory.yml"
        inv.write_text(yaml.safe_dump(inventory))
        first = _playbook(inv)
        yield {"info": info, "mgmt": mgmt, "worker": worker, "inv": inv, "first": first}
    finally:
        if server is not None:
            server.shutdown()
        _run(SMCPCTL, "sandbox", "down", "--name", NAME, check=False)


def _playbook(inv: Path):
    env = {
        "PATH": str(ROOT / ".venv" / "bin") + ":/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(Path.home()),
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_COLLECTIONS_PATH": str(ROOT / ".venv" / "collections"),
    }
    return _run(
        str(ROOT / ".venv/bin/ansible-playbook"), "-i", str(inv), str(ROOT / "playbooks/monitoring.yml"), env=env
    )


def _ssh(info, host, command: str, input_text: str | None = None, check: bool = True):
    return _run(
        *ssh_argv(host),
        command,
        input_text=input_text,
        check=check,
    )


def _prom(mon, path: str, **params: str):
    query = ("?" + urllib.parse.urlencode(params)) if params else ""
    with urllib.request.urlopen(f"http://{mon['mgmt']['ip']}:9090/api/v1/{path}{query}", timeout=10) as answer:
        return json.loads(answer.read())["data"]


def _wait_for(probe, what: str, seconds: float = 120):
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(2)


def test_node_exporter_listens_on_the_node_address_only(mon):
    listening = _ssh(mon["info"], mon["worker"], "ss -Hltn 'sport = :9100'").stdout.split()
    assert f"{mon['worker']['ip']}:9100" in listening
    assert "0.0.0.0:9100" not in listening and "*:9100" not in listening


def test_prometheus_scrapes_the_worker_and_loads_the_rules(mon):
    def node_up():
        targets = _prom(mon, "targets")["activeTargets"]
        up = [t for t in targets if t["labels"]["job"] == "node" and t["health"] == "up"]
        return up if {t["labels"]["source"] for t in up} == {"inventory", "api"} else []

    # One target from the inventory, one from the API (same exporter, other labels).
    up = _wait_for(node_up, "the worker's node exporter to be up (inventory and API targets)")
    assert {t["labels"]["cluster"] for t in up} == {"edge", "from-api"}
    names = {r["name"] for g in _prom(mon, "rules")["groups"] for r in g["rules"]}
    assert {"NodeDown", "EtcdNoLeader", "EtcdSlowFsync", "KubeApiServerDown", "CertificateExpiresSoon"} <= names


def test_certificate_expiry_reaches_prometheus(mon):
    expr = yaml.safe_load((RULES / "smcp-certificates.yml").read_text())["groups"][0]["rules"][0]["expr"]

    def soon():
        return _prom(mon, "query", query=expr)["result"]

    found = _wait_for(soon, "the expiring certificate to be reported")
    assert found[0]["metric"]["path"] == "/etc/kubernetes/pki/soon.crt"
    assert 9 * 86400 < float(found[0]["value"][1]) <= 10 * 86400


def test_rules_pass_promtool(mon):
    check = _ssh(mon["info"], mon["mgmt"], "promtool check rules /etc/prometheus/rules/*.yml")
    assert check.stdout.count("SUCCESS") == len(list(RULES.glob("*.yml")))
    rules = {
        r["alert"]: r["expr"]
        for path in RULES.glob("*.yml")
        for g in yaml.safe_load(path.read_text())["groups"]
        for r in g["rules"]
    }
    lab = 'cluster="c",node="n1",instance="i"'
    tests = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": f'etcd_server_has_leader{{{lab},job="etcd"}}', "values": "1 1 0 0"},
                    {"series": f'up{{{lab},job="kube-apiserver"}}', "values": "1 0 0"},
                    {"series": 'up{cluster="c",node="n2",instance="j",job="kube-apiserver"}', "values": "1 1 0"},
                    # WAL fsync: every fsync in the 1.024 s bucket (slow), i.e. p99 ~1 s.
                    {"series": f'etcd_disk_wal_fsync_duration_seconds_bucket{{{lab},le="0.512"}}', "values": "0x10"},
                    {"series": f'etcd_disk_wal_fsync_duration_seconds_bucket{{{lab},le="1.024"}}', "values": "0+60x10"},
                    {"series": f'etcd_disk_wal_fsync_duration_seconds_bucket{{{lab},le="+Inf"}}', "values": "0+60x10"},
                ],
                "promql_expr_test": [
                    {"expr": rules["EtcdNoLeader"], "eval_time": "1m", "exp_samples": []},
                    {
                        "expr": rules["EtcdNoLeader"],
                        "eval_time": "3m",
                        "exp_samples": [{"labels": f'etcd_server_has_leader{{{lab},job="etcd"}}', "value": 0}],
                    },
                    {"expr": rules["KubeApiServerAllDown"], "eval_time": "1m", "exp_samples": []},
                    {
                        "expr": rules["KubeApiServerAllDown"],
                        "eval_time": "2m",
                        "exp_samples": [{"labels": '{cluster="c"}', "value": 0}],
                    },
                    {
                        "expr": rules["EtcdSlowFsync"] + " > bool 0.9",
                        "eval_time": "10m",
                        "exp_samples": [{"labels": f"{{{lab}}}", "value": 1}],
                    },
                ],
            }
        ],
    }
    result = _ssh(
        mon["info"],
        mon["mgmt"],
        "cat >/tmp/smcp-rules-test.yml && promtool test rules /tmp/smcp-rules-test.yml",
        input_text=yaml.safe_dump(tests),
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_api_targets_are_refreshed_by_a_timer(mon):
    timer = _ssh(
        mon["info"],
        mon["mgmt"],
        "systemctl is-active smcp-file-sd.timer; sudo stat -c %a /etc/smcp/monitoring-api.token",
    )
    assert timer.stdout.split() == ["active", "600"]
    nodes = json.loads(_ssh(mon["info"], mon["mgmt"], "cat /etc/prometheus/file_sd/api-node.json").stdout)
    assert nodes == [
        {
            "labels": {"cluster": "from-api", "node": "api-node", "source": "api"},
            "targets": [f"{mon['worker']['ip']}:9100"],
        }
    ]


def test_second_run_changes_nothing(mon):
    again = _playbook(mon["inv"])
    recaps = [line for line in again.stdout.splitlines() if " : ok=" in line]
    assert len(recaps) == 2 and all("changed=0" in r and "failed=0" in r for r in recaps), again.stdout[-3000:]


def test_node_down_goes_pending_when_the_exporter_stops(mon):
    _ssh(mon["info"], mon["worker"], "sudo systemctl stop prometheus-node-exporter")
    try:

        def pending():
            alerts = _prom(mon, "alerts")["alerts"]
            found = [
                a for a in alerts if a["labels"]["alertname"] == "NodeDown" and a["state"] in ("pending", "firing")
            ]
            # Both targets of the stopped exporter (inventory and API), each after its own next scrape.
            return found if len(found) == 2 else []

        alerts = _wait_for(pending, "NodeDown to go pending")
        assert {a["labels"].get("node") for a in alerts} == {mon["worker"]["name"], "api-node"}, alerts
    finally:
        _ssh(mon["info"], mon["worker"], "sudo systemctl start prometheus-node-exporter")
