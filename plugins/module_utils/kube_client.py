# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""A small JSON client for the Kubernetes API from a kubeconfig, built on the pinned ``kubernetes`` client.

The ``kubernetes`` package loads the kubeconfig (TLS client certificates, CA, bearer tokens) and
does the HTTP; this module only builds paths and decodes JSON, so the modules' logic works on plain
dicts and is unit-tested against any object with the same ``request`` method.
Also: the kubeadm discovery hash of the cluster CA (``sha256:<hex of the CA's SubjectPublicKeyInfo>``).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any, Callable
from urllib.parse import quote, urlencode

try:
    from kubernetes import config as kube_config
    from kubernetes.client.exceptions import ApiException

except ImportError as exc:  # pragma: no cover - reported by the modules
    KUBERNETES_IMPORT_ERROR: ImportError | None = exc
else:
    KUBERNETES_IMPORT_ERROR = None

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
except ImportError as exc:  # pragma: no cover - reported by the modules
    CRYPTOGRAPHY_IMPORT_ERROR: ImportError | None = exc
else:
    CRYPTOGRAPHY_IMPORT_ERROR = None


class KubeError(Exception):
    """A Kubernetes API call failed.

    ``status`` is the HTTP status, 0 when the API server did not answer, None when no call was
    made (an unreadable kubeconfig, a missing library, a bad CA certificate).
    """

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class KubeClient:
    """The one transport to the Kubernetes API, built on the pinned ``kubernetes`` client.

    ``call()`` returns ``(status, data)`` for any answer (the applier looks at 404/409 itself);
    ``request()`` returns the decoded body and raises :class:`KubeError` for a status >= 400.
    With ``check_mode`` a write without ``dryRun`` is refused before it is sent, so a module that
    forgot to honour check mode fails instead of changing the cluster.
    """

    def __init__(
        self, kubeconfig: str, context: str | None = None, timeout: float = 10, check_mode: bool = False
    ) -> None:
        if KUBERNETES_IMPORT_ERROR is not None:
            raise KubeError(f"the Python library 'kubernetes' is missing on the controller: {KUBERNETES_IMPORT_ERROR}")
        try:
            self.api = kube_config.new_client_from_config(config_file=kubeconfig, context=context)
        except Exception as exc:  # the loader raises ConfigException, OSError, yaml errors
            raise KubeError(f"cannot load kubeconfig {kubeconfig}: {exc}") from exc
        self.host = self.api.configuration.host.rstrip("/")
        self.timeout = timeout
        self.check_mode = check_mode

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str | None = None,
        query: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        """One HTTP call; ``(status, decoded body)``. Raises KubeError (status 0) when nobody answered."""
        if self.check_mode and method.upper() not in ("GET", "HEAD") and "dryRun" not in (query or {}):
            raise KubeError(f"check mode: {method} {path} would change the cluster and was not sent")
        url = self.host + path + (("?" + urlencode(query)) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type or "application/json"}
        for auth in self.api.configuration.auth_settings().values():
            headers[auth["key"]] = auth["value"]
        try:
            response = self.api.call_api(method, url, header_params=headers, body=body, _request_timeout=self.timeout)
            raw, status = response.read(), response.status
        except ApiException as exc:
            if not exc.status:  # connection and TLS errors
                raise KubeError(
                    f"{method} {path} failed: the API server at {self.host} did not answer: {exc.reason}", 0
                ) from exc
            raw, status = exc.body, exc.status
        except Exception as exc:  # urllib3 connection and TLS errors
            raise KubeError(f"{method} {path} failed: the API server at {self.host} did not answer: {exc}", 0) from exc
        if not raw:
            return status, {}
        try:
            data = json.loads(raw)
        except ValueError:
            data = {"raw": raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)}
        return status, data if isinstance(data, dict) else {"items": data}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        status, data = self.call(method, path, body, content_type, query)
        if status >= 400:
            raise KubeError(f"{method} {path}: HTTP {status}: {message_of(data)}", status)
        return data


def message_of(data: dict[str, Any]) -> str:
    """The API server's message from a Status body with its causes (or the start of whatever it sent)."""
    text = str(data.get("message") or data.get("reason") or data.get("raw") or json.dumps(data))[:300]
    causes = [str(c.get("message")) for c in (data.get("details") or {}).get("causes") or [] if c.get("message")]
    return "; ".join([text, *causes[:5]])


def server_version(client: Any) -> str:
    """The API server's version without the leading v ("1.35.0")."""
    info = client.request("GET", "/version")
    text = str(info.get("gitVersion", ""))
    return text.lstrip("v").split("+", maxsplit=1)[0].split("-", maxsplit=1)[0]


