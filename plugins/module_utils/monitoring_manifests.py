# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Kubernetes objects of the in-cluster Prometheus of a workload cluster (role ``monitoring``).

``incluster_manifests(settings)`` returns plain dicts, applied in order by kubernetes.core.k8s:
Namespace, ServiceAccount, ClusterRole(s), ClusterRoleBinding(s), ConfigMap (prometheus.yml + rule
files), Deployment, Service, and the read-only ``smcp-metrics-reader`` identity (ServiceAccount +
token Secret) the management Prometheus uses to scrape kube-apiserver and kubelet from outside.
"""

from __future__ import annotations

import json
import re

DEFAULTS = {
    "namespace": "smcp-monitoring",
    "name": "prometheus",
    "image": "quay.io/prometheus/prometheus:v2.55.1",
    "cluster": "smcp",
    "retention": "7d",
    "scrape_interval": "30s",
    "replicas": 1,
    "node_exporter_port": 9100,
    "cpu_request": "100m",
    "memory_request": "256Mi",
    "memory_limit": "1Gi",
    "rules": {},
    "external_reader": True,
}
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_LABELS = {"app.kubernetes.io/name": "prometheus", "app.kubernetes.io/part-of": "smcp-monitoring"}
READER = "smcp-metrics-reader"


class ManifestError(ValueError):
    """A setting that cannot produce valid objects; the message names the setting, value and fix."""


def _settings(settings):
    merged = dict(DEFAULTS)
    merged.update({k: v for k, v in (settings or {}).items() if v is not None})
    for key in ("namespace", "name"):
        if not _DNS_LABEL.match(str(merged[key])):
            raise ManifestError(
                "monitoring_incluster_%s: %r is not a DNS label (lowercase letters, digits, '-', at most 63)"
                % (key, merged[key])
            )
    if not isinstance(merged["rules"], dict):
        raise ManifestError("rules: must be a mapping of file name to rule file text, got %r" % type(merged["rules"]))
    for file_name in merged["rules"]:
        if not re.match(r"^[A-Za-z0-9_.-]+\.ya?ml$", str(file_name)):
            raise ManifestError("rules: file name %r must look like name.yml (a ConfigMap key)" % file_name)
    try:
        replicas = int(merged["replicas"])
    except (TypeError, ValueError):
        replicas = -1
    if replicas < 0:
        raise ManifestError("monitoring_incluster_replicas: %r must be a whole number >= 0" % merged["replicas"])
    merged["replicas"] = replicas
    return merged


def prometheus_config(settings=None):
    """The in-cluster prometheus.yml as a dict (Kubernetes service discovery with the pod's token)."""
    s = _settings(settings)
    sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount"
    in_cluster_tls = {"ca_file": sa_dir + "/ca.crt"}
    token = {"credentials_file": sa_dir + "/token"}
    node_name = {"source_labels": ["__meta_kubernetes_node_name"], "target_label": "node"}
    return {
        "global": {
            "scrape_interval": s["scrape_interval"],
            "evaluation_interval": s["scrape_interval"],
            "external_labels": {"cluster": str(s["cluster"])},
        },
        "rule_files": ["/etc/prometheus/rules/*.yml"],
        "scrape_configs": [
            {
                "job_name": "kube-apiserver",
                "scheme": "https",
                "tls_config": in_cluster_tls,
                "authorization": token,
                "kubernetes_sd_configs": [{"role": "endpoints", "namespaces": {"names": ["default"]}}],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_service_name", "__meta_kubernetes_endpoint_port_name"],
                        "regex": "kubernetes;https",
                        "action": "keep",
                    }
                ],
            },
            {
                # kubeadm's kubelet serving certificates are self-signed: no CA to check them against.
                "job_name": "kubelet",
                "scheme": "https",
                "tls_config": {"insecure_skip_verify": True},
                "authorization": token,
                "kubernetes_sd_configs": [{"role": "node"}],
                "relabel_configs": [node_name],
            },
            {
                "job_name": "node",
                "kubernetes_sd_configs": [{"role": "node"}],
                "relabel_configs": [
                    node_name,
                    {
                        "source_labels": ["__address__"],
                        "regex": "(.+):\\d+",
                        "replacement": "${1}:%d" % int(s["node_exporter_port"]),
                        "target_label": "__address__",
                    },
                ],
            },
            {
                "job_name": "pods",
                "kubernetes_sd_configs": [{"role": "pod"}],
                "relabel_configs": [
                    {
                        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_scrape"],
                        "regex": "true",
                        "action": "keep",
                    },
                    {
                        "source_labels": ["__meta_kubernetes_pod_annotation_prometheus_io_path"],
                        "regex": "(.+)",
                        "target_label": "__metrics_path__",
                    },
                    {
                        "source_labels": ["__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port"],
                        "regex": "([^:]+)(?::\\d+)?;(\\d+)",
                        "replacement": "${1}:${2}",
                        "target_label": "__address__",
                    },
                    {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
                    {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
                ],
            },
        ],
    }


def _meta(name, namespace=None, labels=None):
    meta = {"name": name, "labels": dict(labels or _LABELS)}
    if namespace:
        meta["namespace"] = namespace
    return meta


def incluster_manifests(settings=None, config_text=None):
    """Every object of the in-cluster Prometheus, in apply order.

    ``config_text`` is prometheus.yml as YAML/JSON text (the role renders ``prometheus_config()`` with
    to_nice_yaml); when None, JSON of ``prometheus_config()`` is used (JSON is valid YAML).
    """
    s = _settings(settings)
    ns, name = s["namespace"], s["name"]
    if config_text is None:
        config_text = json.dumps(prometheus_config(s), indent=2, sort_keys=True)
    role_name = "smcp:%s" % name
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(ns)},
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta(role_name),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["nodes", "nodes/metrics", "services", "endpoints", "pods"],
                    "verbs": ["get", "list", "watch"],
                },
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["get", "list", "watch"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta(role_name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role_name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(name + "-config", ns),
            "data": {"prometheus.yml": config_text},
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta(name + "-rules", ns),
            "data": {str(k): str(v) for k, v in sorted(s["rules"].items())},
        },
        _deployment(s),
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta(name, ns),
            "spec": {
                "selector": dict(_LABELS),
                "ports": [{"name": "web", "port": 9090, "targetPort": "web", "protocol": "TCP"}],
            },
        },
    ]
    if s["external_reader"]:
        objects.extend(_external_reader(ns))
    return objects


