#!/usr/bin/env python3
"""Kubernetes API test server: kmock's KubernetesEmulator with what smcp's playbooks and tests need.

Tests only, never part of the product. Plain HTTP, no authentication, everything in memory.

kmock provides the HTTP server, request parsing (group/version/plural/namespace/name/subresource)
and its request list; this subclass replaces the emulator's object handling because kmock 0.8 stores
objects as bare dicts (no resourceVersion, no label/field selectors, PATCH as a dict merge, PUT
unknown). What is emulated here, and how closely, is listed in docs/testing.md.

Usage in pytest::

    from tests.standins.kubeapi import KubeAPI

    with KubeAPI() as api:            # random port on 127.0.0.1
        api.url                       # "http://127.0.0.1:PORT"
        api.requests                  # [{"method": "PATCH", "path": "/api/v1/nodes/h1", ...}, ...]
        api.fail(method="POST", path=r"/pods/.*/eviction", status=500, node="h2")
        api.set_controllers_ready(False)

From the command line (foreground; put it in the background with nohup/&)::

    python tests/standins/kubeapi.py serve --listen 10.89.0.1:8080 --log /tmp/k.jsonl --pidfile /tmp/k.pid

Admin endpoints (not logged): GET/DELETE /_standin/requests, POST/DELETE /_standin/fail,
POST /_standin/controllers {"ready": bool}, POST /_standin/reset, GET /_standin/objects.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import datetime
import ipaddress
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp.web
import jsonpatch
import kmock
import yaml

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]

# group, version, plural, kind, namespaced, short names, subresources
BUILTIN: list[tuple[str, str, str, str, bool, list[str], list[str]]] = [
    ("", "v1", "namespaces", "Namespace", False, ["ns"], ["status", "finalize"]),
    ("", "v1", "nodes", "Node", False, ["no"], ["status", "proxy"]),
    ("", "v1", "pods", "Pod", True, ["po"], ["status", "eviction", "log", "binding"]),
    ("", "v1", "services", "Service", True, ["svc"], ["status", "proxy"]),
    ("", "v1", "endpoints", "Endpoints", True, ["ep"], []),
    ("", "v1", "secrets", "Secret", True, [], []),
    ("", "v1", "configmaps", "ConfigMap", True, ["cm"], []),
    ("", "v1", "serviceaccounts", "ServiceAccount", True, ["sa"], ["token"]),
    ("", "v1", "events", "Event", True, ["ev"], []),
    ("", "v1", "persistentvolumes", "PersistentVolume", False, ["pv"], ["status"]),
    ("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", True, ["pvc"], ["status"]),
    ("", "v1", "limitranges", "LimitRange", True, ["limits"], []),
    ("", "v1", "resourcequotas", "ResourceQuota", True, ["quota"], ["status"]),
    ("", "v1", "replicationcontrollers", "ReplicationController", True, ["rc"], ["status", "scale"]),
    ("apps", "v1", "daemonsets", "DaemonSet", True, ["ds"], ["status"]),
    ("apps", "v1", "deployments", "Deployment", True, ["deploy"], ["status", "scale"]),
    ("apps", "v1", "statefulsets", "StatefulSet", True, ["sts"], ["status", "scale"]),
    ("apps", "v1", "replicasets", "ReplicaSet", True, ["rs"], ["status", "scale"]),
    ("apps", "v1", "controllerrevisions", "ControllerRevision", True, [], []),
    ("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", True, ["pdb"], ["status"]),
    (
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        False,
        ["crd", "crds"],
        ["status"],
    ),
    ("rbac.authorization.k8s.io", "v1", "roles", "Role", True, [], []),
    ("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding", True, [], []),
    ("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", False, [], []),
    ("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", False, [], []),
    ("storage.k8s.io", "v1", "storageclasses", "StorageClass", False, ["sc"], []),
    ("storage.k8s.io", "v1", "csidrivers", "CSIDriver", False, [], []),
    ("coordination.k8s.io", "v1", "leases", "Lease", True, [], []),
    ("batch", "v1", "jobs", "Job", True, [], ["status"]),
    ("batch", "v1", "cronjobs", "CronJob", True, ["cj"], ["status"]),
    ("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", True, ["netpol"], []),
    ("networking.k8s.io", "v1", "ingresses", "Ingress", True, ["ing"], ["status"]),
    ("networking.k8s.io", "v1", "ingressclasses", "IngressClass", False, [], []),
    ("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice", True, [], []),
    ("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", False, ["pc"], []),
    (
        "admissionregistration.k8s.io",
        "v1",
        "validatingwebhookconfigurations",
        "ValidatingWebhookConfiguration",
        False,
        [],
        [],
    ),
    (
        "admissionregistration.k8s.io",
        "v1",
        "mutatingwebhookconfigurations",
        "MutatingWebhookConfiguration",
        False,
        [],
        [],
    ),
    (
        "certificates.k8s.io",
        "v1",
        "certificatesigningrequests",
        "CertificateSigningRequest",
        False,
        ["csr"],
        ["status", "approval"],
    ),
    ("autoscaling", "v2", "horizontalpodautoscalers", "HorizontalPodAutoscaler", True, ["hpa"], ["status"]),
]

DEFAULT_NAMESPACES = ["default", "kube-system", "kube-public", "kube-node-lease"]

# Strategic merge patch approximation: lists under these keys are merged by the given key.
MERGE_KEYS = {
    "conditions": "type",
    "containers": "name",
    "initContainers": "name",
    "volumes": "name",
    "env": "name",
    "volumeMounts": "mountPath",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
}


class Res:
    """One served resource (built-in or from a CustomResourceDefinition)."""

    def __init__(
        self,
        group: str,
        version: str,
        plural: str,
        kind: str,
        namespaced: bool,
        short: list[str] | None = None,
        subresources: list[str] | None = None,
        singular: str = "",
        versions: list[str] | None = None,
    ) -> None:
        self.group, self.version, self.plural, self.kind = group, version, plural, kind
        self.namespaced = namespaced
        self.short = short or []
        self.subresources = subresources or []
        self.singular = singular or kind.lower()
        self.versions = versions or [version]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


def now_iso() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def json_merge(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge(result.get(key), value)
    return result


def strategic_merge(target: Any, patch: Any, key: str = "") -> Any:
    """Approximate strategic merge: JSON merge, plus lists in MERGE_KEYS merged by their key."""
    if isinstance(patch, dict):
        if patch.get("$patch") == "replace":
            return {k: v for k, v in patch.items() if k != "$patch"}
        if patch.get("$patch") == "delete":
            return None
        result = copy.deepcopy(target) if isinstance(target, dict) else {}
        for k, value in patch.items():
            if k.startswith("$"):
                continue
            if value is None:
                result.pop(k, None)
            else:
                result[k] = strategic_merge(result.get(k), value, k)
        return result
    if isinstance(patch, list) and key in MERGE_KEYS and isinstance(target, list):
        mkey = MERGE_KEYS[key]
        result_list = copy.deepcopy(target)
        for item in patch:
            if not isinstance(item, dict) or mkey not in item:
                result_list.append(copy.deepcopy(item))
                continue
            idx = next(
                (i for i, o in enumerate(result_list) if isinstance(o, dict) and o.get(mkey) == item[mkey]), None
            )
            if item.get("$patch") == "delete":
                if idx is not None:
                    result_list.pop(idx)
            elif idx is None:
                result_list.append({k: v for k, v in item.items() if not k.startswith("$")})
            else:
                result_list[idx] = strategic_merge(result_list[idx], item)
        return result_list
    return copy.deepcopy(patch)


def _split_terms(selector: str) -> list[str]:
    terms, depth, cur = [], 0, ""
    for ch in selector:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            terms.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        terms.append(cur.strip())
    return terms


def label_selector_matches(selector: str, labels: dict[str, str]) -> bool:
    """Label selector string (=, ==, !=, in, notin, exists, !exists)."""
    for term in _split_terms(selector or ""):
        m = re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", term)
        if m:
            values = {v.strip() for v in m.group(3).split(",")}
            present = m.group(1) in labels and labels[m.group(1)] in values
            if present != (m.group(2) == "in"):
                return False
            continue
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", term)
        if m:
            equal = labels.get(m.group(1)) == m.group(3).strip()
            if equal != (m.group(2) != "!="):
                return False
            continue
        if term.startswith("!"):
            if term[1:].strip() in labels:
                return False
        elif term not in labels:
            return False
    return True


def selector_object_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A LabelSelector object (matchLabels / matchExpressions). An empty selector matches everything."""
    selector = selector or {}
    for k, v in (selector.get("matchLabels") or {}).items():
        if labels.get(k) != v:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) or (op == "NotIn" and labels.get(key) in values):
            return False
        if (op == "Exists" and key not in labels) or (op == "DoesNotExist" and key in labels):
            return False
    return True


