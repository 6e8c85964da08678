#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_node
short_description: Cordon, drain (honouring PodDisruptionBudgets), uncordon, wait Ready or delete a Kubernetes node
version_added: 0.1.0
description:
  - Talks to the Kubernetes API with a kubeconfig from the controller (no kubectl).
  - O(state=drained) cordons the node and evicts its pods through the eviction API, so
    PodDisruptionBudgets are honoured; evictions refused by a budget (HTTP 429) are retried until
    O(timeout), then the module fails naming the pods and budgets that blocked it.
    DaemonSet pods, static (mirror) pods and finished pods are left alone.
  - O(state=cordoned) / O(state=schedulable) mark the node unschedulable or schedulable.
  - O(state=ready) waits until the node is Ready, and reports O(version) as its kubelet version when given.
  - O(state=absent) deletes the Node object.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - smcp.platform.kube_auth
options:
  name:
    description: Node name.
    type: str
    required: true
  state:
    description: What the node should be.
    type: str
    choices: [cordoned, drained, schedulable, ready, absent]
    required: true
  timeout:
    description: Seconds to wait for a drain or for the node to become Ready.
    type: int
    default: 300
  grace_period:
    description: Termination grace period for evicted pods (default the pods' own).
    type: int
  uncordon_on_failure:
    description: When a drain fails, make the node schedulable again if this module cordoned it.
    type: bool
    default: false
  version:
    description: With O(state=ready), the kubelet version the node must report (C(1.35.0)).
    type: str
    default: ""
  missing_ok:
    description:
      - When the node is not registered, succeed without change (RV(node.exists) is V(false)) instead of failing.
      - For hosts that may never have joined (an etcd-only host being removed).
    type: bool
    default: false
attributes:
  check_mode:
    support: partial
    description: Reports whether the node would be cordoned, uncordoned or deleted.
    details: A drain is not simulated in check mode (only whether the node would be cordoned is reported).
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Drain w1 (at most 5 minutes)
  smcp.platform.kube_node:
    name: w1
    state: drained
    timeout: 300
  delegate_to: localhost
  module_defaults:
    group/smcp.platform.kube:
      kubeconfig: "{{ smcp_kubeconfig }}"

- name: Wait until w1 is Ready with kubelet 1.35.1, then uncordon it
  smcp.platform.kube_node:
    name: w1
    state: "{{ item }}"
    version: 1.35.1
    kubeconfig: "{{ smcp_kubeconfig }}"  # or once for the play, see above
  loop: [ready, schedulable]
  delegate_to: localhost
"""

RETURN = r"""
node:
  description: The node after the call.
  returned: always
  type: dict
  contains:
    name:
      description: Node name.
      type: str
    exists:
      description: Whether the Node object exists.
      type: bool
    ready:
      description: Whether its Ready condition is True.
      type: bool
    unschedulable:
      description: Whether it is cordoned.
      type: bool
    kubelet_version:
      description: The kubelet version it reports (without the leading v).
      type: str
  sample: {name: w1, exists: true, ready: true, unschedulable: false, kubelet_version: 1.35.1}
evicted:
  description: Pods evicted (namespace/name).
  returned: state is drained
  type: list
  elements: str
blocked:
  description: Pods that did not leave, with the reason (a PodDisruptionBudget, an API error).
  returned: failed drain
  type: dict
"""

from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    kube_argument_spec,
    run_kube_module,
)
from ansible_collections.smcp.platform.plugins.module_utils import kube_node as nodes  # noqa: E402

ARGUMENT_SPEC = kube_argument_spec(
    {
        "name": {"type": "str", "required": True},
        "state": {
            "type": "str",
            "required": True,
            "choices": ["cordoned", "drained", "schedulable", "ready", "absent"],
        },
        "timeout": {"type": "int", "default": 300},
        "grace_period": {"type": "int"},
        "uncordon_on_failure": {"type": "bool", "default": False},
        "version": {"type": "str", "default": ""},
        "missing_ok": {"type": "bool", "default": False},
    }
)


def summary(name, node):
    if node is None:
        return {"name": name, "ready": False, "unschedulable": False, "kubelet_version": "", "exists": False}
    return {
        "name": name,
        "exists": True,
        "ready": nodes.is_ready(node),
        "unschedulable": bool((node.get("spec") or {}).get("unschedulable")),
        "kubelet_version": nodes.kubelet_version(node),
    }


def execute_module(module, client):
    p = module.params
    name, state = p["name"], p["state"]
    node = nodes.get_node(client, name)
    if state == "absent":
        changed = node is not None and (module.check_mode or nodes.delete_node(client, name))
        module.exit_json(changed=bool(changed), node=summary(name, None if changed else node))
    if node is None and p["missing_ok"]:
        module.exit_json(changed=False, node=summary(name, None))
    if node is None:
        module.fail_json(msg=f"node {name} is not registered in the cluster; check the name (kubectl get nodes)")
    if state == "ready":
        node = nodes.wait_ready(client, name, p["timeout"], version=p["version"])
        module.exit_json(changed=False, node=summary(name, node))
    want = state != "schedulable"
    if module.check_mode or state != "drained":
        changed = bool((node.get("spec") or {}).get("unschedulable")) != want
        if changed and not module.check_mode:
            nodes.set_unschedulable(client, name, want)
        module.exit_json(changed=changed, node=summary(name, nodes.get_node(client, name)))
    try:
        result = nodes.drain(client, name, p["timeout"], grace=p["grace_period"])
    except nodes.DrainError as exc:
        was_cordoned = bool((node.get("spec") or {}).get("unschedulable"))
        if p["uncordon_on_failure"] and not was_cordoned:
            nodes.set_unschedulable(client, name, False)
        module.fail_json(msg=str(exc), blocked=exc.blocked, node=summary(name, nodes.get_node(client, name)))
    module.exit_json(
        changed=bool(result["cordoned"] or result["evicted"]),
        evicted=result["evicted"],
        node=summary(name, nodes.get_node(client, name)),
    )


def main():
    run_kube_module(ARGUMENT_SPEC, execute_module)


if __name__ == "__main__":
    main()
