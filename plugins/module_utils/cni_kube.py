# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Apply manifests with server-side apply and wait until the pod network is up.

Talks to the API with plain REST paths built from the manifests (no discovery round trips),
through a small transport so the logic is tested against a test API server (kmock) and runs
with the pinned kubernetes client in the module.
"""

from __future__ import annotations

import json
import time

from ansible_collections.smcp.platform.plugins.module_utils.cni import check_cidr_consistency
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.data import PLURALS
from ansible_collections.smcp.platform.plugins.module_utils.cni_schema import object_name

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"


class KubeError(Exception):
    def __init__(self, msg, status=None):
        super().__init__(msg)
        self.status = status


class ClientTransport:
    """Transport over the kubernetes client's ApiClient (auth, TLS and proxy from the kubeconfig)."""

    def __init__(self, kubeconfig, context=None):
        from kubernetes import config  # imported here: the module reports a missing library itself

        self.api = config.new_client_from_config(config_file=kubeconfig, context=context)

    def request(self, method, path, body=None, content_type=None, query=None):
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        params = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=list((query or {}).items()),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*params)
            raw = response.read()
            status = response.status
        except Exception as exc:  # the client raises ApiException for some statuses
            status = getattr(exc, "status", None)
            raw = getattr(exc, "body", None)
            if status is None:
                raise KubeError("%s %s failed: %s" % (method, path, exc)) from exc
        try:
            data = json.loads(raw) if raw else {}
        except ValueError:
            data = {"message": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)}
        return status, data


def object_path(obj, with_name=True):
    api_version, kind = obj["apiVersion"], obj["kind"]
    if kind not in PLURALS:
        raise KubeError("no REST resource known for kind %s (%s)" % (kind, object_name(obj)))
    base = "/api/v1" if api_version == "v1" else "/apis/" + api_version
    namespace = (obj.get("metadata") or {}).get("namespace")
    path = base + ("/namespaces/" + namespace if namespace else "") + "/" + PLURALS[kind]
    return path + "/" + obj["metadata"]["name"] if with_name else path


def _message(data):
    return data.get("message") or data.get("reason") or json.dumps(data)[:300]


def _comparable(obj):
    obj = json.loads(json.dumps(obj))
    meta = obj.get("metadata", {})
    for key in ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"):
        meta.pop(key, None)
    obj.pop("status", None)
    return obj


