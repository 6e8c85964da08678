# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Every manifest of the pod network in apply order (render_all) and the workloads to wait for."""

from __future__ import annotations

from ansible_collections.smcp.platform.plugins.module_utils.cni import (
    CniError,
    check_choice,
    mirror_image,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.calico import render_calico
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.flannel import render_flannel
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.multus import render_multus
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.sriov import render_sriov


def _mirror_all(images, registry):
    return {key: mirror_image(ref, registry) for key, ref in images.items()}


def render_all(cfg, pins):
    """Every manifest of the pod network for cfg, in apply order.

    cfg: cni, pod_cidr, encapsulation, mtu, registry, calico_block_size, multus (bool),
    sriov_nodes ({host: [pf]}), sriov_networks, sriov_resource_prefix.
    pins: CNI_BY_MINOR[minor]. Returns (objects, images used).
    """
    check_choice("smcp_cni", cfg["cni"], ("calico", "flannel"))
    registry = cfg.get("registry") or ""
    used = {}
    if cfg["cni"] == "calico":
        images = _mirror_all(pins["calico"]["images"], registry)
        objs = render_calico(cfg, images)
    else:
        images = _mirror_all(pins["flannel"]["images"], registry)
        objs = render_flannel(cfg, images)
    used.update(images)
    nodes = cfg.get("sriov_nodes") or {}
    if cfg.get("multus") or nodes:
        images = _mirror_all(pins["multus"]["images"], registry)
        objs += render_multus(images)
        used.update(images)
    if nodes:
        images = _mirror_all(dict(pins["sriov_cni"]["images"], **pins["sriov_device_plugin"]["images"]), registry)
        objs += render_sriov(
            nodes, cfg.get("sriov_networks") or [], cfg.get("sriov_resource_prefix") or "intel.com", images
        )
        used.update(images)
    elif cfg.get("sriov_networks"):
        raise CniError("cni_sriov_networks is set but no node has cni_sriov_pfs")
    return objs, used


def workloads(objs):
    """(kind, namespace, name) of the DaemonSets and Deployments to wait for."""
    return [
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in objs
        if o["kind"] in ("DaemonSet", "Deployment")
    ]
