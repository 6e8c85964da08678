# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""The module side of the Kubernetes client layer: shared options, client, check mode, error mapping.

Every module that talks to the Kubernetes API declares its options with :func:`kube_argument_spec`
(the auth options of the ``smcp.platform.kube_auth`` doc fragment, given once per play with
``module_defaults: group/smcp.platform.kube``), and runs with :func:`run_kube_module`, which builds
the :class:`~kube_client.KubeClient` (refusing writes in check mode) and turns a ``KubeError`` into
one ``fail_json`` that names the call, the HTTP status and what to do about it.
"""

from __future__ import annotations

import copy
from typing import Any, Callable, NoReturn

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.smcp.platform.plugins.module_utils.kube_client import (
    KUBERNETES_IMPORT_ERROR,
    KubeClient,
    KubeError,
)

# The options of doc fragment smcp.platform.kube_auth (plugins/doc_fragments/kube_auth.py).
KUBE_AUTH_SPEC: dict[str, dict[str, Any]] = {
    "kubeconfig": {"type": "path"},
    "context": {"type": "str"},
}

# The options of doc fragment smcp.platform.kube_apply (plugins/doc_fragments/kube_apply.py).
KUBE_APPLY_SPEC: dict[str, dict[str, Any]] = {
    "objects": {"type": "list", "elements": "dict", "required": True},
    "field_manager": {"type": "str", "default": "smcp"},
}

# What to do about an answer, by HTTP status (0: no answer at all).
_FIXES = {
    0: "check the server address in the kubeconfig and that the API server runs and is reachable from the controller",
    401: "the API server rejected the kubeconfig's credentials: use a current admin kubeconfig",
    403: "the kubeconfig's user lacks the RBAC permission for this call: use the cluster's admin kubeconfig",
    409: "the object changed while this ran: run again",
    422: "the API server rejected the object as invalid: correct the value it names",
    429: "the API server is throttling: run again later",
}


def kube_argument_spec(spec: dict[str, dict[str, Any]], apply: bool = False) -> dict[str, dict[str, Any]]:
    """The module's own options after a copy of the shared auth options (and, with ``apply``, the apply options)."""
    merged = copy.deepcopy(KUBE_AUTH_SPEC)
    if apply:
        merged.update(copy.deepcopy(KUBE_APPLY_SPEC))
    merged.update(spec)
    return merged


def fix_for(status: int | None) -> str:
    if status is None:
        return ""
    if status in _FIXES:
        return _FIXES[status]
    if status >= 500:
        return "the API server failed (HTTP %d): look at its log, then run again" % status
    return ""


def fail_kube(module: AnsibleModule, exc: KubeError, prefix: str = "", **extra: Any) -> NoReturn:
    """fail_json for a KubeError: msg with the call and the fix, ``status`` (0 = no answer) and ``fix``.

    ``status`` is null when no call was made (kubeconfig unreadable, library missing).
    """
    fix = fix_for(exc.status)
    msg = prefix + str(exc) + (" (fix: %s)" % fix if fix and "fix:" not in str(exc) else "")
    module.fail_json(msg=msg, status=exc.status, fix=fix, **extra)
    raise AssertionError("unreachable")  # fail_json exits; for type checkers and mocked modules


def kube_client(module: AnsibleModule, timeout: float = 10) -> KubeClient:
    """The client for the module's kubeconfig/context; in check mode it refuses writes without dryRun."""
    if KUBERNETES_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("kubernetes"), exception=str(KUBERNETES_IMPORT_ERROR))
    if not module.params.get("kubeconfig"):
        module.fail_json(
            msg="kubeconfig is missing: give the admin kubeconfig on the controller, once for the play with "
            "module_defaults: {group/smcp.platform.kube: {kubeconfig: ...}} or on the task",
        )
    try:
        return KubeClient(module.params["kubeconfig"], module.params.get("context"), timeout, module.check_mode)
    except KubeError as exc:
        fail_kube(module, exc)


def run_kube_module(
    argument_spec: dict[str, dict[str, Any]],
    execute: Callable[[AnsibleModule, Any], None],
    timeout_option: str | None = None,
    client_optional: bool = False,
    **module_kwargs: Any,
) -> None:
    """Build the module, its client, run ``execute(module, client)`` and map a KubeError to fail_json.

    ``timeout_option`` names the module's per-request timeout option; with ``client_optional`` and no
    kubeconfig given, ``execute`` gets ``None`` instead of a client.
    """
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True, **module_kwargs)
    client = None
    if not (client_optional and not module.params.get("kubeconfig")):
        client = kube_client(module, module.params[timeout_option] if timeout_option else 10)
    try:
        execute(module, client)
    except KubeError as exc:
        fail_kube(module, exc)
