# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Node maintenance and the cluster-wide operation lock, on any client with kube_client's ``request``.

- cordon / uncordon / drain (evictions through ``pods/eviction``, so PodDisruptionBudgets are honoured:
  a 429 is retried until the timeout, then the drain stops naming the blocking pods and budgets),
  wait until a node is Ready, delete a node.
- The lock: an annotation on the ``kube-system`` namespace holding who holds it, for what and since
  when. Taking it is a read-modify-write with the namespace's resourceVersion, so two operations
  racing for it cannot both win.
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple
from urllib.parse import quote

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeError

LOCK_ANNOTATION = "smcp.io/operation-lock"
LOCK_NAMESPACE = "kube-system"
MERGE = "application/merge-patch+json"


class DrainError(Exception):
    """The drain did not finish: ``blocked`` maps "ns/pod" to the reason (budget or API error)."""

    def __init__(self, message: str, blocked: Dict[str, str]) -> None:
        super().__init__(message)
        self.blocked = blocked


class LockHeld(Exception):
    """Somebody else holds the lock: ``holder`` is its content."""

    def __init__(self, message: str, holder: Dict[str, Any]) -> None:
        super().__init__(message)
        self.holder = holder


# ------------------------------------------------------------------ nodes
def node_path(name: str) -> str:
    return "/api/v1/nodes/" + quote(name)


def get_node(client: Any, name: str) -> Optional[Dict[str, Any]]:
    try:
        return client.request("GET", node_path(name))
    except KubeError as exc:
        if exc.status == 404:
            return None
        raise


def set_unschedulable(client: Any, name: str, value: bool) -> bool:
    """Cordon (True) or uncordon (False); returns whether it changed. A missing node is an error."""
    node = get_node(client, name)
    if node is None:
        raise KubeError(f"node {name} is not registered in the cluster", 404)
    if bool((node.get("spec") or {}).get("unschedulable")) == value:
        return False
    client.request("PATCH", node_path(name), {"spec": {"unschedulable": value}}, content_type=MERGE)
    return True