class Applier:
    def __init__(self, transport, field_manager="smcp", clock=time.monotonic, sleep=time.sleep):
        self.t = transport
        self.field_manager = field_manager
        self.clock = clock
        self.sleep = sleep

    def get(self, path):
        status, data = self.t.request("GET", path)
        if status == 404:
            return None
        if status >= 400:
            raise KubeError("GET %s: HTTP %s: %s" % (path, status, _message(data)), status)
        return data

    def apply(self, obj, dry_run=False, retry_for=0.0):
        """Server-side apply one object; returns "created", "changed" or "unchanged".

        A 404 on a custom resource right after its CRD was applied is retried for retry_for
        seconds (the API server needs a moment to serve a new CRD). A server that answers 404
        for an object it does not have yet (test API servers) gets the object created instead.
        """
        path = object_path(obj)
        before = self.get(path)
        query = {"fieldManager": self.field_manager, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        deadline = self.clock() + retry_for
        while True:
            status, data = self.t.request("PATCH", path, obj, APPLY_CONTENT_TYPE, query)
            if status == 404 and before is None and not dry_run:
                status, data = self.t.request(
                    "POST",
                    object_path(obj, with_name=False),
                    obj,
                    "application/json",
                    {"fieldManager": self.field_manager},
                )
            if status == 404 and before is None and dry_run:
                return "created"  # its namespace or CRD is created by an earlier object of this run
            if status == 404 and self.clock() < deadline:
                self.sleep(1)
                continue
            break
        if status >= 400:
            raise KubeError("apply %s failed: HTTP %s: %s" % (object_name(obj), status, _message(data)), status)
        if before is None:
            return "created"
        return "unchanged" if _comparable(before) == _comparable(data) else "changed"

    def apply_all(self, objs, dry_run=False, crd_wait=60.0):
        results = []
        crd_applied = False
        for obj in objs:
            custom = obj["apiVersion"].split("/")[0].endswith((".projectcalico.org", ".cncf.io"))
            results.append((object_name(obj), self.apply(obj, dry_run, crd_wait if custom and crd_applied else 0.0)))
            crd_applied = crd_applied or obj["kind"] == "CustomResourceDefinition"
        return results

    # --- pod CIDR consistency -------------------------------------------------------------
    def cluster_pod_cidrs(self):
        """(kubeadm podSubnet or None, {node: [podCIDRs]}) read from the cluster."""
        subnet = None
        cm = self.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
        if cm:
            text = (cm.get("data") or {}).get("ClusterConfiguration") or ""
            subnet = _yaml_value(text, "podSubnet")
        nodes = {}
        status, data = self.t.request("GET", "/api/v1/nodes")
        if status < 400:
            for node in data.get("items") or []:
                spec = node.get("spec") or {}
                cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
                nodes[node["metadata"]["name"]] = cidrs
        return subnet, nodes

    def check_consistency(self, pod_cidr, cni_cidr):
        subnet, nodes = self.cluster_pod_cidrs()
        return check_cidr_consistency(pod_cidr, cni_cidr, subnet, nodes)

    # --- waiting ----------------------------------------------------------------------------
    def not_ready(self, workloads, nodes=True):
        """Descriptions of what is not ready yet (empty = all ready)."""
        waiting = []
        for kind, namespace, name in workloads:
            group = "apps/v1"
            path = "/apis/%s/namespaces/%s/%ss/%s" % (group, namespace, kind.lower(), name)
            obj = self.get(path)
            if obj is None:
                waiting.append("%s %s/%s does not exist" % (kind, namespace, name))
                continue
            waiting.extend(_workload_state(kind, namespace, name, obj))
        if nodes:
            status, data = self.t.request("GET", "/api/v1/nodes")
            if status >= 400:
                waiting.append("nodes cannot be listed: HTTP %s: %s" % (status, _message(data)))
            else:
                items = data.get("items") or []
                if not items:
                    waiting.append("no Node registered yet")
                for node in items:
                    cond = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
                    ready = cond.get("Ready") or {}
                    if ready.get("status") != "True":
                        waiting.append(
                            "Node %s is not Ready (%s)"
                            % (
                                node["metadata"]["name"],
                                ready.get("reason") or ready.get("message") or "no Ready condition",
                            )
                        )
        return waiting

    def wait(self, workloads, timeout, interval=5.0, nodes=True):
        deadline = self.clock() + timeout
        while True:
            waiting = self.not_ready(workloads, nodes)
            if not waiting:
                return []
            if self.clock() >= deadline:
                return waiting
            self.sleep(min(interval, max(0.0, deadline - self.clock())))


def _workload_state(kind, namespace, name, obj):
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    label = "%s %s/%s" % (kind, namespace, name)
    meta = obj.get("metadata") or {}
    if meta.get("generation") and status.get("observedGeneration", 0) < meta["generation"]:
        return ["%s: controller has not observed generation %s yet" % (label, meta["generation"])]
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled")
        if desired is None:
            return ["%s: no status yet (no node scheduled)" % label]
        ready = status.get("numberReady", 0)
        updated = status.get("updatedNumberScheduled", desired)
        if ready < desired or updated < desired:
            return ["%s: %d/%d pods ready, %d/%d updated" % (label, ready, desired, updated, desired)]
        return []
    wanted = spec.get("replicas", 1)
    available = status.get("availableReplicas", 0)
    if available < wanted:
        return ["%s: %d/%d replicas available" % (label, available, wanted)]
    return []


def _yaml_value(text, key):
    """A scalar `key: value` from a YAML document (kubeadm's ClusterConfiguration), without a YAML library."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(key + ":"):
            value = stripped[len(key) + 1 :].split(" #", 1)[0].strip().strip("'\"")
            return value or None
    return None
