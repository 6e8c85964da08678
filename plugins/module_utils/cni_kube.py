# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""The pod network's own API checks, on the collection's one client layer (kube_client).

Applying and waiting are kube_client's :class:`Applier`; this adds the CNI's resource names
(Calico and Multus kinds) and the pod CIDR consistency check against the running cluster.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.smcp.platform.plugins.module_utils.cni import check_cidr_consistency
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.data import PLURALS
from ansible_collections.smcp.platform.plugins.module_utils.kube_client import Applier


class CniApplier(Applier):
    """An :class:`Applier` that knows the CNI's kinds and checks the pod CIDR before applying."""

    def __init__(self, client: Any, field_manager: str = "smcp", **kwargs: Any) -> None:
        super().__init__(client, field_manager, plurals=PLURALS, **kwargs)

    def cluster_pod_cidrs(self) -> tuple[str | None, dict[str, list[str]]]:
        """(kubeadm podSubnet or None, {node: [podCIDRs]}) read from the cluster."""
        subnet = None
        cm = self.get("/api/v1/namespaces/kube-system/configmaps/kubeadm-config")
        if cm:
            text = (cm.get("data") or {}).get("ClusterConfiguration") or ""
            subnet = _yaml_value(text, "podSubnet")
        nodes = {}
        status, data = self.client.call("GET", "/api/v1/nodes")
        if status < 400:
            for node in data.get("items") or []:
                spec = node.get("spec") or {}
                cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
                nodes[node["metadata"]["name"]] = cidrs
        return subnet, nodes

    def check_consistency(self, pod_cidr: str, cni_cidr: str) -> list[str]:
        subnet, nodes = self.cluster_pod_cidrs()
        return check_cidr_consistency(pod_cidr, cni_cidr, subnet, nodes)


def _yaml_value(text: str, key: str) -> str | None:
    """A scalar `key: value` from a YAML document (kubeadm's ClusterConfiguration), without a YAML library."""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(key + ":"):
            value = stripped[len(key) + 1 :].split(" #", 1)[0].strip().strip("'\"")
            return value or None
    return None