def _dig(obj: Any, dotted: str) -> str:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    if obj is None:
        return ""
    if isinstance(obj, bool):
        return str(obj).lower()
    return str(obj)


def field_selector_matches(selector: str, obj: dict[str, Any]) -> bool:
    for term in _split_terms(selector or ""):
        m = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(.*)", term)
        if not m:
            continue
        equal = _dig(obj, m.group(1)) == m.group(3).strip()
        if equal != (m.group(2) != "!="):
            return False
    return True


def _int_or_percent(value: Any, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = int(value[:-1]) * total / 100
        return int(-(-exact // 1)) if round_up else int(exact)
    return int(value)


def pod_healthy(pod: dict[str, Any]) -> bool:
    """Healthy = not terminating, phase Running (or no status at all) and no Ready=False condition."""
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return False
    status = pod.get("status") or {}
    if status.get("phase") not in (None, "Running"):
        return False
    return all(c.get("status") == "True" for c in status.get("conditions") or [] if c.get("type") == "Ready")


class StandinEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with resource semantics close enough to a real API server for smcp's tests."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self.store: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        self.log: list[dict[str, Any]] = []
        self.log_path: Path | None = None
        self.fail_rules: list[dict[str, Any]] = []
        self.controllers_ready = True
        self.server_version = "1.35.0"
        self.rv = 1
        self.cond: asyncio.Condition | None = None
        self.tasks: set[asyncio.Future[None]] = set()
        self.events: list[tuple[int, str, tuple[str, str, str, str], dict[str, Any]]] = []
        self.builtin = {(g, p): Res(g, v, p, k, n, s, sub) for g, v, p, k, n, s, sub in BUILTIN}
        for ns in DEFAULT_NAMESPACES:
            self._put(
                ("", "namespaces", "", ns),
                {
                    "apiVersion": "v1",
                    "kind": "Namespace",
                    "metadata": {"name": ns},
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                },
                "ADDED",
            )

    # ----- resources and discovery
    def resources(self) -> list[Res]:
        result = list(self.builtin.values())
        for (group, plural, _, _), crd in list(self.store.items()):
            if group == "apiextensions.k8s.io" and plural == "customresourcedefinitions":
                spec = crd.get("spec") or {}
                names = spec.get("names") or {}
                versions = [v["name"] for v in spec.get("versions") or [] if v.get("served", True)]
                if not versions or not names.get("plural"):
                    continue
                for version in versions:
                    subs = (
                        ["status"]
                        if any("status" in (v.get("subresources") or {}) for v in spec.get("versions") or [])
                        else []
                    )
                    result.append(
                        Res(
                            spec.get("group", ""),
                            version,
                            names["plural"],
                            names.get("kind", ""),
                            spec.get("scope", "Namespaced") == "Namespaced",
                            names.get("shortNames"),
                            subs,
                            names.get("singular", ""),
                            versions,
                        )
                    )
        return result

    def find(self, group: str, version: str, plural: str) -> Res | None:
        for res in self.resources():
            if res.group == group and res.plural == plural and version in res.versions:
                if res.version != version:
                    res = copy.copy(res)
                    res.version = version
                return res
        return None

    def discovery(self, path: str) -> dict[str, Any] | None:
        resources = self.resources()
        if path == "/version":
            major, minor, _ = self.server_version.split(".")
            return {
                "major": major,
                "minor": minor,
                "gitVersion": f"v{self.server_version}",
                "gitCommit": "standin",
                "gitTreeState": "clean",
                "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if path == "/api":
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
            }
        if path == "/apis":
            groups: dict[str, list[str]] = {}
            for res in resources:
                if res.group:
                    for v in res.versions:
                        if v not in groups.setdefault(res.group, []):
                            groups[res.group].append(v)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g, vs) for g, vs in groups.items()],
            }
        m = re.fullmatch(r"/apis/([^/]+)", path)
        if m:
            versions: list[str] = []
            for res in resources:
                if res.group == m.group(1):
                    versions += [v for v in res.versions if v not in versions]
            return dict(self._group(m.group(1), versions), kind="APIGroup", apiVersion="v1") if versions else None
        m = re.fullmatch(r"/api/(v1)|/apis/([^/]+)/([^/]+)", path)
        if m:
            group, version = ("", "v1") if m.group(1) else (m.group(2), m.group(3))
            listed = [r for r in resources if r.group == group and version in r.versions]
            if not listed:
                return None
            items = []
            for res in listed:
                items.append(
                    {
                        "name": res.plural,
                        "singularName": res.singular,
                        "namespaced": res.namespaced,
                        "kind": res.kind,
                        "verbs": VERBS,
                        "shortNames": res.short,
                    }
                )
                for sub in res.subresources:
                    items.append(
                        {
                            "name": f"{res.plural}/{sub}",
                            "singularName": "",
                            "namespaced": res.namespaced,
                            "kind": "Eviction" if sub == "eviction" else res.kind,
                            "verbs": ["create"] if sub == "eviction" else ["get", "patch", "update"],
                        }
                    )
            gv = f"{group}/{version}" if group else version
            return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": items}
        return None

    @staticmethod
    def _group(name: str, versions: list[str]) -> dict[str, Any]:
        gvs = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
        return {"name": name, "versions": gvs, "preferredVersion": gvs[0]}

    # ----- storage
    def _put(
        self, key: tuple[str, str, str, str], obj: dict[str, Any] | None, event: str, old: dict[str, Any] | None = None
    ) -> None:
        self.rv += 1
        if obj is None:
            self.store.pop(key, None)
            gone = copy.deepcopy(old or {})
            gone.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            self.events.append((self.rv, "DELETED", key, gone))
        else:
            obj.setdefault("metadata", {})["resourceVersion"] = str(self.rv)
            self.store[key] = obj
            self.events.append((self.rv, event, key, copy.deepcopy(obj)))
        del self.events[:-2000]
        if self.cond is not None:
            cond = self.cond

            async def _notify() -> None:
                async with cond:
                    cond.notify_all()

            task = asyncio.ensure_future(_notify())
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)

    def nodes(self) -> list[dict[str, Any]]:
        return [o for (g, p, _, _), o in self.store.items() if g == "" and p == "nodes"]

    def objects(self, group: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        return [
            o
            for (g, p, ns, _), o in self.store.items()
            if g == group and p == plural and (namespace is None or ns == namespace)
        ]

    def render(self, res: Res, obj: dict[str, Any]) -> dict[str, Any]:
        """An object as served: apiVersion of the request, simulated controller status."""
        out = copy.deepcopy(obj)
        out["apiVersion"], out["kind"] = res.api_version, res.kind
        spec = out.get("spec") or {}
        generation = out.get("metadata", {}).get("generation", 1)
        if res.group == "apps" and res.plural in ("daemonsets", "deployments", "statefulsets", "replicasets"):
            ready = self.controllers_ready
            if res.plural == "daemonsets":
                desired = sum(
                    1
                    for n in self.nodes()
                    if selector_object_matches(
                        {"matchLabels": (spec.get("template") or {}).get("spec", {}).get("nodeSelector") or {}},
                        n.get("metadata", {}).get("labels") or {},
                    )
                )
                num = desired if ready else 0
                out["status"] = {
                    "desiredNumberScheduled": desired,
                    "currentNumberScheduled": desired,
                    "numberMisscheduled": 0,
                    "numberReady": num,
                    "numberAvailable": num,
                    "updatedNumberScheduled": desired,
                    "observedGeneration": generation,
                }
                if not ready:
                    out["status"]["numberUnavailable"] = desired
            else:
                replicas = spec.get("replicas", 1)
                num = replicas if ready else 0
                out["status"] = {
                    "replicas": replicas,
                    "updatedReplicas": replicas,
                    "readyReplicas": num,
                    "availableReplicas": num,
                    "currentReplicas": replicas,
                    "observedGeneration": generation,
                }
                if res.plural == "deployments":
                    out["status"]["conditions"] = [
                        {"type": "Available", "status": "True" if ready else "False", "reason": "Standin"},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
                    ]
                    if not ready:
                        out["status"]["unavailableReplicas"] = replicas
        elif res.plural == "customresourcedefinitions":
            names = spec.get("names") or {}
            out["status"] = {
                "acceptedNames": names,
                "storedVersions": [v["name"] for v in spec.get("versions") or [] if v.get("storage")],
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted"},
                ],
            }
        elif res.plural == "poddisruptionbudgets":
            out["status"] = dict(out.get("status") or {}, **self.pdb_status(obj), observedGeneration=generation)
        return out

    # ----- PodDisruptionBudgets
    def pdb_status(self, pdb: dict[str, Any]) -> dict[str, int]:
        ns = pdb["metadata"].get("namespace", "")
        spec = pdb.get("spec") or {}
        pods = [
            p
            for p in self.objects("", "pods", ns)
            if selector_object_matches(spec.get("selector"), p.get("metadata", {}).get("labels") or {})
        ]
        expected = len(pods)
        healthy = sum(1 for p in pods if pod_healthy(p))
        if "minAvailable" in spec:
            desired = _int_or_percent(spec["minAvailable"], expected, round_up=True)
        elif "maxUnavailable" in spec:
            desired = expected - _int_or_percent(spec["maxUnavailable"], expected, round_up=True)
        else:
            desired = 0
        return {
            "currentHealthy": healthy,
            "desiredHealthy": max(desired, 0),
            "expectedPods": expected,
            "disruptionsAllowed": max(healthy - desired, 0),
        }

    def eviction_blocked_by(self, pod: dict[str, Any]) -> str | None:
        if not pod_healthy(pod):
            return None
        ns = pod["metadata"].get("namespace", "")
        labels = pod.get("metadata", {}).get("labels") or {}
        for pdb in self.objects("policy", "poddisruptionbudgets", ns):
            if selector_object_matches((pdb.get("spec") or {}).get("selector"), labels):
                if self.pdb_status(pdb)["disruptionsAllowed"] < 1:
                    return pdb["metadata"]["name"]
        return None


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success" if code < 400 else "Failure",
            "message": message,
            "reason": reason,
            "details": details or {},
            "code": code,
        },
        status=code,
    )


