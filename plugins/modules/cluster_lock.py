#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cluster_lock
short_description: Take, release or read the cluster-wide operation lock (an annotation on kube-system)
version_added: 0.1.0
description:
  - Long operations (upgrade) take the lock so a second one refuses to start. The lock is the
    annotation C(smcp.io/operation-lock) on the C(kube-system) namespace, holding who holds it
    (O(holder)), the operation, a detail and since when.
  - Taking it is a read-modify-write with the namespace's resourceVersion, so of two operations
    racing for the lock exactly one wins.
  - O(state=present) fails when another holder has the lock (unless O(force)); taking it again with
    the same holder (a resumed run) changes nothing.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - smcp.platform.kube_auth
options:
  state:
    description: V(present) takes the lock, V(absent) releases it, V(query) only reads it.
    type: str
    choices: [present, absent, query]
    default: query
  holder:
    description: Who takes or releases it (for example C(upgrade@<cluster>)); required unless O(state=query).
    type: str
  operation:
    description: Operation name recorded in the lock.
    type: str
    default: upgrade
  detail:
    description: Free text recorded in the lock (e.g. the target version).
    type: str
    default: ""
  force:
    description: Take or release the lock even when another holder has it (a holder that died).
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: Reports whether the lock would be taken or released.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Lock the cluster for the upgrade
  smcp.platform.cluster_lock:
    state: present
    holder: "upgrade@{{ smcp_cluster_name }}"
    detail: "to 1.35.1"
    kubeconfig: "{{ smcp_kubeconfig }}"  # or once for the play: module_defaults group/smcp.platform.kube
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
lock:
  description: The lock after the call (null when free); holder, operation, detail, since.
  returned: always
  type: dict
  sample: {holder: upgrade@prod, operation: upgrade, detail: to 1.35.1, since: "2026-11-25T15:00:00Z"}
previous:
  description: The lock before the call (null when it was free).
  returned: always
  type: dict
"""

from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    kube_argument_spec,
    run_kube_module,
)
from ansible_collections.smcp.platform.plugins.module_utils.kube_node import (  # noqa: E402
    LockHeld,
    acquire,
    read_lock,
    release,
)

ARGUMENT_SPEC = kube_argument_spec(
    {
        "state": {"type": "str", "choices": ["present", "absent", "query"], "default": "query"},
        "holder": {"type": "str"},
        "operation": {"type": "str", "default": "upgrade"},
        "detail": {"type": "str", "default": ""},
        "force": {"type": "bool", "default": False},
    }
)
# Taking or releasing the lock needs a holder; AnsibleModule refuses the task without one before any call.
REQUIRED_IF = [("state", "present", ("holder",)), ("state", "absent", ("holder",))]


def execute_module(module, client):
    p = module.params
    current = read_lock(client)[0]
    if p["state"] == "query":
        module.exit_json(changed=False, lock=current, previous=current)
    if not p["holder"].strip():
        module.fail_json(msg=f"holder is empty with state={p['state']}; give who takes the lock (e.g. upgrade@prod)")
    mine = current is not None and current.get("holder") == p["holder"]
    try:
        if p["state"] == "present":
            if module.check_mode:
                if current and not mine and not p["force"]:
                    acquire(client, p["holder"], p["operation"], p["detail"], force=False)  # raises LockHeld
                module.exit_json(changed=not mine, lock=current, previous=current)
            changed, lock = acquire(client, p["holder"], p["operation"], p["detail"], force=p["force"])
            module.exit_json(changed=changed, lock=lock, previous=current)
        if module.check_mode:
            module.exit_json(changed=current is not None and (mine or p["force"]), lock=current, previous=current)
        changed = release(client, p["holder"], force=p["force"])[0]
        module.exit_json(changed=changed, lock=None, previous=current)
    except LockHeld as exc:
        module.fail_json(msg=str(exc), lock=exc.holder, previous=current)


def main():
    run_kube_module(ARGUMENT_SPEC, execute_module, required_if=REQUIRED_IF)


if __name__ == "__main__":
    main()
