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
from typing import Any
from urllib.parse import quote, urlencode

try:
    from kubernetes import config as kube_config
    from kubernetes.client.exceptions import ApiException

    HAS_KUBERNETES = True
    KUBERNETES_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - reported by the modules
    HAS_KUBERNETES = False
    KUBERNETES_IMPORT_ERROR = exc

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - reported by the modules
    HAS_CRYPTOGRAPHY = False


class KubeError(Exception):
    """An API call failed: ``status`` is the HTTP status (0 when the server did not answer)."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class KubeClient:
    """``request(method, path, body=None, content_type=...) -> dict`` against the kubeconfig's cluster."""

    def __init__(self, kubeconfig: str, context: str | None = None, timeout: float = 10) -> None:
        if not HAS_KUBERNETES:
            raise KubeError(f"the Python library 'kubernetes' is missing on the controller: {KUBERNETES_IMPORT_ERROR}")
        try:
            self.api = kube_config.new_client_from_config(config_file=kubeconfig, context=context)
        except Exception as exc:  # the loader raises ConfigException, OSError, yaml errors
            raise KubeError(f"cannot load kubeconfig {kubeconfig}: {exc}") from exc
        self.host = self.api.configuration.host.rstrip("/")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
        query: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        url = self.host + path + (("?" + urlencode(query)) if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        for auth in self.api.configuration.auth_settings().values():
            headers[auth["key"]] = auth["value"]
        try:
            response = self.api.call_api(
                method,
                url,
                header_params=headers,
                body=body,
                _request_timeout=self.timeout,
            )
            data = response.read()
            status = response.status
        except ApiException as exc:
            raise KubeError(f"{method} {path}: HTTP {exc.status} {exc.reason}: {exc.body}", exc.status) from exc
        except Exception as exc:  # urllib3 connection and TLS errors
            raise KubeError(f"{method} {path}: the API server at {self.host} did not answer: {exc}") from exc
        if status >= 400:
            raise KubeError(f"{method} {path}: HTTP {status}: {data[:300]!r}", status)
        if not data:
            return {}
        try:
            return json.loads(data)
        except ValueError:
            return {"raw": data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)}


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


# --------------------------------------------------------------------------- cluster CA


def ca_cert_hash(pem: bytes) -> str:
    """kubeadm's discovery hash: sha256 over the DER SubjectPublicKeyInfo of the CA certificate."""
    if not HAS_CRYPTOGRAPHY:
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