def is_ready(node: Optional[Dict[str, Any]]) -> bool:
    conds = ((node or {}).get("status") or {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conds)


def kubelet_version(node: Optional[Dict[str, Any]]) -> str:
    info = ((node or {}).get("status") or {}).get("nodeInfo") or {}
    return str(info.get("kubeletVersion", "")).lstrip("v")


def wait_ready(
    client: Any,
    name: str,
    timeout: float,
    version: str = "",
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Dict[str, Any]:
    """Wait until the node is Ready (and reports kubelet ``version`` when given); the node, or KubeError."""
    deadline = clock() + timeout
    while True:
        node = get_node(client, name)
        if is_ready(node) and (not version or kubelet_version(node) == version.lstrip("v")):
            return node or {}
        if clock() >= deadline:
            seen = "not registered" if node is None else ("Ready" if is_ready(node) else "not Ready")
            extra = f", kubelet {kubelet_version(node) or '?'} (want {version})" if version else ""
            raise KubeError(
                f"node {name} is {seen}{extra} after {timeout:.0f} s; check kubelet on it (journalctl -u kubelet)"
            )
        sleep(interval)


def delete_node(client: Any, name: str) -> bool:
    try:
        client.request("DELETE", node_path(name))
        return True
    except KubeError as exc:
        if exc.status == 404:
            return False
        raise


# ------------------------------------------------------------------ drain
def _skippable(pod: Dict[str, Any]) -> bool:
    """DaemonSet pods (recreated anyway), mirror pods (static) and finished pods are left alone."""
    meta = pod.get("metadata") or {}
    if any(o.get("kind") == "DaemonSet" for o in meta.get("ownerReferences") or []):
        return True
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return True
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def pods_on(client: Any, node: str) -> List[Tuple[str, str]]:
    """(namespace, name) of the pods on ``node`` that a drain must evict."""
    found = client.request("GET", "/api/v1/pods", query={"fieldSelector": "spec.nodeName=" + node})
    out = []
    for pod in found.get("items") or []:
        if (pod.get("spec") or {}).get("nodeName") != node or _skippable(pod):
            continue
        meta = pod.get("metadata") or {}
        out.append((str(meta.get("namespace", "default")), str(meta.get("name"))))
    return sorted(out)


def _evict(client: Any, namespace: str, name: str, grace: Optional[int]) -> Optional[str]:
    """None when evicted (or already gone), else why not (a 429 names the disruption budget)."""
    body: Dict[str, Any] = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": name, "namespace": namespace},
    }
    if grace is not None:
        body["deleteOptions"] = {"gracePeriodSeconds": grace}
    path = f"/api/v1/namespaces/{quote(namespace)}/pods/{quote(name)}/eviction"
    try:
        client.request("POST", path, body)
        return None
    except KubeError as exc:
        if exc.status == 404:
            return None
        if exc.status == 429:
            text = str(exc)
            marker = "disruption budget "
            budget = text.split(marker, 1)[1].split(" ", 1)[0] if marker in text else ""
            return f"blocked by PodDisruptionBudget {budget}".rstrip() if budget else "blocked by a PodDisruptionBudget"
        return f"eviction failed: {exc}"


def drain(
    client: Any,
    node: str,
    timeout: float,
    grace: Optional[int] = None,
    interval: float = 2.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Dict[str, Any]:
    """Cordon, then evict every pod until none is left; DrainError after ``timeout`` seconds.

    Returns {"cordoned": bool, "evicted": [...]}. The node stays cordoned on failure (the caller decides).
    """
    cordoned = set_unschedulable(client, node, True)
    deadline = clock() + timeout
    evicted: List[str] = []
    while True:
        pending = pods_on(client, node)
        if not pending:
            return {"cordoned": cordoned, "evicted": evicted}
        blocked: Dict[str, str] = {}
        for namespace, name in pending:
            why = _evict(client, namespace, name, grace)
            key = f"{namespace}/{name}"
            if why is None:
                if key not in evicted:
                    evicted.append(key)
            else:
                blocked[key] = why
        if clock() >= deadline:
            left = {f"{ns}/{n}": blocked.get(f"{ns}/{n}", "still terminating") for ns, n in pods_on(client, node)}
            if not left:
                return {"cordoned": cordoned, "evicted": evicted}
            detail = "; ".join(f"{k}: {v}" for k, v in sorted(left.items()))
            raise DrainError(
                f"node {node} did not drain within {timeout:.0f} s ({detail}); scale the workload up or relax the "
                "budget, or raise the drain timeout",
                left,
            )
        sleep(interval)


# ------------------------------------------------------------------ lock
def _ns_path() -> str:
    return "/api/v1/namespaces/" + LOCK_NAMESPACE


def read_lock(client: Any) -> Tuple[Optional[Dict[str, Any]], Dict[str, Any]]:
    """(lock content or None, the namespace object)."""
    ns = client.request("GET", _ns_path())
    raw = ((ns.get("metadata") or {}).get("annotations") or {}).get(LOCK_ANNOTATION)
    if not raw:
        return None, ns
    try:
        value = json.loads(raw)
    except ValueError:
        value = {"holder": str(raw)}
    return (value if isinstance(value, dict) else {"holder": str(value)}), ns


def _write(client: Any, ns: Dict[str, Any], value: Optional[str]) -> None:
    meta = ns.setdefault("metadata", {})
    annotations = dict(meta.get("annotations") or {})
    if value is None:
        annotations.pop(LOCK_ANNOTATION, None)
    else:
        annotations[LOCK_ANNOTATION] = value
    meta["annotations"] = annotations
    client.request("PUT", _ns_path(), ns)  # carries resourceVersion: a concurrent writer gets 409


def acquire(
    client: Any, holder: str, operation: str, detail: str = "", force: bool = False, now: Optional[float] = None
) -> Tuple[bool, Dict[str, Any]]:
    """Take the lock for ``holder``; (changed, lock). LockHeld when another holder has it (unless force)."""
    for _attempt in range(5):
        current, ns = read_lock(client)
        if current and current.get("holder") == holder:
            return False, current
        if current and not force:
            raise LockHeld(
                f"the cluster is locked by {current.get('operation', 'an operation')} ({current.get('holder')}) "
                f"since {current.get('since', '?')}{': ' + current['detail'] if current.get('detail') else ''}; "
                "wait for it to finish, or if it died, release the lock (force_release / upgrade_force_unlock: true)",
                current,
            )
        lock = {
            "holder": holder,
            "operation": operation,
            "detail": detail,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now if now is not None else time.time())),
        }
        try:
            _write(client, ns, json.dumps(lock, sort_keys=True))
            return True, lock
        except KubeError as exc:
            if exc.status != 409:
                raise
    raise KubeError("the kube-system namespace kept changing while taking the lock; run again", 409)


