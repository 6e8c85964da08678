#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: kube_objects
short_description: Server-side apply, delete or read a list of Kubernetes objects
version_added: 0.1.0
description:
  - O(state=present) applies every object of O(objects) in order with server-side apply (field manager
    O(field_manager), conflicts forced); a second run with the same objects changes nothing.
  - O(state=absent) deletes them in reverse order (objects that live in a namespace before the namespace);
    objects already gone are left alone.
  - O(state=query) only reads them and returns those that exist in RV(objects).
  - Each object is a plain manifest (C(apiVersion), C(kind), C(metadata.name), C(metadata.namespace)) of a
    built-in kind (Namespace, ServiceAccount, Secret, ConfigMap, Service, ClusterRole(Binding), Role(Binding),
    DaemonSet, Deployment, StatefulSet, CustomResourceDefinition).
author:
  - smcp developers (@smcp)
options:
  state:
    description: V(present) applies, V(absent) deletes, V(query) reads.
    type: str
    choices: [present, absent, query]
    default: present
attributes:
  check_mode:
    support: full
    description: Applies with C(dryRun=All); a deletion is only reported.
  diff_mode:
    support: none
    description: RV(results) lists what was created, changed or deleted; no before/after diff.
extends_documentation_fragment:
  - smcp.platform.kube_auth
  - smcp.platform.kube_apply
"""

EXAMPLES = r"""
- name: Apply the in-cluster Prometheus objects
  smcp.platform.kube_objects:
    objects: "{{ manifests }}"
  delegate_to: localhost
  run_once: true
  module_defaults:
    group/smcp.platform.kube:
      kubeconfig: "{{ smcp_kubeconfig }}"

- name: Read a Secret (no_log - its data is returned)
  smcp.platform.kube_objects:
    state: query
    objects: [{apiVersion: v1, kind: Secret, metadata: {name: reader-token, namespace: monitoring}}]
    kubeconfig: "{{ smcp_kubeconfig }}"
  no_log: true
  register: found
"""

RETURN = r"""
results:
  description: C([object, created|changed|unchanged|deleted|absent|present]) per object, in the order handled.
  returned: success
  type: list
  elements: list
  sample: [["Namespace smcp-monitoring", "created"], ["Deployment smcp-monitoring/prometheus", "unchanged"]]
objects:
  description: With O(state=query), the objects that exist, as the API server returns them.
  returned: state is query
  type: list
  elements: dict
"""

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import Applier, object_name  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.kube_module import (  # noqa: E402
    kube_argument_spec,
    run_kube_module,
)

ARGUMENT_SPEC = kube_argument_spec(
    {"state": {"type": "str", "choices": ["present", "absent", "query"], "default": "present"}},
    apply=True,
)


def execute_module(module, client):
    p = module.params
    applier = Applier(client, p["field_manager"])
    if p["state"] == "query":
        found = [obj for obj in (applier.get(applier.object_path(o)) for o in p["objects"]) if obj is not None]
        module.exit_json(changed=False, objects=found, results=[])
    if p["state"] == "absent":
        results = [(object_name(o), applier.delete(o, dry_run=module.check_mode)) for o in reversed(p["objects"])]
        module.exit_json(changed=any(r[1] == "deleted" for r in results), results=[list(r) for r in results])
    results = applier.apply_all(p["objects"], dry_run=module.check_mode)
    module.exit_json(changed=any(r[1] != "unchanged" for r in results), results=[list(r) for r in results])


def main():
    run_kube_module(ARGUMENT_SPEC, execute_module)


if __name__ == "__main__":
    main()
