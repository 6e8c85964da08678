# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Node labels and taints from the inventory, applied through the API.

What we set is remembered in two annotations on the Node, so a label or taint removed from the
inventory is removed from the Node too, while labels and taints set by others (kubeadm's
control-plane taint, the kubelet's own labels, an operator's kubectl) are never touched.
Works on plain dicts through ``client.request`` (see kube_client).
"""

from __future__ import annotations

import json
import time
from typing import Any

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeError, path_of
from ansible_collections.smcp.platform.plugins.module_utils.kubeadm_config import (
    ConfigError,
    check_label_key,
    check_label_value,
    normalise_taint,
)

LABELS_ANNOTATION = "smcp.io/managed-labels"
TAINTS_ANNOTATION = "smcp.io/managed-taints"
MERGE_PATCH = "application/merge-patch+json"


def normalise(spec: dict[str, Any]) -> dict[str, Any]:
    """Check one ``{name, labels, taints}`` entry; raise ConfigError naming the field."""
    name = spec.get("name") or ""
    if not name:
        raise ConfigError("nodes[].name", name, "is empty", "give every entry the node name")
    labels = spec.get("labels") or {}
    if not isinstance(labels, dict):
        raise ConfigError(f"nodes[{name}].labels", labels, "is not a mapping", "write node_labels as {key: value}")
    out_labels = {}
    for key, value in labels.items():
        check_label_key(f"nodes[{name}].labels key", key)
        text = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
        check_label_value(f"nodes[{name}].labels[{key}]", text)
        out_labels[str(key)] = text
    taints = [normalise_taint(f"nodes[{name}].taints[{i}]", t) for i, t in enumerate(spec.get("taints") or [])]
    return {"name": str(name), "labels": out_labels, "taints": taints}


def _taint_id(taint: dict[str, Any]) -> str:
    return f"{taint.get('key')}:{taint.get('effect')}"


def plan(node: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any] | None:
    """The merge patch that brings ``node`` to ``desired`` (None when nothing changes)."""
    meta = node.get("metadata") or {}
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    managed_labels = [k for k in annotations.get(LABELS_ANNOTATION, "").split(",") if k]
    try:
        managed_taints = json.loads(annotations.get(TAINTS_ANNOTATION, "[]"))
    except ValueError:
        managed_taints = []

    label_patch: dict[str, Any] = {}
    for key, value in desired["labels"].items():
        if labels.get(key) != value:
            label_patch[key] = value
    for key in managed_labels:
        if key not in desired["labels"] and key in labels:
            label_patch[key] = None

    current = list((node.get("spec") or {}).get("taints") or [])
    wanted_ids = {_taint_id(t) for t in desired["taints"]}
    # others' taints stay as they are (with the timeAdded the API server gave them); ours follow in inventory order
    kept = [t for t in current if _taint_id(t) not in wanted_ids and _taint_id(t) not in managed_taints]
    new_taints = kept + [dict(t) for t in desired["taints"]]
    strip = [{k: v for k, v in t.items() if k in ("key", "value", "effect")} for t in current]
    taints_changed = sorted(json.dumps(t, sort_keys=True) for t in strip) != sorted(
        json.dumps({k: v for k, v in t.items() if k in ("key", "value", "effect")}, sort_keys=True) for t in new_taints
    )

    new_label_note = ",".join(sorted(desired["labels"]))
    new_taint_note = json.dumps(sorted(wanted_ids))
    annotation_patch = {}
    if annotations.get(LABELS_ANNOTATION, "") != new_label_note:
        annotation_patch[LABELS_ANNOTATION] = new_label_note
    if annotations.get(TAINTS_ANNOTATION, "[]") != new_taint_note:
        annotation_patch[TAINTS_ANNOTATION] = new_taint_note

    if not (label_patch or taints_changed or annotation_patch):
        return None
    patch: dict[str, Any] = {"metadata": {}}
    if label_patch:
        patch["metadata"]["labels"] = label_patch
    if annotation_patch:
        patch["metadata"]["annotations"] = annotation_patch
    if taints_changed:
        patch["spec"] = {"taints": new_taints}
    if not patch["metadata"]:
        del patch["metadata"]
    return patch


def view(node: dict[str, Any]) -> dict[str, Any]:
    meta = node.get("metadata") or {}
    return {
        "labels": dict(sorted((meta.get("labels") or {}).items())),
        "taints": [
            {k: v for k, v in t.items() if k in ("key", "value", "effect")}
            for t in (node.get("spec") or {}).get("taints") or []
        ],
    }


def get_node(client: Any, name: str, wait_timeout: float, interval: float = 2.0) -> dict[str, Any]:
    """The Node, waiting up to wait_timeout for it to register (kubelet registers after join)."""
    deadline = time.monotonic() + wait_timeout
    while True:
        try:
            return client.request("GET", path_of("nodes", name))
        except KubeError as exc:
            if exc.status not in (0, 404) or time.monotonic() >= deadline:
                if exc.status == 404:
                    raise KubeError(
                        f"node {name!r} is not registered with the API server (waited {wait_timeout:.0f} s): "
                        "check that the node joined (kubelet running, /etc/kubernetes/kubelet.conf present) "
                        "and that its name matches the inventory hostname",
                        404,
                    ) from exc
                raise
        time.sleep(interval)


def apply(client: Any, specs: list[dict[str, Any]], check_mode: bool, wait_timeout: float) -> dict[str, Any]:
    """Apply every node's labels and taints; returns {changed, nodes: {name: {changed, before, after}}}."""
    desired = [normalise(spec) for spec in specs]
    result: dict[str, Any] = {"changed": False, "nodes": {}}
    for want in desired:
        try:
            node = get_node(client, want["name"], 0 if check_mode else wait_timeout)
        except KubeError as exc:
            if not (check_mode and exc.status == 404):
                raise
            node = {"metadata": {"name": want["name"]}}  # joins in this run: show what it will get
        patch = plan(node, want)
        entry = {"changed": patch is not None, "before": view(node)}
        if patch is not None:
            result["changed"] = True
            if check_mode:
                after = json.loads(json.dumps(node))
                meta = after.setdefault("metadata", {})
                for key, value in (patch.get("metadata", {}).get("labels") or {}).items():
                    labels = meta.setdefault("labels", {})
                    if value is None:
                        labels.pop(key, None)
                    else:
                        labels[key] = value
                if "spec" in patch:
                    after.setdefault("spec", {})["taints"] = patch["spec"]["taints"]
            else:
                after = client.request("PATCH", path_of("nodes", want["name"]), body=patch, content_type=MERGE_PATCH)
            entry["after"] = view(after)
        else:
            entry["after"] = entry["before"]
        result["nodes"][want["name"]] = entry
    return result
