#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cni_apply
short_description: Server-side apply the pod network manifests and wait until it is up
version_added: 0.1.0
description:
  - Before applying, checks that the pod CIDR agrees between O(pod_cidr), the CNI configuration
    (O(cni_cidr)), the kubeadm ClusterConfiguration (ConfigMap C(kube-system/kubeadm-config),
    C(networking.podSubnet)) and every Node's C(spec.podCIDR); a mismatch fails before anything is applied.
  - Applies every object with server-side apply (field manager O(field_manager), conflicts forced),
    in order; custom resources right after their CRD are retried until the API serves them.
  - Waits until every DaemonSet has all its pods ready and updated, every Deployment has its
    replicas available and every Node is Ready. On timeout it fails listing what is not ready.
  - Uses the C(kubernetes) Python client on the controller with O(kubeconfig).
author:
  - smcp developers (@smcp)
options:
  pod_cidr:
    description: The cluster's pod CIDR (C(smcp_pod_cidr)).
    type: str
    required: true
  cni_cidr:
    description: Pod network in the CNI configuration (Calico IPPool C(cidr), flannel C(Network)).
    type: str
    required: true
  wait:
    description: Wait for the workloads and nodes.
    type: bool
    default: true
  workloads:
    description: C([kind, namespace, name]) of the DaemonSets and Deployments to wait for.
    type: list
    elements: list
    default: []
  wait_nodes:
    description: Also wait until every Node is Ready.
    type: bool
    default: true
  wait_timeout:
    description: Seconds to wait.
    type: int
    default: 300
  wait_interval:
    description: Seconds between checks.
    type: float
    default: 5
attributes:
  check_mode:
    support: full
    description: Applies with C(dryRun=All) and reports what would change; does not wait.
  diff_mode:
    support: none
    description: The apply results list what was created or changed; no before/after diff.
extends_documentation_fragment:
  - smcp.platform.kube_auth
  - smcp.platform.kube_apply
"""

EXAMPLES = r"""
- name: Apply the pod network and wait for it
  smcp.platform.cni_apply:
    objects: "{{ net.objects }}"
    workloads: "{{ net.workloads }}"
    pod_cidr: "{{ smcp_pod_cidr }}"
    cni_cidr: "{{ net.cidr.network }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
results:
  description: C([object, created|changed|unchanged]) per object, in apply order.
  returned: success
  type: list
  elements: list
not_ready:
  description: What was not ready when the wait ended (empty on success).
  returned: always
  type: list
  elements: str
"""

from ansible_collections.smcp.platform.plugins.module_utils.cni_kube import CniApplier  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    kube_argument_spec,
    run_kube_module,
)

ARGUMENT_SPEC = kube_argument_spec(
    dict(
        pod_cidr=dict(type="str", required=True),
        cni_cidr=dict(type="str", required=True),
        wait=dict(type="bool", default=True),
        workloads=dict(type="list", elements="list", default=[]),
        wait_nodes=dict(type="bool", default=True),
        wait_timeout=dict(type="int", default=300),
        wait_interval=dict(type="float", default=5),
    ),
    apply=True,
)


def execute(module, applier):
    params = module.params
    problems = applier.check_consistency(params["pod_cidr"], params["cni_cidr"])
    if problems:
        module.fail_json(msg="pod CIDR mismatch, nothing applied: " + "; ".join(problems), problems=problems)
    results = applier.apply_all(params["objects"], dry_run=module.check_mode)
    changed = any(result[1] != "unchanged" for result in results)
    not_ready = []
    if params["wait"] and not module.check_mode:
        workloads = [tuple(w) for w in params["workloads"]]
        not_ready = applier.wait(workloads, params["wait_timeout"], params["wait_interval"], params["wait_nodes"])
        if not_ready:
            module.fail_json(
                msg="pod network not ready after %d s: %s" % (params["wait_timeout"], "; ".join(not_ready)),
                changed=changed,
                results=[list(r) for r in results],
                not_ready=not_ready,
            )
    module.exit_json(changed=changed, results=[list(r) for r in results], not_ready=not_ready)


def execute_module(module, client):
    execute(module, CniApplier(client, module.params["field_manager"]))


def main():
    run_kube_module(ARGUMENT_SPEC, execute_module)


if __name__ == "__main__":
    main()