def wait_for(client: Any, timeout: float, interval: float = 2.0) -> str:
    """Wait until /version answers; return the server version or raise the last KubeError."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return server_version(client)
        except KubeError as exc:
            if exc.status or time.monotonic() >= deadline:
                raise
        time.sleep(interval)


def path_of(kind: str, name: str = "", namespace: str = "") -> str:
    """Core/v1 resource path: ``path_of("secrets", "x", "kube-system")``."""
    base = "/api/v1" + (f"/namespaces/{quote(namespace)}" if namespace else "") + f"/{kind}"
    return base + (f"/{quote(name)}" if name else "")


def decode_b64_map(data: dict[str, str] | None) -> dict[str, str]:
    return {k: base64.b64decode(v).decode("utf-8", "replace") for k, v in (data or {}).items()}


def encode_b64_map(data: dict[str, str]) -> dict[str, str]:
    return {k: base64.b64encode(v.encode("utf-8")).decode("ascii") for k, v in data.items()}


# --------------------------------------------------------------------------- server-side apply

APPLY_CONTENT_TYPE = "application/apply-patch+yaml"

# REST resource names of the built-in kinds the collection applies; callers add their own (CRDs).
PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "Secret": "secrets",
    "ConfigMap": "configmaps",
    "Service": "services",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "Role": "roles",
    "RoleBinding": "rolebindings",
    "DaemonSet": "daemonsets",
    "Deployment": "deployments",
    "StatefulSet": "statefulsets",
    "CustomResourceDefinition": "customresourcedefinitions",
}


def object_name(obj: dict[str, Any]) -> str:
    """``Kind namespace/name`` (or ``Kind name`` when cluster-scoped), for messages."""
    meta = obj.get("metadata") or {}
    where = f"{meta['namespace']}/" if meta.get("namespace") else ""
    return f"{obj.get('kind', '<no kind>')} {where}{meta.get('name', '<no name>')}"


def _comparable(obj: dict[str, Any]) -> dict[str, Any]:
    obj = json.loads(json.dumps(obj))
    meta = obj.get("metadata", {})
    for key in ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"):
        meta.pop(key, None)
    obj.pop("status", None)
    return obj


class Applier:
    """Server-side apply, delete and readiness waits of plain manifests, on a :class:`KubeClient`.

    Plain REST paths built from the manifests (no discovery round trips): ``plurals`` maps each kind
    to its resource name (:data:`PLURALS` plus the caller's custom kinds).
    """

    def __init__(
        self,
        client: Any,
        field_manager: str = "smcp",
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        plurals: dict[str, str] | None = None,
    ) -> None:
        self.client = client
        self.field_manager = field_manager
        self.clock = clock
        self.sleep = sleep
        self.plurals = {**PLURALS, **(plurals or {})}

    def object_path(self, obj: dict[str, Any], with_name: bool = True) -> str:
        api_version, kind = obj["apiVersion"], obj["kind"]
        if kind not in self.plurals:
            raise KubeError(f"no REST resource known for kind {kind} ({object_name(obj)})")
        base = "/api/v1" if api_version == "v1" else "/apis/" + api_version
        namespace = (obj.get("metadata") or {}).get("namespace")
        path = base + (f"/namespaces/{quote(namespace)}" if namespace else "") + "/" + self.plurals[kind]
        return path + "/" + quote(obj["metadata"]["name"]) if with_name else path

    def get(self, path: str) -> dict[str, Any] | None:
        status, data = self.client.call("GET", path)
        if status == 404:
            return None
        if status >= 400:
            raise KubeError(f"GET {path}: HTTP {status}: {message_of(data)}", status)
        return data

    def apply(self, obj: dict[str, Any], dry_run: bool = False, retry_for: float = 0.0) -> str:
        """Server-side apply one object; returns "created", "changed" or "unchanged".

        A 404 on a custom resource right after its CRD was applied is retried for retry_for
        seconds (the API server needs a moment to serve a new CRD). A server that answers 404
        for an object it does not have yet (test API servers) gets the object created instead.
        """
        path = self.object_path(obj)
        before = self.get(path)
        query = {"fieldManager": self.field_manager, "force": "true"}
        if dry_run:
            query["dryRun"] = "All"
        deadline = self.clock() + retry_for
        while True:
            status, data = self.client.call("PATCH", path, obj, APPLY_CONTENT_TYPE, query)
            if status == 404 and before is None and not dry_run:
                status, data = self.client.call(
                    "POST",
                    self.object_path(obj, with_name=False),
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
            raise KubeError(f"apply {object_name(obj)} failed: HTTP {status}: {message_of(data)}", status)
        if before is None:
            return "created"
        return "unchanged" if _comparable(before) == _comparable(data) else "changed"

    def apply_all(
        self, objs: list[dict[str, Any]], dry_run: bool = False, crd_wait: float = 60.0
    ) -> list[tuple[str, str]]:
        results = []
        crd_applied = False
        for obj in objs:
            custom = obj["apiVersion"].split("/")[0].endswith((".projectcalico.org", ".cncf.io"))
            results.append((object_name(obj), self.apply(obj, dry_run, crd_wait if custom and crd_applied else 0.0)))
            crd_applied = crd_applied or obj["kind"] == "CustomResourceDefinition"
        return results

    def delete(self, obj: dict[str, Any], dry_run: bool = False) -> str:
        """Delete one object; returns "deleted" or "absent" (it was not there)."""
        path = self.object_path(obj)
        if self.get(path) is None:
            return "absent"
        if dry_run:
            return "deleted"
        status, data = self.client.call("DELETE", path)
        if status == 404:
            return "absent"
        if status >= 400:
            raise KubeError(f"delete {object_name(obj)} failed: HTTP {status}: {message_of(data)}", status)
        return "deleted"

    # --- waiting ----------------------------------------------------------------------------
    def not_ready(self, workloads: list[tuple[str, str, str]], nodes: bool = True) -> list[str]:
        """Descriptions of what is not ready yet (empty = all ready)."""
        waiting = []
        for kind, namespace, name in workloads:
            path = f"/apis/apps/v1/namespaces/{quote(namespace)}/{kind.lower()}s/{quote(name)}"
            obj = self.get(path)
            if obj is None:
                waiting.append(f"{kind} {namespace}/{name} does not exist")
                continue
            waiting.extend(_workload_state(kind, namespace, name, obj))
        if nodes:
            status, data = self.client.call("GET", "/api/v1/nodes")
            if status >= 400:
                waiting.append(f"nodes cannot be listed: HTTP {status}: {message_of(data)}")
            else:
                items = data.get("items") or []
                if not items:
                    waiting.append("no Node registered yet")
                for node in items:
                    cond = {c.get("type"): c for c in (node.get("status") or {}).get("conditions") or []}
                    ready = cond.get("Ready") or {}
                    if ready.get("status") != "True":
                        reason = ready.get("reason") or ready.get("message") or "no Ready condition"
                        waiting.append(f"Node {node['metadata']['name']} is not Ready ({reason})")
        return waiting

    def wait(
        self, workloads: list[tuple[str, str, str]], timeout: float, interval: float = 5.0, nodes: bool = True
    ) -> list[str]:
        deadline = self.clock() + timeout
        while True:
            waiting = self.not_ready(workloads, nodes)
            if not waiting:
                return []
            if self.clock() >= deadline:
                return waiting
            self.sleep(min(interval, max(0.0, deadline - self.clock())))


def _workload_state(kind: str, namespace: str, name: str, obj: dict[str, Any]) -> list[str]:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    label = f"{kind} {namespace}/{name}"
    meta = obj.get("metadata") or {}
    if meta.get("generation") and status.get("observedGeneration", 0) < meta["generation"]:
        return [f"{label}: controller has not observed generation {meta['generation']} yet"]
    if kind == "DaemonSet":
        desired = status.get("desiredNumberScheduled")
        if desired is None:
            return [f"{label}: no status yet (no node scheduled)"]
        ready = status.get("numberReady", 0)
        updated = status.get("updatedNumberScheduled", desired)
        if ready < desired or updated < desired:
            return [f"{label}: {ready}/{desired} pods ready, {updated}/{desired} updated"]
        return []
    wanted = spec.get("replicas", 1)
    available = status.get("availableReplicas", 0)
    if available < wanted:
        return [f"{label}: {available}/{wanted} replicas available"]
    return []


# --------------------------------------------------------------------------- cluster CA


def ca_cert_hash(pem: bytes) -> str:
    """kubeadm's discovery hash: sha256 over the DER SubjectPublicKeyInfo of the CA certificate."""
    if CRYPTOGRAPHY_IMPORT_ERROR is not None:
        raise KubeError("the Python library 'cryptography' is missing on the controller (needed for the CA hash)")
    try:
        cert = x509.load_pem_x509_certificate(pem)
    except ValueError as exc:
        raise KubeError(f"the kubeconfig's certificate-authority-data is not a PEM certificate: {exc}") from exc
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "sha256:" + hashlib.sha256(spki).hexdigest()


def kubeconfig_ca(kubeconfig_text: str, context: str | None = None) -> bytes:
    """The CA certificate (PEM) of the context's cluster in a kubeconfig (inline data or file)."""
    import yaml  # the controller always has PyYAML (ansible-core needs it)

    doc = yaml.safe_load(kubeconfig_text) or {}
    context_name = context or doc.get("current-context")
    contexts = {c.get("name"): c.get("context", {}) for c in doc.get("contexts") or []}
    clusters = {c.get("name"): c.get("cluster", {}) for c in doc.get("clusters") or []}
    ctx = contexts.get(context_name) or (next(iter(contexts.values())) if len(contexts) == 1 else None)
    if ctx is None:
        raise KubeError(f"kubeconfig has no context {context_name!r}")
    cluster = clusters.get(ctx.get("cluster"), {})
    if cluster.get("certificate-authority-data"):
        return base64.b64decode(cluster["certificate-authority-data"])
    if cluster.get("certificate-authority"):
        with open(cluster["certificate-authority"], "rb") as handle:
            return handle.read()
    raise KubeError(f"cluster {ctx.get('cluster')!r} in the kubeconfig has no certificate-authority(-data)")