def _deployment(s):
    ns, name = s["namespace"], s["name"]
    container = {
        "name": "prometheus",
        "image": str(s["image"]),
        "args": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=%s" % s["retention"],
            "--web.enable-lifecycle",
        ],
        "ports": [{"name": "web", "containerPort": 9090}],
        "readinessProbe": {"httpGet": {"path": "/-/ready", "port": "web"}, "periodSeconds": 10},
        "livenessProbe": {"httpGet": {"path": "/-/healthy", "port": "web"}, "periodSeconds": 30},
        "resources": {
            "requests": {"cpu": str(s["cpu_request"]), "memory": str(s["memory_request"])},
            "limits": {"memory": str(s["memory_limit"])},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "config", "mountPath": "/etc/prometheus", "readOnly": True},
            {"name": "rules", "mountPath": "/etc/prometheus/rules", "readOnly": True},
            {"name": "data", "mountPath": "/prometheus"},
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(name, ns),
        "spec": {
            "replicas": s["replicas"],
            "selector": {"matchLabels": dict(_LABELS)},
            # One TSDB per pod on an emptyDir: replace, never run two at once on the same volume.
            "strategy": {"type": "Recreate"},
            "template": {
                "metadata": {"labels": dict(_LABELS)},
                "spec": {
                    "serviceAccountName": name,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": 65534,
                        "runAsGroup": 65534,
                        "fsGroup": 65534,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "configMap": {"name": name + "-config"}},
                        {"name": "rules", "configMap": {"name": name + "-rules"}},
                        {"name": "data", "emptyDir": {}},
                    ],
                },
            },
        },
    }


def _external_reader(ns):
    """Read-only identity for the management Prometheus: /metrics of the API server and kubelets."""
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(READER, ns)},
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": _meta("smcp:" + READER),
            "rules": [
                {"apiGroups": [""], "resources": ["nodes/metrics"], "verbs": ["get"]},
                {"nonResourceURLs": ["/metrics"], "verbs": ["get"]},
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": _meta("smcp:" + READER),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "smcp:" + READER},
            "subjects": [{"kind": "ServiceAccount", "name": READER, "namespace": ns}],
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "type": "kubernetes.io/service-account-token",
            "metadata": dict(_meta(READER + "-token", ns), annotations={"kubernetes.io/service-account.name": READER}),
        },
    ]
