# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Filter ``smcp.platform.operator_kubeconfig``: kubeadm's admin.conf made into the operator's kubeconfig."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.smcp.platform.plugins.module_utils.kubeconfig import KubeconfigError, operator_kubeconfig


def _operator_kubeconfig(admin_conf, server, cluster_name="smcp"):
    try:
        return operator_kubeconfig(str(admin_conf), str(server), str(cluster_name))
    except KubeconfigError as exc:
        raise AnsibleFilterError(f"operator_kubeconfig: {exc}") from exc


class FilterModule(object):
    def filters(self):
        return {"operator_kubeconfig": _operator_kubeconfig}
