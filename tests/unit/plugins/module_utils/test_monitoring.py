"""Monitoring generators: file_sd targets (inventory and API), scrape configs, in-cluster objects, rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from ansible.errors import AnsibleFilterError
from ansible_collections.smcp.platform.plugins.filter import monitoring as flt
from ansible_collections.smcp.platform.plugins.module_utils import monitoring as mon
from ansible_collections.smcp.platform.plugins.module_utils import monitoring_manifests as man

ROOT = Path(__file__).resolve().parents[4]
RULES = ROOT / "roles" / "monitoring" / "files" / "rules"

HOSTVARS = {
    "cp1": {"ansible_host": "10.0.0.11", "smcp_node_ip": "192.168.1.11", "smcp_cluster_name": "prod"},
    "cp2": {"ansible_host": "10.0.0.12", "etcd_listen_metrics_urls": ["http://0.0.0.0:2381"]},
    "w1": {"ansible_host": "fd00::21"},
    "lb": {"ansible_host": "10.0.0.99"},
}
GROUPS = {"etcd": ["cp1", "cp2"], "control_plane": ["cp1", "cp2"], "workers": ["w1"], "lb": ["lb"]}


def _by_node(entries):
    return {e["labels"]["node"]: e for e in entries}


def test_inventory_targets_per_job():
    hv = dict(HOSTVARS)
    hv["cp1"] = dict(hv["cp1"], etcd_listen_metrics_urls=["http://127.0.0.1:2381", "http://192.168.1.11:2381"])
    result = mon.build_targets(hv, GROUPS, {"cluster": "dev"})
    t = result["targets"]
    node = _by_node(t["node"])
    assert set(node) == {"cp1", "cp2", "w1"}, "hosts outside the cluster groups are not scraped"
    assert node["cp1"]["targets"] == ["192.168.1.11:9100"], "smcp_node_ip wins over ansible_host"
    assert node["w1"]["targets"] == ["[fd00::21]:9100"], "IPv6 is bracketed"
    assert node["cp1"]["labels"] == {"node": "cp1", "cluster": "prod", "source": "inventory"}
    assert node["cp2"]["labels"]["cluster"] == "dev", "settings' cluster is the default"
    etcd = _by_node(t["etcd"])
    assert etcd["cp1"]["targets"] == ["192.168.1.11:2381"], "loopback URL dropped, routable one kept"
    assert etcd["cp2"]["targets"] == ["10.0.0.12:2381"], "any-address listener scraped at the node address"
    assert etcd["cp1"]["labels"]["__scheme__"] == "http"
    assert [e["targets"] for e in t["kube-apiserver"]] == [["192.168.1.11:6443"], ["10.0.0.12:6443"]]
    assert sorted(_by_node(t["kubelet"])) == ["cp1", "cp2", "w1"]
    assert _by_node(t["kubelet"])["w1"]["targets"] == ["[fd00::21]:10250"]
    assert result["skipped"] == []


def test_loopback_only_etcd_is_reported_not_scraped():
    result = mon.build_targets({"e1": {"ansible_host": "10.0.0.5"}}, {"etcd": ["e1"]})
    assert result["targets"]["etcd"] == []
    assert result["skipped"][0]["host"] == "e1"
    assert "etcd_listen_metrics_urls" in result["skipped"][0]["reason"]
    assert [e["targets"] for e in result["targets"]["node"]] == [["10.0.0.5:9100"]]


def test_custom_group_names_ports_and_scrape_address():
    hv = {
        "a": {
            "ansible_host": "127.0.0.1",
            "monitoring_scrape_address": "10.1.0.1",
            "monitoring_node_exporter_port": 9200,
        }
    }
    result = mon.build_targets(hv, {"masters": ["a"]}, {"control_plane_group": "masters", "kubelet_port": 10255})
    t = result["targets"]
    assert t["node"][0]["targets"] == ["10.1.0.1:9200"]
    assert t["kube-apiserver"][0]["targets"] == ["10.1.0.1:6443"]
    assert t["kubelet"][0]["targets"] == ["10.1.0.1:10255"]


@pytest.mark.parametrize("bad", ["2381", "ftp://x:1", "http://host-without-port"])
def test_bad_etcd_url_names_the_variable(bad):
    with pytest.raises(mon.TargetError, match="etcd_listen_metrics_urls"):
        mon.build_targets({"e": {"etcd_listen_metrics_urls": [bad]}}, {"etcd": ["e"]})


def test_group_member_without_hostvars_is_an_error():
    with pytest.raises(mon.TargetError, match="'ghost'"):
        mon.build_targets({}, {"workers": ["ghost"]})


HOSTS = [
    {"id": "h1", "name": "n1", "address": "10.0.0.1", "roles": ["workers"], "cluster_id": "c1", "vars": {}},
    {
        "id": "h2",
        "name": "n2",
        "address": "127.0.0.1",
        "roles": ["workers"],
        "cluster_id": "c1",
        "vars": {"smcp_node_ip": "172.16.0.2", "etcd_listen_metrics_urls": ["http://172.16.0.2:2381"]},
    },
    {"id": "h3", "name": "free", "address": "10.0.0.3", "roles": ["workers"], "cluster_id": None, "vars": {}},
]
CLUSTERS = [
    {
        "id": "c1",
        "name": "edge",
        "options": {"smcp_apiserver_port": 7443},
        "hosts": [
            {"host_id": "h1", "roles": ["etcd", "control_plane"]},
            {"host_id": "h2", "roles": ["etcd", "workers"]},
        ],
    }
]


def test_api_targets_use_cluster_roles_options_and_host_vars():
    result = mon.api_targets(HOSTS, CLUSTERS)
    t = result["targets"]
    node = _by_node(t["node"])
    assert set(node) == {"n1", "n2"}, "hosts outside clusters are not scraped"
    assert node["n2"]["targets"] == ["172.16.0.2:9100"], "a tunnelled host is scraped at its node IP"
    assert node["n1"]["labels"] == {"node": "n1", "cluster": "edge", "source": "api"}
    assert [e["targets"] for e in t["kube-apiserver"]] == [["10.0.0.1:7443"]], "cluster options apply"
    assert [e["targets"] for e in t["etcd"]] == [["172.16.0.2:2381"]]
    assert [s["host"] for s in result["skipped"]] == ["n1"]
    assert sorted(_by_node(t["kubelet"])) == ["n1", "n2"]


def test_api_answer_must_be_lists():
    with pytest.raises(mon.TargetError, match="JSON lists"):
        mon.api_targets({"detail": "Not authenticated"}, [])


def test_write_files_is_atomic_idempotent_and_prunes(tmp_path):
    files = mon.render_files(mon.build_targets(HOSTVARS, GROUPS)["targets"], "inventory")
    assert sorted(files) == [f"inventory-{job}.json" for job in sorted(mon.JOBS)]
    for text in files.values():
        json.loads(text)
    (tmp_path / "inventory-old.json").write_text("[]")
    (tmp_path / "api-node.json").write_text("[]")
    assert mon.write_files(files, str(tmp_path), "inventory") == sorted([*files, "inventory-old.json"])
    assert mon.write_files(files, str(tmp_path), "inventory") == [], "unchanged files are not rewritten"
    assert (tmp_path / "api-node.json").exists(), "other prefixes are left alone"
    assert oct((tmp_path / "inventory-node.json").stat().st_mode & 0o777) == "0o644"
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")], "no temporary files left"


class _FakeAPI(BaseHTTPRequestHandler):
    token = "s3cret"
    seen: list[str] = []

    def do_GET(self):
        self.seen.append(self.path)
        if self.headers.get("Authorization") != "Bearer " + self.token:
            self.send_response(401)
            self.end_headers()
            self.wfile.write(b'{"detail": "invalid token"}')
            return
        body = {"/api/v1/hosts": HOSTS, "/api/v1/clusters": CLUSTERS}.get(self.path)
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(json.dumps(body).encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def api():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _FakeAPI)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()


def test_refresh_from_api_writes_api_files(api, tmp_path):
    out = tmp_path / "file_sd"
    result = mon.refresh_from_api(api + "/", "s3cret", str(out))
    assert result["changed"] == [f"api-{job}.json" for job in sorted(mon.JOBS)]
    node = json.loads((out / "api-node.json").read_text())
    assert {e["labels"]["node"] for e in node} == {"n1", "n2"}


def test_cli_reports_a_bad_token_and_writes_nothing(api, tmp_path):
    token = tmp_path / "token"
    token.write_text("wrong\n")
    out = tmp_path / "out"
    args = ["--api-url", api, "--token-file", str(token), "--out-dir", str(out)]
    assert mon.main(args) == 1
    assert not out.exists()
    token.write_text("s3cret\n")
    assert mon.main(args) == 0
    assert len(list(out.glob("api-*.json"))) == len(mon.JOBS)


def test_installed_script_runs_standalone(api, tmp_path):
    """The role installs module_utils/monitoring.py as a script; it needs nothing but the stdlib."""
    template = (ROOT / "roles/monitoring/templates/smcp_file_sd.py.j2").read_text()
    source = (ROOT / "plugins/module_utils/monitoring.py").read_text()
    script = tmp_path / "smcp_file_sd.py"
    script.write_text(
        template.replace("{{ ansible_managed }}", "managed").replace(
            "{{ lookup('ansible.builtin.file', _monitoring_module_utils) }}", source
        )
    )
    assert "{{" not in script.read_text().split("main()")[-1]
    token = tmp_path / "token"
    token.write_text("s3cret")
    run = subprocess.run(
        [
            sys.executable,
            "-I",
            str(script),
            "--api-url",
            api,
            "--token-file",
            str(token),
            "--out-dir",
            str(tmp_path / "sd"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout)["skipped"][0]["host"] == "n1"


def test_scrape_configs_one_kube_job_pair_per_cluster():
    configs = mon.scrape_configs("/etc/prometheus/file_sd", ["b.x", "a", "a"])
    names = [c["job_name"] for c in configs]
    assert names == ["node", "etcd", "kube-apiserver:a", "kubelet:a", "kube-apiserver:b.x", "kubelet:b.x"]
    assert len(set(names)) == len(names), "Prometheus refuses duplicate job names"
    api_b = configs[4]
    assert api_b["authorization"]["credentials_file"] == "/etc/prometheus/secrets/b.x.token"
    assert api_b["relabel_configs"][0] == {"source_labels": ["cluster"], "regex": "b\\.x", "action": "keep"}
    assert api_b["relabel_configs"][1] == {"target_label": "job", "replacement": "kube-apiserver"}
    assert configs[0]["file_sd_configs"][0]["files"] == ["/etc/prometheus/file_sd/*-node.json"]


def test_manifests_are_consistent_objects():
    rules = {"smcp-nodes.yml": (RULES / "smcp-nodes.yml").read_text()}
    objs = man.incluster_manifests({"cluster": "edge", "namespace": "mon", "rules": rules})
    kinds = [o["kind"] for o in objs]
    assert kinds[0] == "Namespace", "the namespace is created first"
    for obj in objs:
        assert obj["apiVersion"] and obj["metadata"]["name"]
        if obj["kind"] not in ("Namespace", "ClusterRole", "ClusterRoleBinding"):
            assert obj["metadata"]["namespace"] == "mon"
    dep = next(o for o in objs if o["kind"] == "Deployment")
    spec = dep["spec"]
    assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
    pod = spec["template"]["spec"]
    sas = {o["metadata"]["name"] for o in objs if o["kind"] == "ServiceAccount"}
    assert pod["serviceAccountName"] in sas
    configmaps = {o["metadata"]["name"]: o for o in objs if o["kind"] == "ConfigMap"}
    for volume in pod["volumes"]:
        if "configMap" in volume:
            assert volume["configMap"]["name"] in configmaps
    assert configmaps["prometheus-rules"]["data"] == rules
    config = yaml.safe_load(configmaps["prometheus-config"]["data"]["prometheus.yml"])
    assert config["global"]["external_labels"] == {"cluster": "edge"}
    assert {c["job_name"] for c in config["scrape_configs"]} >= {"kube-apiserver", "kubelet", "node"}
    bindings = [o for o in objs if o["kind"] == "ClusterRoleBinding"]
    roles = {o["metadata"]["name"] for o in objs if o["kind"] == "ClusterRole"}
    for binding in bindings:
        assert binding["roleRef"]["name"] in roles
        assert binding["subjects"][0]["name"] in sas and binding["subjects"][0]["namespace"] == "mon"
    secret = next(o for o in objs if o["kind"] == "Secret")
    assert secret["type"] == "kubernetes.io/service-account-token"
    assert secret["metadata"]["annotations"]["kubernetes.io/service-account.name"] == man.READER
    reader = next(o for o in objs if o["kind"] == "ClusterRole" and o["metadata"]["name"] == "smcp:" + man.READER)
    assert all(set(rule["verbs"]) == {"get"} for rule in reader["rules"]), "the outside reader is read-only"


def test_manifests_without_reader_and_bad_settings():
    kinds = [o["kind"] for o in man.incluster_manifests({"external_reader": False})]
    assert "Secret" not in kinds
    with pytest.raises(man.ManifestError, match="monitoring_incluster_namespace"):
        man.incluster_manifests({"namespace": "Bad_NS"})
    with pytest.raises(man.ManifestError, match="monitoring_incluster_replicas"):
        man.incluster_manifests({"replicas": "many"})
    with pytest.raises(man.ManifestError, match=r"name\.yml"):
        man.incluster_manifests({"rules": {"../x": ""}})


class _HostVars(dict):
    """Like Ansible's hostvars: a host's mapping raises on variables that cannot be templated."""


def test_filters_read_only_what_they_need():
    class Strict(dict):
        def __getitem__(self, key):
            if key == "broken":
                raise RuntimeError("undefined variable")
            return super().__getitem__(key)

    hv = _HostVars({"a": Strict(ansible_host="10.0.0.1", broken="{{ nope }}"), "other": Strict(broken=1)})
    result = flt.monitoring_targets(hv, {"workers": ["a"]}, cluster="c")
    files = flt.monitoring_file_sd(result, "inventory")
    assert json.loads(files["inventory-node.json"])[0]["targets"] == ["10.0.0.1:9100"]
    with pytest.raises(AnsibleFilterError, match="hostvars"):
        flt.monitoring_targets(["a"], {})
    with pytest.raises(AnsibleFilterError, match="monitoring_targets"):
        flt.monitoring_file_sd({}, "x")
    with pytest.raises(AnsibleFilterError, match="monitoring_manifests"):
        flt.monitoring_manifests({"name": "UPPER"})
    assert set(flt.FilterModule().filters()) == {
        "monitoring_targets",
        "monitoring_file_sd",
        "monitoring_scrape_configs",
        "monitoring_manifests",
        "monitoring_prometheus_config",
    }


EXPECTED_ALERTS = {
    "NodeDown",
    "EtcdNoLeader",
    "EtcdSlowFsync",
    "EtcdMemberDown",
    "KubeApiServerDown",
    "KubeApiServerAllDown",
    "CertificateExpiresSoon",
    "CertificateExpiresVerySoon",
}


def test_rule_files_cover_the_agreed_alerts_and_are_well_formed():
    alerts = {}
    for path in sorted(RULES.glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        for group in doc["groups"]:
            for rule in group["rules"]:
                assert rule["alert"] not in alerts, f"duplicate alert {rule['alert']}"
                alerts[rule["alert"]] = rule
                assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
                assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
                assert rule["expr"].strip() and rule["for"], rule["alert"]
    assert EXPECTED_ALERTS <= set(alerts)
    node_jobs = {"node", "etcd", "kube-apiserver", "kubelet"}
    for rule in alerts.values():
        if 'job="' in rule["expr"]:
            assert rule["expr"].split('job="')[1].split('"')[0] in node_jobs, rule["alert"]
