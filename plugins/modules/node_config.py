#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_config
short_description: Apply node labels and taints from the inventory through the Kubernetes API
version_added: 0.1.0
description:
  - Sets the labels and taints of each listed Node with one JSON merge patch per Node that differs.
  - Remembers what it set in the annotations C(smcp.io/managed-labels) and C(smcp.io/managed-taints), so a
    label or taint dropped from the inventory is removed from the Node, while labels and taints set by
    others (kubeadm's control-plane taint, the kubelet's labels, an operator) are left alone.
  - Waits up to O(wait_timeout) for a Node that has just joined to register.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - smcp.platform.kube_auth
options:
  nodes:
    description: One entry per Node.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: Node name.
        type: str
        required: true
      labels:
        description: "Labels the Node must carry, as a mapping of key to value."
        type: dict
        default: {}
      taints:
        description: Taints, each with C(key), optional C(value) and C(effect) (default C(NoSchedule)).
        type: list
        elements: dict
        default: []
  timeout:
    description: Seconds to wait for each API request.
    type: float
    default: 10
  wait_timeout:
    description: Seconds to wait for a Node to register.
    type: float
    default: 120
attributes:
  check_mode:
    support: full
    description: Computes the patches without sending them.
  diff_mode:
    support: full
    description: Returns each changed Node's labels and taints before and after.
notes:
  - Run it on the controller (C(delegate_to=localhost), C(run_once=true)) with every Node in one call.
"""

EXAMPLES = r"""
- name: Labels and taints from the inventory
  smcp.platform.node_config:
    kubeconfig: ~/.smcp/clusters/smcp/admin.conf
    nodes:
      - name: worker1
        labels: {topology.kubernetes.io/zone: a, node-role.kubernetes.io/worker: ""}
        taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
nodes:
  description: Per Node, whether it changed and its labels and taints before and after.
  returned: success
  type: dict
  sample:
    worker1:
      changed: true
      before: {labels: {kubernetes.io/hostname: worker1}, taints: []}
      after:
        labels: {kubernetes.io/hostname: worker1, node-role.kubernetes.io/worker: ""}
        taints: [{key: dedicated, value: gpu, effect: NoSchedule}]
error:
  description: The rejected field with C(field), C(value), C(problem) and C(fix).
  returned: failure on bad input
  type: dict
"""

from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    kube_argument_spec,
    run_kube_module,
)
from ansible_collections.smcp.platform.plugins.module_utils.kube_nodes import apply  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.kubeadm_config import ConfigError  # noqa: E402

ARGUMENT_SPEC = kube_argument_spec(
    dict(
        nodes=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                name=dict(type="str", required=True),
                labels=dict(type="dict", default={}),
                taints=dict(type="list", elements="dict", default=[]),
            ),
        ),
        timeout=dict(type="float", default=10),
        wait_timeout=dict(type="float", default=120),
    )
)


def execute_module(module, client):
    params = module.params
    try:
        outcome = apply(client, params["nodes"], module.check_mode, params["wait_timeout"])
    except ConfigError as exc:
        module.fail_json(msg=str(exc), error=exc.as_dict())
    result = dict(changed=outcome["changed"], nodes=outcome["nodes"])
    if outcome["changed"] and module._diff:
        changed = {name: entry for name, entry in outcome["nodes"].items() if entry["changed"]}
        result["diff"] = dict(
            before={name: entry["before"] for name, entry in changed.items()},
            after={name: entry["after"] for name, entry in changed.items()},
        )
    module.exit_json(**result)


def main():
    run_kube_module(ARGUMENT_SPEC, execute_module, timeout_option="timeout")


if __name__ == "__main__":
    main()
