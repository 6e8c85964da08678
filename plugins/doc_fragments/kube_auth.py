# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Options shared by every module that talks to the Kubernetes API (module_utils/kube_module.py)."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  kubeconfig:
    description:
      - Path of the kubeconfig on the controller (the operator's admin kubeconfig, C(smcp_kubeconfig)).
      - Give it once for the play with C(module_defaults) and the action group C(group/smcp.platform.kube),
        with C(kubeconfig) set to C({{ smcp_kubeconfig }}) under it, as the collection's playbooks do.
    type: path
  context:
    description: Context in the kubeconfig. Default is its current context.
    type: str
notes:
  - Runs on the controller (C(delegate_to=localhost)) with the C(kubernetes) Python library.
  - A failed API call reports the call, its HTTP status in C(status) (0 when the API server did not
    answer) and what to do in C(fix).
  - In check mode the client refuses to send a write that is not a server-side dry run.
requirements:
  - kubernetes (Python library, on the controller)
"""
