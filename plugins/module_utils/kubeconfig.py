# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""The operator's kubeconfig from kubeadm's admin.conf (pure logic, unit-tested)."""

from __future__ import annotations

import re
from typing import Any

_SERVER_RE = re.compile(r"^https?://[^/\s]+/?$")


class KubeconfigError(ValueError):
    """admin.conf is not what kubeadm writes, or the server URL is bad."""


def operator_kubeconfig(admin_conf: str, server: str, cluster_name: str) -> str:
    """admin.conf with ``server`` as the API URL and cluster/user/context named after ``cluster_name``."""
    import yaml  # controller side only (filter plugin): PyYAML is an ansible-core requirement

    if not _SERVER_RE.match(server or ""):
        raise KubeconfigError(f"server={server!r} is not an URL like https://10.0.0.10:7443 (set smcp_kube_api_server)")
    try:
        doc: dict[str, Any] = yaml.safe_load(admin_conf) or {}
    except yaml.YAMLError as exc:
        raise KubeconfigError(f"admin.conf is not YAML: {exc}") from exc
    contexts = doc.get("contexts") or []
    wanted = doc.get("current-context")
    context = next((c for c in contexts if c.get("name") == wanted), contexts[0] if contexts else None)
    if not context:
        raise KubeconfigError("admin.conf has no context")
    ctx = context.get("context") or {}
    cluster = next((c for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), None)
    user = next((u for u in doc.get("users") or [] if u.get("name") == ctx.get("user")), None)
    if not cluster or not user:
        raise KubeconfigError("admin.conf's current context does not name a cluster and a user it defines")
    cluster_data = dict(cluster.get("cluster") or {})
    cluster_data["server"] = server.rstrip("/")
    user_name = f"{cluster_name}-admin"
    out = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster_name, "cluster": cluster_data}],
        "users": [{"name": user_name, "user": dict(user.get("user") or {})}],
        "contexts": [{"name": cluster_name, "context": {"cluster": cluster_name, "user": user_name}}],
        "current-context": cluster_name,
        "preferences": {},
    }
    return yaml.safe_dump(out, default_flow_style=False, sort_keys=False)
