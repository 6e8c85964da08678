# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Filter ``smcp.platform.cluster_checks``: cross-host preflight checks and one combined report."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import ALL_CHECK_IDS
from ansible_collections.smcp.platform.plugins.module_utils.preflight.problems import unknown_check_ids
from ansible_collections.smcp.platform.plugins.module_utils.preflight_cluster import build_report


def cluster_checks(
    hostvars,
    hosts,
    groups,
    pod_cidr="10.244.0.0/16",
    service_cidr="10.96.0.0/12",
    etcd_group="etcd",
    control_plane_group="control_plane",
    workers_group="workers",
    warn_only=None,
    result_var="_preflight_node",
    node_mask_v4=24,
    node_mask_v6=64,
):
    """Build the preflight report from every host's registered node_preflight result."""
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError("cluster_checks: input must be hostvars (a mapping), got %s" % type(hostvars).__name__)
    unknown = unknown_check_ids(warn_only)
    if unknown:
        raise AnsibleFilterError(
            "cluster_checks: warn_only has unknown check id(s) %s; valid: %s"
            % (", ".join(unknown), ", ".join(ALL_CHECK_IDS))
        )
    results = {}
    for host in hosts or ():
        registered = hostvars[host].get(result_var) if host in hostvars else None
        preflight = registered.get("preflight") if isinstance(registered, Mapping) else None
        results[host] = dict(preflight) if isinstance(preflight, Mapping) else None
    settings = {
        "pod_cidr": pod_cidr,
        "service_cidr": service_cidr,
        "etcd_group": etcd_group,
        "control_plane_group": control_plane_group,
        "workers_group": workers_group,
        "node_mask_v4": node_mask_v4,
        "node_mask_v6": node_mask_v6,
    }
    return build_report(results, dict(groups or {}), settings, warn_only or ())


class FilterModule(object):
    def filters(self):
        return {"cluster_checks": cluster_checks}
