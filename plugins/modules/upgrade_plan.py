#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: upgrade_plan
short_description: Plan a Kubernetes upgrade one minor at a time, or refuse it naming the rule broken
version_added: 0.1.0
description:
  - Computes the ordered steps of a kubeadm upgrade from the versions found in the cluster to
    O(target), following the Kubernetes version skew policy and the collection's versions table.
  - Several hops when the target is more than one minor ahead (only with O(allow_multi_hop)); in each
    hop etcd and containerd first where the table's release needs a newer minor, then the control
    planes one at a time (C(kubeadm upgrade apply) on the first, C(kubeadm upgrade node) on the others),
    the CNI, then the workers.
  - Hosts already at a hop's version get no step, so planning again after a failed upgrade resumes it.
  - Refuses (fails, or reports with O(fail_on_refusal=false)) a downgrade, a skipped minor, a kubelet
    newer than the API server or too old for it, an unsupported version and mixed control-plane
    versions, naming the rule and the fix.
  - Runs on the controller only; it contacts nothing.
author:
  - smcp developers (@smcp)
options:
  target:
    description: Kubernetes version to reach (C(1.36.0) or C(v1.36.0)); must be in the versions table.
    type: str
    required: true
  control_planes:
    description:
      - Inventory host name -> version of its kube-apiserver. The first host in order runs
        C(kubeadm upgrade apply).
    type: dict
    required: true
  kubelets:
    description: Inventory host name -> kubelet version, for every node (control planes included).
    type: dict
    default: {}
  etcd:
    description: Installed etcd version (the oldest member's); empty = not checked.
    type: str
    default: ""
  containerd:
    description: Host -> installed containerd version (any text holding the version); empty = not checked.
    type: dict
    default: {}
  cni:
    description:
      - Installed CNI with its C(name) (calico, flannel) and C(version), e.g. C(name=calico version=3.29.1).
      - Empty = not checked.
    type: dict
    default: {}
  allow_multi_hop:
    description: Plan several hops when the target is more than one minor ahead.
    type: bool
    default: false
  fail_on_refusal:
    description: Fail when the upgrade is refused; otherwise return RV(refused) and succeed.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Pure computation; the same result in check mode.
  diff_mode:
    support: none
notes:
  - The versions table is C(plugins/module_utils/versions.py) of this collection.
seealso:
  - name: Kubernetes version skew policy
    description: The rules the plan follows.
    link: https://kubernetes.io/releases/version-skew-policy/
  - name: Upgrading kubeadm clusters
    description: The order of the steps.
    link: https://kubernetes.io/docs/tasks/administer-cluster/kubeadm/kubeadm-upgrade/
"""

EXAMPLES = r"""
- name: Plan the upgrade to 1.36.0
  smcp.platform.upgrade_plan:
    target: 1.36.0
    control_planes: {cp1: 1.35.0, cp2: 1.35.0}
    kubelets: {cp1: 1.35.0, cp2: 1.35.0, w1: 1.35.0}
    etcd: 3.5.17
  delegate_to: localhost
  run_once: true
  register: plan

- name: Only report a refusal
  smcp.platform.upgrade_plan:
    target: 1.34.0
    control_planes: {cp1: 1.35.0}
    fail_on_refusal: false
  register: plan
"""

RETURN = r"""
plan:
  description: The plan (absent when refused).
  returned: success and not refused
  type: dict
  contains:
    status:
      description: V(ready) (steps to run) or V(at_target) (nothing to do).
      type: str
    target:
      description: The target version.
      type: str
    hops:
      description: Versions passed through, one minor each; the last one is the target.
      type: list
      elements: str
    steps:
      description:
        - Ordered steps. Each has C(hop), C(kind) (etcd, containerd, control_plane, cni, node), C(from) and C(to);
          control_plane and node steps have C(host); control_plane steps have C(kubeadm) (apply, node or null
          when only the kubelet is behind) and C(kubelet) (bool).
      type: list
      elements: dict
    first_control_plane:
      description: The host that runs C(kubeadm upgrade apply) (null when none does).
      type: str
    nodes:
      description: Workers that get a step.
      type: list
      elements: str
  sample:
    status: ready
    target: 1.36.0
    hops: [1.36.0]
    first_control_plane: cp1
    nodes: [w1]
    steps:
      - {hop: 1.36.0, kind: control_plane, host: cp1, kubeadm: apply, kubelet: true, from: 1.35.0, to: 1.36.0}
      - {hop: 1.36.0, kind: node, host: w1, from: 1.35.0, to: 1.36.0}
refused:
  description: Why the upgrade must not start.
  returned: refused
  type: dict
  contains:
    rule:
      description: >-
        invalid_version, unsupported_version, downgrade, kubelet_newer, kubelet_too_old,
        mixed_control_planes or skipped_minor.
      type: str
    message:
      description: What is wrong and the fix.
      type: str
  sample:
    rule: skipped_minor
    message: "target 1.36.0 is 2 minors ahead of 1.34.2; Kubernetes upgrades one minor at a time: ..."
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.upgrade_plan import (  # noqa: E402
    PlanRefused,
    Table,
    default_table,
    plan,
)

ARGUMENT_SPEC = {
    "target": {"type": "str", "required": True},
    "control_planes": {"type": "dict", "required": True},
    "kubelets": {"type": "dict", "default": {}},
    "etcd": {"type": "str", "default": ""},
    "containerd": {"type": "dict", "default": {}},
    "cni": {"type": "dict", "default": {}},
    "allow_multi_hop": {"type": "bool", "default": False},
    "fail_on_refusal": {"type": "bool", "default": True},
}


def execute_module(module: AnsibleModule, table: Table | None = None) -> None:
    p = module.params
    try:
        result = plan(
            target=p["target"],
            control_planes=p["control_planes"],
            kubelets=p["kubelets"],
            table=table or default_table(),
            allow_multi_hop=p["allow_multi_hop"],
            etcd=p["etcd"] or None,
            containerd=p["containerd"] or None,
            cni=p["cni"] or None,
        )
    except PlanRefused as exc:
        if p["fail_on_refusal"]:
            module.fail_json(msg=f"upgrade refused ({exc.rule}): {exc.message}", refused=exc.as_dict())
        module.exit_json(changed=False, refused=exc.as_dict())
    except ValueError as exc:  # the versions table's own errors (an unknown release)
        module.fail_json(msg=f"versions table: {exc}", refused={"rule": "unsupported_version", "message": str(exc)})
    module.exit_json(changed=False, plan=result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
