# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Filters of the ``monitoring`` role: file_sd targets, scrape configs, in-cluster Prometheus objects."""

from __future__ import annotations

from collections.abc import Mapping

from ansible.errors import AnsibleFilterError

from ansible_collections.smcp.platform.plugins.module_utils.monitoring import (
    HOST_KEYS,
    TargetError,
    build_targets,
    render_files,
    scrape_configs,
)
from ansible_collections.smcp.platform.plugins.module_utils.monitoring_manifests import (
    ManifestError,
    incluster_manifests,
    prometheus_config,
)


def monitoring_targets(
    hostvars,
    groups,
    source="inventory",
    cluster="smcp",
    etcd_group="etcd",
    control_plane_group="control_plane",
    workers_group="workers",
):
    """File_sd entries per job for the inventory hosts in the etcd/control_plane/workers groups."""
    if not isinstance(hostvars, Mapping):
        raise AnsibleFilterError(
            "monitoring_targets: input must be hostvars (a mapping), got %s" % type(hostvars).__name__
        )
    wanted = set()
    for group in (etcd_group, control_plane_group, workers_group):
        wanted.update((groups or {}).get(group) or ())
    # Only the variables the generator reads (each is templated on access; others may not resolve here).
    plain = {}
    for name in wanted:
        if name in hostvars:
            host = hostvars[name]
            plain[name] = {key: host[key] for key in HOST_KEYS if key in host}
    settings = {
        "source": source,
        "cluster": cluster,
        "etcd_group": etcd_group,
        "control_plane_group": control_plane_group,
        "workers_group": workers_group,
    }
    try:
        return build_targets(plain, dict(groups or {}), settings)
    except TargetError as exc:
        raise AnsibleFilterError("monitoring_targets: %s" % exc) from exc


def monitoring_file_sd(result, prefix="inventory"):
    """{file name: JSON text} of a monitoring_targets result."""
    if not isinstance(result, Mapping) or "targets" not in result:
        raise AnsibleFilterError("monitoring_file_sd: input must be the result of monitoring_targets")
    return render_files(result["targets"], prefix)


def monitoring_scrape_configs(file_sd_dir, clusters=(), token_dir=None, interval="30s"):
    """Prometheus scrape_configs entries for the file_sd directory (one kube job pair per cluster)."""
    return scrape_configs(file_sd_dir, clusters, token_dir, interval)


def monitoring_manifests(settings, config_text=None):
    """Objects of the in-cluster Prometheus (see module_utils/monitoring_manifests.py)."""
    try:
        return incluster_manifests(dict(settings or {}), config_text)
    except ManifestError as exc:
        raise AnsibleFilterError("monitoring_manifests: %s" % exc) from exc


def monitoring_prometheus_config(settings):
    """The in-cluster prometheus.yml as data."""
    try:
        return prometheus_config(dict(settings or {}))
    except ManifestError as exc:
        raise AnsibleFilterError("monitoring_prometheus_config: %s" % exc) from exc


class FilterModule(object):
    def filters(self):
        return {
            "monitoring_targets": monitoring_targets,
            "monitoring_file_sd": monitoring_file_sd,
            "monitoring_scrape_configs": monitoring_scrape_configs,
            "monitoring_manifests": monitoring_manifests,
            "monitoring_prometheus_config": monitoring_prometheus_config,
        }
