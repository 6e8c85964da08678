# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Filters ``smcp.platform.operator_kubeconfig`` and ``smcp.platform.kubelet_skew`` (roles control_plane, node)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.smcp.platform.plugins.module_utils.kubeadm_config import ConfigError, check_skew
from ansible_collections.smcp.platform.plugins.module_utils.kubeconfig import KubeconfigError, operator_kubeconfig


def _operator_kubeconfig(admin_conf, server, cluster_name="smcp"):
    try:
        return operator_kubeconfig(str(admin_conf), str(server), str(cluster_name))
    except KubeconfigError as exc:
        raise AnsibleFilterError(f"operator_kubeconfig: {exc}") from exc


def _kubelet_skew(kubelet_version, api_server_version):
    """'' when a kubelet of this version may join that API server, else the reason and the fix."""
    try:
        check_skew(str(kubelet_version), str(api_server_version))
    except ConfigError as exc:
        return str(exc)
    return ""


class FilterModule(object):
    def filters(self):
        return {"operator_kubeconfig": _operator_kubeconfig, "kubelet_skew": _kubelet_skew}
