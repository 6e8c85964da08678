"""Kubernetes mode of the management plane: every manifest is valid against the Kubernetes schema (strict:
unknown fields fail) and stays in step with the embedded mode (same alert rules, same dashboard)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
ROLE = ROOT / "roles" / "mgmt_plane"
VERSIONS = ["1.34.0", "1.37.0"]


def kustomization() -> dict[str, Any]:
    return yaml.safe_load((K8S / "kustomization.yaml").read_text())


def documents() -> list[tuple[str, dict[str, Any]]]:
    docs = []
    for name in kustomization()["resources"]:
        for doc in yaml.safe_load_all((K8S / name).read_text()):
            if doc is not None:
                docs.append((f"{name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


def find(kind: str, name: str) -> dict[str, Any]:
    matches = [doc for _, doc in documents() if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(matches) == 1, f"{kind}/{name}: {len(matches)} found"
    return matches[0]


def test_kustomization_lists_every_manifest() -> None:
    files = sorted(p.name for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
    assert sorted(kustomization()["resources"]) == files


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize(("where", "doc"), documents(), ids=[w for w, _ in documents()])
def test_manifest_is_valid_against_the_kubernetes_schema(where: str, doc: dict[str, Any], version: str) -> None:
    kubernetes_validate.validate(doc, version, strict=True)


def test_an_invalid_manifest_is_refused() -> None:
    """The validator does bite: a misspelt field in a real manifest fails."""
    doc = find("Deployment", "smcp-api")
    doc["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(doc, VERSIONS[-1], strict=True)


def test_every_namespaced_object_lands_in_the_smcp_namespace() -> None:
    assert kustomization()["namespace"] == "smcp"
    assert all("namespace" not in doc["metadata"] for _, doc in documents())


def test_alert_rules_are_the_embedded_modes() -> None:
    rules = find("ConfigMap", "smcp-prometheus-rules")["data"]["mgmt_plane.yml"]
    assert rules == (ROLE / "files" / "rules" / "mgmt_plane.yml").read_text()


def test_dashboard_is_the_embedded_modes() -> None:
    dashboard = find("ConfigMap", "smcp-grafana-dashboards")["data"]["smcp-mgmt-plane.json"]
    assert json.loads(dashboard) == json.loads((ROLE / "files" / "dashboards" / "smcp-mgmt-plane.json").read_text())


def test_prometheus_scrapes_the_api_with_the_mounted_token() -> None:
    config = yaml.safe_load(find("ConfigMap", "smcp-prometheus")["data"]["prometheus.yml"])
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"prometheus", "alertmanager", "smcp-api", "node"}
    token_path = Path(jobs["smcp-api"]["authorization"]["credentials_file"])
    pod = find("Deployment", "smcp-prometheus")["spec"]["template"]["spec"]
    mounts = {m["name"]: m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    secrets = {v["name"]: v["secret"]["secretName"] for v in pod["volumes"] if "secret" in v}
    assert secrets == {"scrape-token": "smcp-api-scrape-token"}
    assert str(token_path.parent) == mounts["scrape-token"]


def test_api_image_is_the_one_kustomize_rewrites() -> None:
    pod = find("Deployment", "smcp-api")["spec"]["template"]["spec"]
    assert pod["containers"][0]["image"] in {image["name"] for image in kustomization()["images"]}
    env = {e["name"]: e for e in pod["containers"][0]["env"]}
    assert env["SMCP_DB_URL"]["valueFrom"]["secretKeyRef"] == {"name": "smcp-postgresql", "key": "url"}
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_containerfile_matches_the_manifests() -> None:
    """What the Deployment assumes of the image: the smcp-api console script, uid 10001, port 8780, the
    collections path; and every path the build copies exists in the repository."""
    lines = (ROOT / "deploy" / "Containerfile").read_text().splitlines()
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ") and "--from=" not in line]
    assert all((ROOT / src).exists() for srcs in copies for src in srcs)
    assert 'ENTRYPOINT ["smcp-api"]' in lines
    assert 'smcp-api = "smcp_api.server:main"' in (ROOT / "pyproject.toml").read_text()
    assert "USER 10001:10001" in lines
    pod = find("Deployment", "smcp-api")["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert pod["securityContext"]["runAsUser"] == 10001
    assert container["ports"][0]["containerPort"] == 8780
    assert "EXPOSE 8780" in lines
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert f"SMCP_COLLECTIONS_PATH={env['SMCP_COLLECTIONS_PATH']} " in "\n".join(lines)


def _env(pod: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in pod["containers"][0]["env"]}


def test_api_replicas_roll_without_downtime_and_run_no_job() -> None:
    """Several stateless replicas, replaced one at a time once the new one answers /healthz; they publish jobs
    to RabbitMQ and run none themselves."""
    deployment = find("Deployment", "smcp-api")
    spec = deployment["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = spec["template"]["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] == "/healthz"
    env = _env(spec["template"]["spec"])
    assert env["SMCP_WORKERS"]["value"] == "0"
    assert env["SMCP_BROKER_URL"]["valueFrom"]["secretKeyRef"] == {"name": "smcp-broker", "key": "url"}
    budget = find("PodDisruptionBudget", "smcp-api")["spec"]
    assert budget["selector"]["matchLabels"] == spec["selector"]["matchLabels"]
    assert budget["minAvailable"] < spec["replicas"]


def test_no_multi_replica_workload_mounts_a_shared_claim() -> None:
    """State lives in PostgreSQL: a Deployment with more than one replica mounts no PersistentVolumeClaim (a
    ReadWriteOnce claim would pin every replica to one node or keep all but one from starting)."""
    claims = {doc["metadata"]["name"]: doc for _, doc in documents() if doc["kind"] == "PersistentVolumeClaim"}
    multi = [doc for _, doc in documents() if doc["kind"] == "Deployment" and doc["spec"].get("replicas", 1) > 1]
    assert {d["metadata"]["name"] for d in multi} >= {"smcp-api", "smcp-worker"}
    for doc in multi:
        volumes = doc["spec"]["template"]["spec"].get("volumes", [])
        mounted = [v["persistentVolumeClaim"]["claimName"] for v in volumes if "persistentVolumeClaim" in v]
        assert mounted == [], (doc["metadata"]["name"], mounted, [claims[c]["spec"]["accessModes"] for c in mounted])


def test_worker_deployment_runs_smcp_worker_like_the_role_s_unit() -> None:
    """smcp-worker from the API's image, on the same database, key and broker; root with exactly the
    capabilities of the mgmt_plane role's units (job users are switched to, never created: they are in the
    image for every slot)."""
    api = find("Deployment", "smcp-api")["spec"]["template"]["spec"]
    spec = find("Deployment", "smcp-worker")["spec"]
    assert spec["replicas"] >= 2
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = spec["template"]["spec"]
    container = pod["containers"][0]
    assert container["command"] == ["smcp-worker"]
    assert container["image"] == api["containers"][0]["image"]
    env, api_env = _env(pod), _env(api)
    for name in ("SMCP_DB_URL", "SMCP_SECRET_KEY", "SMCP_BROKER_URL", "SMCP_COLLECTIONS_PATH"):
        assert env[name] == api_env[name], name
    slots = int(env["SMCP_WORKERS"]["value"])
    assert slots >= 1
    assert 'smcp-worker = "smcp_api.worker_main:main"' in (ROOT / "pyproject.toml").read_text()
    containerfile = (ROOT / "deploy" / "Containerfile").read_text()
    users = re.search(r"for n in ([\d ]+); do", containerfile)
    assert users is not None and set(range(1, slots + 1)) <= {int(n) for n in users.group(1).split()}
    assert f"--home-dir {env['SMCP_JOBS_DIR']['value']}/smcp-job$n" in containerfile
    unit = (ROLE / "templates" / "smcp-api.service.j2").read_text()
    caps = re.search(r"^AmbientCapabilities=(.*)$", unit, re.MULTILINE)
    assert caps is not None
    added = container["securityContext"]["capabilities"]
    assert added["drop"] == ["ALL"]
    assert sorted(f"CAP_{c}" for c in added["add"]) == sorted(caps.group(1).split())
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert all("persistentVolumeClaim" not in v for v in pod["volumes"])


def test_prometheus_scrapes_every_api_replica() -> None:
    config = yaml.safe_load(find("ConfigMap", "smcp-prometheus")["data"]["prometheus.yml"])
    job = next(j for j in config["scrape_configs"] if j["job_name"] == "smcp-api")
    assert "static_configs" not in job
    (sd,) = job["kubernetes_sd_configs"]
    labels = {s["label"] for s in sd["selectors"]}
    pod = find("Deployment", "smcp-api")["spec"]["template"]["metadata"]["labels"]
    assert labels == {f"app.kubernetes.io/name={pod['app.kubernetes.io/name']}"}
