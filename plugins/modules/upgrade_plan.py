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
  - Runs on the controller only; it contacts nothing but the Kubernetes API, and that only with O(kubeconfig).
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - smcp.platform.kube_auth
options:
  target:
    description: Kubernetes version to reach (C(1.36.0) or C(v1.36.0)); must be in the versions table.
    type: str
    required: true
  control_planes:
    description:
      - Control plane -> version of its kube-apiserver. The first host in order runs
        C(kubeadm upgrade apply).
      - With O(kubeconfig), a list of control-plane node names whose versions are read from the cluster.
    type: raw
    required: true
  kubelets:
    description:
      - Node -> kubelet version, for every node (control planes included).
      - With O(kubeconfig), a list of node names whose versions are read from the cluster.
    type: raw
    default: {}
  kubeconfig:
    description:
      - Read the versions from the cluster (kubelet versions of the Node objects, the image tag of each
        C(kube-apiserver-<node>) static pod, else that node's kubelet version).
      - Nodes in O(kubelets) that are not registered are left out and listed in RV(missing); a missing
        control plane fails.
    type: path
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
      - With O(kubeconfig) and only C(name) given, the version is read from the image tag of the CNI's
        DaemonSet.
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
    description: No diff is returned.
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
    by_hop:
      description:
        - The steps per hop as the playbook runs them, each with C(version), C(components) (steps),
          C(control_planes) and C(nodes) (host names in order) and C(steps) (host -> step).
      type: list
      elements: dict
  sample:
    status: ready
    target: 1.36.0
    hops: [1.36.0]
    first_control_plane: cp1
    nodes: [w1]
    steps:
      - {hop: 1.36.0, kind: control_plane, host: cp1, kubeadm: apply, kubelet: true, from: 1.35.0, to: 1.36.0}
      - {hop: 1.36.0, kind: node, host: w1, from: 1.35.0, to: 1.36.0}
missing:
  description: Nodes given that are not registered in the cluster (with O(kubeconfig)); they get no step.
  returned: O(kubeconfig) given
  type: list
  elements: str
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

from typing import Any  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import KubeError  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    fail_kube,
    kube_argument_spec,
    kube_client,
    run_kube_module,
)
from ansible_collections.smcp.platform.plugins.module_utils.kube_node import read_cni, read_versions  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.upgrade_plan import (  # noqa: E402
    PlanRefused,
    Table,
    default_table,
    plan,
)

ARGUMENT_SPEC = kube_argument_spec(
    {
        "target": {"type": "str", "required": True},
        "control_planes": {"type": "raw", "required": True},
        "kubelets": {"type": "raw", "default": {}},
        "etcd": {"type": "str", "default": ""},
        "containerd": {"type": "dict", "default": {}},
        "cni": {"type": "dict", "default": {}},
        "allow_multi_hop": {"type": "bool", "default": False},
        "fail_on_refusal": {"type": "bool", "default": True},
    }
)


def live_versions(module: AnsibleModule, client: Any = None) -> dict[str, Any]:
    """control_planes/kubelets as given, or read from the cluster when a kubeconfig is given."""
    p = module.params
    cps, kls = p["control_planes"], p["kubelets"]
    if not p["kubeconfig"] and client is None:
        if not isinstance(cps, dict) or not isinstance(kls, dict):
            module.fail_json(msg="control_planes and kubelets must be host -> version dicts unless kubeconfig is given")
        return {"control_planes": cps, "kubelets": kls, "missing": None}
    names_cp = list(cps) if isinstance(cps, (list, dict)) else [cps]
    names_kl = list(kls) if isinstance(kls, (list, dict)) else [kls]
    try:
        if client is None:
            client = kube_client(module)
        found = read_versions(client, [str(h) for h in names_cp], [str(h) for h in names_kl])
        cni = p["cni"] or {}
        if cni.get("name") and not cni.get("version"):
            found["cni"] = read_cni(client, str(cni["name"]))
    except KubeError as exc:
        fail_kube(module, exc, prefix="reading the cluster's versions failed: ")
    lost = [h for h in names_cp if h in found["missing"]]
    if lost:
        module.fail_json(
            msg=f"control plane(s) {', '.join(map(str, lost))} not registered as nodes; check the inventory names "
            "against the cluster's node names",
            missing=found["missing"],
        )
    return found


def execute_module(module: AnsibleModule, table: Table | None = None, client: Any = None) -> None:
    p = module.params
    found = live_versions(module, client)
    extra: dict[str, Any] = {} if found["missing"] is None else {"missing": found["missing"]}
    try:
        result = plan(
            target=p["target"],
            control_planes=found["control_planes"],
            kubelets=found["kubelets"],
            table=table or default_table(),
            allow_multi_hop=p["allow_multi_hop"],
            etcd=p["etcd"] or None,
            containerd=p["containerd"] or None,
            cni=found.get("cni", p["cni"]) or None,
        )
    except PlanRefused as exc:
        if p["fail_on_refusal"]:
            module.fail_json(msg=f"upgrade refused ({exc.rule}): {exc.message}", refused=exc.as_dict(), **extra)
        module.exit_json(changed=False, refused=exc.as_dict(), **extra)
    except ValueError as exc:  # the versions table's own errors (an unknown release)
        module.fail_json(msg=f"versions table: {exc}", refused={"rule": "unsupported_version", "message": str(exc)})
    module.exit_json(changed=False, plan=result, **extra)


def main() -> None:
    run_kube_module(ARGUMENT_SPEC, lambda module, client: execute_module(module, client=client), client_optional=True)


if __name__ == "__main__":
    main()