def release(client: Any, holder: str, force: bool = False) -> Tuple[bool, Optional[Dict[str, Any]]]:
    """Release the lock if ``holder`` holds it (or any holder with force); (changed, what was there)."""
    for _attempt in range(5):
        current, ns = read_lock(client)
        if current is None:
            return False, None
        if current.get("holder") != holder and not force:
            raise LockHeld(
                f"the lock is held by {current.get('holder')}, not {holder}; not released (force_release: true "
                "releases it anyway)",
                current,
            )
        try:
            _write(client, ns, None)
            return True, current
        except KubeError as exc:
            if exc.status != 409:
                raise
    raise KubeError("the kube-system namespace kept changing while releasing the lock; run again", 409)


# ------------------------------------------------------------------ versions
def _image_tag(pod: Dict[str, Any]) -> str:
    for container in (pod.get("spec") or {}).get("containers") or []:
        image = str(container.get("image", ""))
        if "kube-apiserver" in image and ":" in image.rsplit("/", 1)[-1]:
            return image.rsplit(":", 1)[1].lstrip("v").split("@")[0]
    return ""


def read_versions(client: Any, control_planes: List[str], nodes: List[str]) -> Dict[str, Any]:
    """Live versions: {"control_planes": {host: apiserver}, "kubelets": {host: kubelet}, "missing": [...]}.

    The API server version of a control plane is the image tag of its ``kube-apiserver-<node>`` static
    pod, or its kubelet's version when there is no such pod. Nodes not registered are listed as missing.
    """
    found = {}
    for item in client.request("GET", "/api/v1/nodes").get("items") or []:
        name = (item.get("metadata") or {}).get("name")
        if name:
            found[name] = item
    pods = (
        client.request(
            "GET", "/api/v1/namespaces/kube-system/pods", query={"labelSelector": "component=kube-apiserver"}
        ).get("items")
        or []
    )
    apiservers = {}
    for pod in pods:
        node_name = (pod.get("spec") or {}).get("nodeName") or ""
        tag = _image_tag(pod)
        if node_name and tag:
            apiservers[node_name] = tag
    kubelets = {h: kubelet_version(found[h]) for h in nodes if h in found}
    cps = {h: apiservers.get(h) or kubelet_version(found[h]) for h in control_planes if h in found}
    missing = sorted(h for h in set(nodes) | set(control_planes) if h not in found)
    return {"control_planes": cps, "kubelets": kubelets, "missing": missing}


CNI_IMAGES = {"calico": "/calico/node:", "flannel": "/flannel:"}


def read_cni(client: Any, name: str) -> Dict[str, str]:
    """{"name", "version"} of the running CNI (image tag of its DaemonSet), or {} when not found."""
    marker = CNI_IMAGES.get(name)
    if not marker:
        return {}
    for ds in client.request("GET", "/apis/apps/v1/daemonsets").get("items") or []:
        pod_spec = (((ds.get("spec") or {}).get("template") or {}).get("spec")) or {}
        for container in pod_spec.get("containers") or []:
            image = str(container.get("image", ""))
            if marker in image:
                return {"name": name, "version": image.rsplit(":", 1)[1].split("@")[0].lstrip("v")}
    return {}