def parse_path(path: str) -> tuple[str, str, str, str, str | None, str | None] | None:
    """(group, version, plural, namespace, name, subresource) of a resource URL, else None.

    kmock 0.8's parser fails on /api/v1/namespaces and reads /api/v1/namespaces/NAME as a namespace.
    """
    parts = [p for p in path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return None
    ns = ""
    if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] not in ("status", "finalize"):
        ns, rest = rest[1], rest[2:]
    name = rest[1] if len(rest) > 1 else None
    sub = "/".join(rest[2:]) or None
    return group, version, rest[0], ns, name, sub


class Handler(StandinEmulator):
    """Request handling (kept apart from the state above to keep both readable)."""

    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw_request.read()
        text = body.decode("utf-8", "replace")
        try:
            data = json.loads(text) if text else None
        except ValueError:
            data = None
        parsed = parse_path(raw_request.path)
        request = kmock.Request(
            id=len(self._requests),
            raw_request=raw_request,
            url=raw_request.url,
            method=raw_request.method,
            params=dict(raw_request.query),
            headers=dict(raw_request.headers),
            body=body,
            text=text,
            data=data,
            resource=kmock.resource(group=parsed[0], version=parsed[1], plural=parsed[2]) if parsed else None,
            namespace=(parsed[3] or None) if parsed else None,
            name=parsed[4] if parsed else None,
            subresource=parsed[5] if parsed else None,
        )
        self._requests.append(request)
        try:
            return await self._handle(request)
        except Exception as exc:  # a bug here must reach the client as a Status, not a dropped connection
            return status(500, "InternalError", f"kubeapi stand-in error: {exc!r}")

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        path = request.url.path
        if path.startswith("/_standin/"):
            return await self._admin(request, path)
        entry = {
            "ts": time.time(),
            "method": str(request.method.value).upper(),
            "path": path,
            "query": dict(request.params),
            "body": request.data if request.data is not None else (request.text or None),
            "via": request.headers.get("X-Smcp-Standin-Via"),
        }
        if request.subresource == "eviction":  # which node the evicted pod ran on, for drain-order assertions
            pod = self.store.get(("", "pods", request.namespace or "", request.name or "")) or {}
            entry["node"] = (pod.get("spec") or {}).get("nodeName")
        response = await self._answer(request, path)
        entry["status"] = response.status
        self.log.append(entry)
        if self.log_path is not None:
            with self.log_path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(entry, default=str) + "\n")
        return response

    # ----- admin
    async def _admin(self, request: kmock.Request, path: str) -> aiohttp.web.StreamResponse:
        method = str(request.method.value).upper()
        body = request.data if isinstance(request.data, dict) else {}
        if path == "/_standin/requests":
            if method == "DELETE":
                self.log.clear()
            return aiohttp.web.json_response(self.log)
        if path == "/_standin/fail":
            if method == "DELETE":
                self.fail_rules.clear()
            elif method == "POST":
                self.fail_rules.append(dict(body))
            return aiohttp.web.json_response(self.fail_rules)
        if path == "/_standin/controllers" and method == "POST":
            self.controllers_ready = bool(body.get("ready", True))
            return aiohttp.web.json_response({"ready": self.controllers_ready})
        if path == "/_standin/reset" and method == "POST":
            self.store.clear()
            for ns in DEFAULT_NAMESPACES:
                self._put(
                    ("", "namespaces", "", ns),
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}, "status": {"phase": "Active"}},
                    "ADDED",
                )
            self.log.clear()
            self.fail_rules.clear()
            self.controllers_ready = True
            return aiohttp.web.json_response({"reset": True})
        if path == "/_standin/objects":
            return aiohttp.web.json_response([{"key": list(k), "object": v} for k, v in self.store.items()])
        return status(404, "NotFound", f"unknown admin endpoint {method} {path}")

    def _injected_failure(self, request: kmock.Request, path: str) -> aiohttp.web.Response | None:
        method = str(request.method.value).upper()
        for rule in self.fail_rules:
            if rule.get("method") and rule["method"].upper() != method:
                continue
            if rule.get("path") and not re.search(rule["path"], path):
                continue
            if rule.get("node"):
                if request.subresource != "eviction" or request.resource is None:
                    continue
                pod = self.store.get(("", "pods", request.namespace or "", request.name or ""))
                if pod is None or (pod.get("spec") or {}).get("nodeName") != rule["node"]:
                    continue
            if rule.get("count") is not None:
                if rule["count"] <= 0:
                    continue
                rule["count"] -= 1
            code = int(rule.get("status", 500))
            return status(
                code,
                rule.get("reason", "InjectedFailure"),
                rule.get("message", f"injected failure for {method} {path}"),
            )
        return None

    # ----- Kubernetes API
    async def _answer(self, request: kmock.Request, path: str) -> aiohttp.web.StreamResponse:
        failure = self._injected_failure(request, path)
        if failure is not None:
            return failure
        method = str(request.method.value).upper()
        bare = path.rstrip("/")
        if method == "GET" and re.fullmatch(r"/version|/apis?|/api/[^/]+|/apis/[^/]+(/[^/]+)?", bare):
            found = self.discovery(bare)
            if found is None:
                return status(404, "NotFound", f"the server could not find the requested resource ({path})")
            return aiohttp.web.json_response(found)
        if path in ("/healthz", "/readyz", "/livez"):
            return aiohttp.web.Response(text="ok")
        if path == "/":
            return aiohttp.web.json_response({"paths": ["/api", "/api/v1", "/apis", "/version", "/healthz"]})
        if request.resource is None or not request.resource.plural:
            return status(404, "NotFound", f"the server could not find the requested resource ({path})")
        group, version, plural = request.resource.group or "", request.resource.version or "", request.resource.plural
        res = self.find(group, version, plural)
        if res is None:
            return status(404, "NotFound", f"the server could not find the requested resource ({path})")
        ns, name, sub = request.namespace or "", request.name, request.subresource
        if res.namespaced and not ns and method in ("POST", "PUT", "PATCH") and name is None:
            body = self._body(request)
            ns = ((body or {}).get("metadata") or {}).get("namespace", "") if isinstance(body, dict) else ""
        if res.namespaced and ns and ("", "namespaces", "", ns) not in self.store and method != "GET":
            return status(404, "NotFound", f'namespaces "{ns}" not found', {"name": ns, "kind": "namespaces"})
        if name is None:
            if method == "GET":
                if request.params.get("watch") in ("true", "1"):
                    return await self._watch(request, res, ns)
                return self._list(request, res, ns)
            if method == "POST":
                return self._create(request, res, ns)
            if method == "DELETE":
                return self._delete_collection(request, res, ns)
            return status(405, "MethodNotAllowed", f"{method} is not supported on a collection")
        key = (group, plural, ns if res.namespaced else "", name)
        if sub == "eviction" and method == "POST":
            return self._evict(res, key)
        if sub not in (None, "status", "scale"):
            return status(404, "NotFound", f"subresource {sub} is not served by the stand-in")
        if method == "GET":
            if request.params.get("watch") in ("true", "1"):
                return await self._watch(request, res, ns, name)
            obj = self.store.get(key)
            if obj is None:
                return self._not_found(res, name)
            if sub == "scale":
                return aiohttp.web.json_response(self._scale(res, obj))
            return aiohttp.web.json_response(self.render(res, obj))
        if method == "PUT":
            return self._replace(request, res, key, sub)
        if method == "PATCH":
            return self._patch(request, res, key, sub)
        if method == "DELETE":
            return self._delete(res, key)
        return status(405, "MethodNotAllowed", f"{method} is not supported")

    @staticmethod
    def _body(request: kmock.Request) -> Any:
        if request.data is not None:
            return request.data
        if request.text.strip():
            try:
                return yaml.safe_load(request.text)
            except yaml.YAMLError:
                return None
        return None

    @staticmethod
    def _not_found(res: Res, name: str) -> aiohttp.web.Response:
        return status(
            404,
            "NotFound",
            f'{res.plural}{"." + res.group if res.group else ""} "{name}" not found',
            {"name": name, "group": res.group, "kind": res.plural},
        )

    def _scale(self, res: Res, obj: dict[str, Any]) -> dict[str, Any]:
        replicas = (obj.get("spec") or {}).get("replicas", 1)
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {k: obj["metadata"].get(k) for k in ("name", "namespace", "uid", "resourceVersion")},
            "spec": {"replicas": replicas},
            "status": {"replicas": replicas},
        }

    def _list(self, request: kmock.Request, res: Res, ns: str) -> aiohttp.web.Response:
        items = []
        for (g, p, ons, _), obj in sorted(self.store.items()):
            if g != res.group or p != res.plural or (ns and ons != ns):
                continue
            if not label_selector_matches(
                request.params.get("labelSelector", ""), obj.get("metadata", {}).get("labels") or {}
            ):
                continue
            rendered = self.render(res, obj)
            if not field_selector_matches(request.params.get("fieldSelector", ""), rendered):
                continue
            items.append(rendered)
        return aiohttp.web.json_response(
            {
                "kind": f"{res.kind}List",
                "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self.rv)},
                "items": items,
            }
        )

    async def _watch(
        self, request: kmock.Request, res: Res, ns: str, name: str | None = None
    ) -> aiohttp.web.StreamResponse:
        if self.cond is None:
            self.cond = asyncio.Condition()
        raw = request._raw_request
        assert raw is not None
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        timeout = min(float(request.params.get("timeoutSeconds", 30)), 300.0)
        deadline = time.monotonic() + timeout
        labels = request.params.get("labelSelector", "")
        fields = request.params.get("fieldSelector", "")
        rv_param = request.params.get("resourceVersion", "")
        since = int(rv_param) if rv_param.isdigit() and int(rv_param) > 0 else None

        def wanted(key: tuple[str, str, str, str], obj: dict[str, Any]) -> bool:
            return (
                key[0] == res.group
                and key[1] == res.plural
                and (not ns or key[2] == ns)
                and (name is None or key[3] == name)
                and label_selector_matches(labels, obj.get("metadata", {}).get("labels") or {})
                and field_selector_matches(fields, obj)
            )

        if since is None:
            for key, obj in sorted(self.store.items()):
                if wanted(key, obj):
                    await response.write(
                        json.dumps({"type": "ADDED", "object": self.render(res, obj)}).encode() + b"\n"
                    )
            since = self.rv
        while time.monotonic() < deadline:
            for rv, kind, key, obj in list(self.events):
                if rv > since and wanted(key, obj):
                    await response.write(json.dumps({"type": kind, "object": self.render(res, obj)}).encode() + b"\n")
            since = max(since, self.rv)
            with contextlib.suppress(TimeoutError):
                async with self.cond:
                    await asyncio.wait_for(self.cond.wait(), timeout=max(0.05, min(1.0, deadline - time.monotonic())))
        await response.write_eof()
        return response

    def _prepare_new(self, res: Res, ns: str, obj: dict[str, Any]) -> dict[str, Any] | aiohttp.web.Response:
        meta = obj.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        if not meta.get("name"):
            return status(
                422,
                "Invalid",
                f"{res.kind}: metadata.name: Required value: name or generateName is required",
                {"kind": res.kind},
            )
        if res.namespaced:
            if meta.get("namespace") and ns and meta["namespace"] != ns:
                return status(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = ns or meta.get("namespace") or "default"
        else:
            meta.pop("namespace", None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_iso()
        meta["generation"] = 1
        meta.pop("resourceVersion", None)
        obj["apiVersion"], obj["kind"] = res.api_version, res.kind
        if res.plural in ("nodes", "namespaces", "pods", "services", "persistentvolumeclaims"):
            obj.setdefault("spec", {})  # a real API server always defaults these
        if res.plural == "nodes":
            obj.setdefault("status", {})
        if res.plural == "namespaces":
            obj.setdefault("status", {"phase": "Active"})
        if res.plural == "pods":
            obj.setdefault("status", {"phase": "Pending"})
        if res.plural == "secrets" and "stringData" in obj:
            import base64

            data = obj.setdefault("data", {})
            for k, v in obj.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        return obj

    def _create(self, request: kmock.Request, res: Res, ns: str) -> aiohttp.web.Response:
        body = self._body(request)
        if not isinstance(body, dict):
            return status(400, "BadRequest", "the request body is not a JSON object")
        obj = self._prepare_new(res, ns, copy.deepcopy(body))
        if isinstance(obj, aiohttp.web.Response):
            return obj
        key = (res.group, res.plural, obj["metadata"].get("namespace", ""), obj["metadata"]["name"])
        if key in self.store:
            return status(
                409,
                "AlreadyExists",
                f'{res.plural}{"." + res.group if res.group else ""} "{key[3]}" already exists',
                {"name": key[3], "group": res.group, "kind": res.plural},
            )
        if res.plural == "nodes":
            self.allocate_pod_cidr(obj)
        if "dryRun" not in request.params:
            self._put(key, obj, "ADDED")
        return aiohttp.web.json_response(self.render(res, obj), status=201)

    def allocate_pod_cidr(self, node: dict[str, Any]) -> None:
        """kube-controller-manager's node IPAM (--allocate-node-cidrs): a free /24 of the cluster's podSubnet.

        The podSubnet comes from kube-system/kubeadm-config (written by kubeadm init), as kubeadm passes it on.
        """
        spec = node.setdefault("spec", {})
        cm = self.store.get(("", "configmaps", "kube-system", "kubeadm-config"))
        if spec.get("podCIDR") or not cm:
            return
        try:
            cluster = yaml.safe_load((cm.get("data") or {}).get("ClusterConfiguration", "")) or {}
            subnet = ipaddress.ip_network(str((cluster.get("networking") or {}).get("podSubnet", "")).split(",")[0])
        except (ValueError, yaml.YAMLError):
            return
        if subnet.version != 4 or subnet.prefixlen > 24:
            return
        used = {(n.get("spec") or {}).get("podCIDR") for n in self.nodes()}
        for candidate in subnet.subnets(new_prefix=24):
            if str(candidate) not in used:
                spec["podCIDR"], spec["podCIDRs"] = str(candidate), [str(candidate)]
                return

    def _store_update(
        self,
        res: Res,
        key: tuple[str, str, str, str],
        old: dict[str, Any],
        new: dict[str, Any],
        sub: str | None,
        dry_run: bool,
    ) -> aiohttp.web.Response:
        if sub == "status":
            merged = copy.deepcopy(old)
            merged["status"] = new.get("status")
            new = merged
        elif sub == "scale":
            merged = copy.deepcopy(old)
            merged.setdefault("spec", {})["replicas"] = (new.get("spec") or {}).get("replicas", 1)
            new = merged
        if res.plural == "nodes":
            self.allocate_pod_cidr(new)  # a Node registered before kubeadm-config existed gets one now
        meta = new.setdefault("metadata", {})
        for field in ("uid", "creationTimestamp", "name"):
            if field in old.get("metadata", {}):
                meta[field] = old["metadata"][field]
        if res.namespaced:
            meta["namespace"] = old["metadata"].get("namespace")
        new["apiVersion"], new["kind"] = res.api_version, res.kind
        if res.plural == "secrets" and "stringData" in new:
            import base64

            data = new.setdefault("data", {})
            for k, v in new.pop("stringData").items():
                data[k] = base64.b64encode(str(v).encode()).decode()
        changed_spec = {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
            k: v for k, v in old.items() if k not in ("metadata", "status")
        }
        meta["generation"] = old.get("metadata", {}).get("generation", 1) + (1 if changed_spec else 0)
        meta["resourceVersion"] = old["metadata"].get("resourceVersion")
        if new == old:
            return aiohttp.web.json_response(self._scale(res, new) if sub == "scale" else self.render(res, new))
        if not dry_run:
            if meta.get("deletionTimestamp") and not meta.get("finalizers"):
                self._put(key, None, "DELETED", old=new)
            else:
                self._put(key, new, "MODIFIED")
        return aiohttp.web.json_response(self._scale(res, new) if sub == "scale" else self.render(res, new))

    def _replace(
        self, request: kmock.Request, res: Res, key: tuple[str, str, str, str], sub: str | None
    ) -> aiohttp.web.Response:
        body = self._body(request)
        if not isinstance(body, dict):
            return status(400, "BadRequest", "the request body is not a JSON object")
        old = self.store.get(key)
        if old is None:
            return self._not_found(res, key[3])
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        if sent_rv and sent_rv != old["metadata"].get("resourceVersion"):
            return status(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res.plural} "{key[3]}": the object has '
                "been modified; please apply your changes to the latest version and try "
                "again",
                {"name": key[3], "kind": res.plural},
            )
        new = copy.deepcopy(body)
        if sub is None and "status" not in new and "status" in old:
            new["status"] = old["status"]
        return self._store_update(res, key, old, new, sub, "dryRun" in request.params)

    def _patch(
        self, request: kmock.Request, res: Res, key: tuple[str, str, str, str], sub: str | None
    ) -> aiohttp.web.Response:
        ctype = (request.headers.get("Content-Type") or "").split(";")[0].strip()
        body = self._body(request)
        old = self.store.get(key)
        if old is None:
            if ctype == "application/apply-patch+yaml" and isinstance(body, dict):
                obj = self._prepare_new(res, key[2], copy.deepcopy(body))
                if isinstance(obj, aiohttp.web.Response):
                    return obj
                if "dryRun" not in request.params:
                    self._put(key, obj, "ADDED")
                return aiohttp.web.json_response(self.render(res, obj), status=201)
            return self._not_found(res, key[3])
        base = self._scale(res, old) if sub == "scale" else old
        try:
            if isinstance(body, list) or ctype == "application/json-patch+json":
                new = jsonpatch.apply_patch(base, body or [])
            elif ctype == "application/strategic-merge-patch+json":
                new = strategic_merge(base, body)
            else:  # merge-patch+json, apply-patch+yaml (approximated as a merge)
                new = json_merge(base, body)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            return status(422, "Invalid", f"json patch failed: {exc}")
        if not isinstance(new, dict):
            return status(400, "BadRequest", "the patch does not produce an object")
        return self._store_update(res, key, old, new, sub, "dryRun" in request.params)

    def _delete(self, res: Res, key: tuple[str, str, str, str]) -> aiohttp.web.Response:
        old = self.store.get(key)
        if old is None:
            return self._not_found(res, key[3])
        if old.get("metadata", {}).get("finalizers") and res.plural != "namespaces":
            new = copy.deepcopy(old)
            new["metadata"].setdefault("deletionTimestamp", now_iso())
            self._put(key, new, "MODIFIED")
            return aiohttp.web.json_response(self.render(res, new))
        self._put(key, None, "DELETED", old=old)
        if res.plural == "namespaces":
            for other in [k for k in self.store if k[2] == key[3] and k[1] != "namespaces"]:
                self._put(other, None, "DELETED", old=self.store[other])
        return status(
            200,
            "",
            "",
            {"name": key[3], "group": res.group, "kind": res.plural, "uid": old.get("metadata", {}).get("uid")},
        )

    def _delete_collection(self, request: kmock.Request, res: Res, ns: str) -> aiohttp.web.Response:
        for key, obj in list(self.store.items()):
            if (
                key[0] == res.group
                and key[1] == res.plural
                and (not ns or key[2] == ns)
                and label_selector_matches(
                    request.params.get("labelSelector", ""), obj.get("metadata", {}).get("labels") or {}
                )
            ):
                self._put(key, None, "DELETED", old=obj)
        return status(200, "", "")

    def _evict(self, res: Res, key: tuple[str, str, str, str]) -> aiohttp.web.Response:
        pod = self.store.get(key)
        if pod is None:
            return self._not_found(res, key[3])
        blocker = self.eviction_blocked_by(pod)
        if blocker:
            return status(
                429,
                "TooManyRequests",
                "Cannot evict pod as it would violate the pod's disruption budget.",
                {
                    "causes": [
                        {
                            "reason": "DisruptionBudget",
                            "message": f"The disruption budget {blocker} needs more healthy pods",
                        }
                    ]
                },
            )
        self._put(key, None, "DELETED", old=pod)
        return status(201, "", "", {"name": key[3], "kind": "pods"})


def load_log(path: str | Path) -> list[dict[str, Any]]:
    """The entries of a --log JSONL file (same shape as KubeAPI.requests)."""
    return [json.loads(line) for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]


def cordon_timeline(entries: list[dict[str, Any]]) -> list[tuple[float, str, bool]]:
    """(ts, node, unschedulable) for every successful write of spec.unschedulable in a request log.

    Understands merge/strategic patches, JSON patches and PUTs of /api/v1/nodes/NAME.
    """
    timeline = []
    for entry in entries:
        m = re.fullmatch(r"/api/v1/nodes/([^/]+)", entry.get("path", ""))
        if not m or entry.get("method") not in ("PATCH", "PUT") or int(entry.get("status", 500)) >= 300:
            continue
        body = entry.get("body")
        spec = (body.get("spec") or {}) if isinstance(body, dict) else {}
        if isinstance(body, dict) and ("unschedulable" in spec or entry["method"] == "PUT"):
            timeline.append((entry["ts"], m.group(1), bool(spec.get("unschedulable"))))  # null removes it
        elif isinstance(body, list):
            for op in body:
                if isinstance(op, dict) and op.get("path") == "/spec/unschedulable":
                    value = bool(op.get("value")) if op.get("op") in ("add", "replace") else False
                    timeline.append((entry["ts"], m.group(1), value))
    return timeline


def max_cordoned(entries: list[dict[str, Any]]) -> int:
    """The most nodes cordoned at the same time according to a request log."""
    cordoned: set[str] = set()
    most = 0
    for _, node, unschedulable in cordon_timeline(entries):
        if unschedulable:
            cordoned.add(node)
        else:
            cordoned.discard(node)
        most = max(most, len(cordoned))
    return most


class KubeAPI:
    """The test server in a background thread (for pytest): ``with KubeAPI() as api: api.url``."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        log: str | Path | None = None,
        version: str = "1.35.0",
        controllers_ready: bool = True,
        fail_eviction_for: list[str] | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.handler = Handler()
        self.handler.log_path = Path(log) if log else None
        self.handler.server_version = version
        self.handler.controllers_ready = controllers_ready
        for node in fail_eviction_for or []:
            self.fail(method="POST", path=r"/eviction$", node=node, status=500)
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        return list(self.handler.log)

    @property
    def store(self) -> dict[tuple[str, str, str, str], dict[str, Any]]:
        return self.handler.store

    def fail(self, **rule: Any) -> None:
        """Inject a failure: method, path (regex), node (evictions of pods on it), status, count, message."""
        self.handler.fail_rules.append(rule)

    def clear_failures(self) -> None:
        self.handler.fail_rules.clear()

    def set_controllers_ready(self, ready: bool) -> None:
        self.handler.controllers_ready = ready

    def kubeconfig(self, path: str | Path) -> Path:
        """Write a kubeconfig pointing at this server (no credentials: the stand-in accepts anyone)."""
        path = Path(path)
        path.write_text(kubeconfig_text(self.url), encoding="utf-8")
        path.chmod(0o600)
        return path

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        self.handler.cond = asyncio.Condition()
        async with self.handler, kmock.Server(self.handler, host=self.host, port=self.port or None) as server:
            self.port = server.port
            self._started.set()
            await self._stop.wait()

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._started.set()
        finally:
            self._loop.close()

    def start(self) -> KubeAPI:
        self._thread = threading.Thread(target=self._run, name="kubeapi-standin", daemon=True)
        self._thread.start()
        self._started.wait(30)
        if self._error is not None:
            raise RuntimeError(f"kubeapi stand-in failed to start on {self.host}:{self.port}: {self._error}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(30)

    def __enter__(self) -> KubeAPI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kubeconfig_text(server: str, name: str = "standin") -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": name,
            "clusters": [{"name": name, "cluster": {"server": server}}],
            "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
            "users": [{"name": name, "user": {"token": "standin"}}],
        },
        sort_keys=False,
    )


@contextlib.contextmanager
def running(**kwargs: Any) -> Iterator[KubeAPI]:
    api = KubeAPI(**kwargs)
    with api:
        yield api


def _serve_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (port 0 = any free port)")
    parser.add_argument("--log", help="append every request as one JSON line to this file")
    parser.add_argument("--pidfile", help="write the process id here (removed on exit)")
    parser.add_argument("--version", default="1.35.0", help="version served on /version (default 1.35.0)")
    parser.add_argument(
        "--fail-eviction-for",
        action="append",
        default=[],
        metavar="NODE",
        help="answer 500 to evictions of pods on NODE (repeatable)",
    )
    parser.add_argument(
        "--no-ready-simulation", action="store_true", help="DaemonSets/Deployments never report ready replicas"
    )


def _start(args: argparse.Namespace) -> int:
    """Run `serve` detached, wait until it answers, print {"url", "pid"}."""
    host, _, port = args.listen.rpartition(":")
    host = host or "127.0.0.1"
    if int(port) == 0:
        import socket

        with socket.socket() as sock:
            sock.bind((host, 0))
            port = str(sock.getsockname()[1])
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "serve",
        "--listen",
        f"{host}:{port}",
        "--pidfile",
        args.pidfile,
        "--version",
        args.version,
    ]
    if args.log:
        cmd += ["--log", args.log]
    for node in args.fail_eviction_for:
        cmd += ["--fail-eviction-for", node]
    if args.no_ready_simulation:
        cmd.append("--no-ready-simulation")
    with open(args.pidfile + ".out", "ab") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
    url = f"http://{host}:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print(f"kubeapi stand-in exited with {proc.returncode}: see {args.pidfile}.out", file=sys.stderr)
            return 1
        try:
            with urllib.request.urlopen(url + "/version", timeout=2):
                if Path(args.pidfile).exists():
                    print(json.dumps({"url": url, "pid": proc.pid}))
                    return 0
        except OSError:
            pass
        time.sleep(0.2)
    proc.terminate()
    print(f"kubeapi stand-in did not answer on {url} within 30s", file=sys.stderr)
    return 1


def _stop(pidfile: str) -> int:
    try:
        pid = int(Path(pidfile).read_text(encoding="utf-8").strip())
    except (FileNotFoundError, ValueError):
        print(f"no kubeapi stand-in pid in {pidfile}: nothing to stop")
        return 0
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.1)
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        Path(pidfile).unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubeapi.py", description="Kubernetes API test server (tests only)")
    sub = parser.add_subparsers(dest="command", required=True)
    _serve_options(sub.add_parser("serve", help="run in the foreground until SIGTERM/SIGINT"))
    start = sub.add_parser("start", help="run `serve` in the background; prints {url, pid} once it answers")
    _serve_options(start)
    start.set_defaults(pidfile=None)
    stop = sub.add_parser("stop", help="stop the server started with --pidfile")
    stop.add_argument("--pidfile", required=True)
    args = parser.parse_args(argv)
    if args.command == "stop":
        return _stop(args.pidfile)
    if args.command == "start":
        if not args.pidfile:
            parser.error("start needs --pidfile (stop uses it)")
        return _start(args)
    host, _, port = args.listen.rpartition(":")
    api = KubeAPI(
        host=host or "127.0.0.1",
        port=int(port),
        log=args.log,
        version=args.version,
        controllers_ready=not args.no_ready_simulation,
        fail_eviction_for=args.fail_eviction_for,
    )
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    api.start()
    if args.pidfile:
        Path(args.pidfile).write_text(f"{os.getpid()}\n", encoding="utf-8")
    print(f"kubeapi stand-in listening on {api.url}", flush=True)
    try:
        while not done.wait(1):
            if api._thread is not None and not api._thread.is_alive():
                return 1
    finally:
        api.stop()
        if args.pidfile:
            with contextlib.suppress(FileNotFoundError):
                Path(args.pidfile).unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
