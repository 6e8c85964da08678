"""Which variables a user may set through the API: host `vars`, cluster `options`, job `params.extra_vars`.

Values that come through the API are data, never code (issue 12). A variable reaches Ansible only when
this policy allows its name in that scope and its value fits the role's spec:

- Allowed in every scope: the options declared in `meta/argument_specs.yml` by the roles the API's
  playbooks run (API_ENTRY_POINTS), except the few listed below.
- Allowed per host only: `ansible_python_interpreter`, when its value is an absolute path matching
  INTERPRETER_RE (a path cannot run anything but that interpreter).
- Refused everywhere with a 422 naming the variable:
  * the connection variables the API sets from the host's own fields (MANAGED_HOST_VARS: use the field);
  * every other `ansible_*` variable: connection, executable and privilege-escalation variables
    (`ansible_connection`, `ansible_ssh_common_args`, `ansible_*_executable`, `ansible_become_*`,
    `ansible_shell_*`, ...) choose which program runs where, so they are code;
  * CONTROLLER_OPTIONS: role options that name files or hosts on the management host itself, include
    task files, or carry a secret the store would show;
  * API_GROUP_VARS: the inventory groups, which the API builds from the hosts' roles;
  * any name that is no option of those roles (typo or foreign variable).
- Refused per host and per cluster (allowed per job): MANAGED_CLUSTER_VARS, which come from the
  cluster's own fields, and JOB_ONLY_OPTIONS, which confirm a destructive step once, not forever.
- Refused in any scope: a string anywhere in the value (keys included) that carries an SSH option
  that runs a command (`ProxyCommand`, `LocalCommand`, ...) or an `-o` option (defence in depth).

Jinja in a value (`{{ ... }}`) is accepted as data: the job marks every API value unsafe, so Ansible
never templates it. docs/variables.md is the user-facing copy of this policy; keep them together.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from smcp_api.collection import CollectionNotFound
from smcp_api.jobs import argspecs

Scope = Literal["host", "cluster", "job"]
DOCS = "docs/variables.md"

# (role, entry point) pairs whose options the API's operations use (operations.OPERATIONS -> playbooks).
# Not here: kube_artifacts/bundle (builds a bundle on the controller), mgmt_plane, monitoring and tunnel
# (playbooks the API does not run; they configure the management host itself).
API_ENTRY_POINTS: tuple[tuple[str, str], ...] = (
    ("smcp", "main"),
    ("preflight", "main"),
    ("host_prep", "main"),
    ("containerd", "main"),
    ("etcd", "main"),
    ("etcd", "backup"),
    ("loadbalancer", "main"),
    ("kube_artifacts", "main"),
    ("control_plane", "main"),
    ("node", "main"),
    ("cni", "main"),
    ("upgrade", "main"),
    ("remove_node", "main"),
    ("reset", "main"),
    ("certs", "main"),
)

MANAGED_HOST_VARS: dict[str, str] = {
    "ansible_host": "address",
    "ansible_user": "ssh_user",
    "ansible_port": "ssh_port",
    "ansible_ssh_private_key_file": "credential_id",
    "ansible_private_key_file": "credential_id",
    "ansible_password": "credential_id",
    "ansible_ssh_pass": "credential_id",
    "ansible_become_password": "credential_id",
}
"""Connection variables the API derives from a host's fields: variable -> the field to use instead."""

SAFE_ANSIBLE_VARS: dict[str, re.Pattern[str]] = {
    "ansible_python_interpreter": re.compile(r"^/usr/(local/)?bin/python3(\.\d{1,2})?$"),
}
"""The only `ansible_*` variables a user may set (per host), each with the pattern its value must match."""
INTERPRETER_RE = SAFE_ANSIBLE_VARS["ansible_python_interpreter"]

CONTROLLER_OPTIONS: dict[str, str] = {
    "upgrade_host_tasks": "names a task file the upgrade includes: that is code, not data",
    "containerd_archive_src": "is a file on the management host that would be copied to the hosts",
    "etcd_archive_src": "is a file on the management host that would be copied to the hosts",
    "etcd_restore_snapshot": "is a file on the management host that would be copied to the hosts",
    "etcd_backup_dir": "is a directory on the management host; the API keeps snapshots in its own backup directory",
    "smcp_kubeconfig": "is written on the management host; the API decides where",
    "cni_manifest_dest": "is written on the management host; the API decides where",
    "smcp_bundle_dir": "is a directory on the management host; give smcp_bundle_url instead",
    "kube_artifacts_bundle_dir": "is a directory on the management host; give smcp_bundle_url instead",
    "kube_artifacts_cache_dir": "is a directory on the management host; the API decides where",
    "etcd_pki_ca_host": "names the host CA tasks are delegated to (it could be the management host); "
    "the first etcd member is used",
    "etcd_ca_key": "is a private key: the store would keep it in the job's or cluster's parameters, readable "
    "by every viewer; let the role create the etcd CA",
}
"""Role options the API refuses in every scope: name -> why."""

API_GROUP_VARS: dict[str, str] = {
    "smcp_etcd_group": "etcd",
    "smcp_control_plane_group": "control_plane",
    "smcp_workers_group": "workers",
}
"""Group-name options: the API builds these groups from the hosts' roles."""

MANAGED_CLUSTER_VARS: dict[str, str] = {
    "smcp_cluster_name": "name",
    "smcp_kubernetes_version": "kubernetes_version",
    "smcp_cni": "cni",
    "smcp_pod_cidr": "pod_cidr",
    "smcp_service_cidr": "service_cidr",
    "smcp_control_plane_endpoint": "control_plane_endpoint",
}
"""Options the API sets from a cluster's fields (refused in host vars and cluster options)."""

JOB_ONLY_OPTIONS = frozenset({"reset_confirm", "upgrade_force_unlock", "etcd_restore_force", "remove_node_force"})
"""Confirmations of a destructive step: per job only, so they never stay switched on."""

VAR_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SSH_OPTION_RE = re.compile(
    r"(proxycommand|proxyjump|localcommand|permitlocalcommand|knownhostscommand|remotecommand"
    r"|pkcs11provider|securitykeyprovider|(?:^|\s)-o\s*[a-z])",
    re.IGNORECASE,
)


def _ansible_problem(field: str, name: str, value: Any, scope: Scope) -> str | None:
    if name in MANAGED_HOST_VARS:
        source = MANAGED_HOST_VARS[name]
        if scope == "host":
            return f"{field}.{name}: '{name}' is set by the API; use the host's '{source}' field instead"
        return (
            f"{field}.{name}: connection variables are set by the API from each host's '{source}' field; "
            f"remove '{name}'"
        )
    pattern = SAFE_ANSIBLE_VARS.get(name)
    if pattern is not None and scope == "host":
        if isinstance(value, str) and pattern.match(value):
            return None
        return (
            f"{field}.{name}: {value!r} is not allowed; give an absolute path to a Python 3 interpreter "
            f"such as /usr/bin/python3 or /usr/local/bin/python3.11 (pattern {pattern.pattern})"
        )
    if pattern is not None:
        return f"{field}.{name}: '{name}' may only be set per host; put it in the host's vars"
    return (
        f"{field}.{name}: Ansible connection, executable and privilege-escalation variables are refused (they "
        f"choose which program runs where); remove '{name}'. Allowed variables: {DOCS}"
    )


def _walk(value: Any, path: str) -> tuple[str, str] | None:
    """The first (path, string) in a nested value whose text carries an SSH option, else None."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            if SSH_OPTION_RE.search(item):
                return where, item
        elif isinstance(item, dict):
            for key, sub in item.items():
                stack.append((key, f"{where} (a key)"))
                stack.append((sub, f"{where}.{key}"))
        elif isinstance(item, list | tuple):
            stack.extend((sub, f"{where}[{i}]") for i, sub in enumerate(item))
    return None


def static_problems(field: str, values: dict[str, Any], scope: Scope) -> list[str]:
    """Problems found without the roles' specs: names, `ansible_*`, SSH options in values (empty when fine)."""
    problems: list[str] = []
    for name, value in values.items():
        if not isinstance(name, str) or not VAR_NAME_RE.match(name):
            problems.append(
                f"{field}: variable name '{name}' is not valid; use letters, digits and '_' (not first a digit)"
            )
            continue
        if name.lower().startswith("ansible_"):
            if problem := _ansible_problem(field, name, value, scope):
                problems.append(problem)
            continue
        if found := _walk(value, f"{field}.{name}"):
            where, text = found
            option = SSH_OPTION_RE.search(text).group(0).strip()  # type: ignore[union-attr]
            problems.append(
                f"{where}: the value carries the SSH option '{option}'; values are data and may not carry SSH "
                "options (the API sets the connection from the host's fields)"
            )
    return problems


def allowed_names(collection_dir: Path, scope: Scope) -> dict[str, dict[str, Any]]:
    """The role options a user may set in `scope`, by name, with their specs."""
    options = argspecs.role_options(collection_dir, API_ENTRY_POINTS)
    if not options:
        raise CollectionNotFound(
            f"no role argument specs under {collection_dir / 'roles'} (roles/*/meta/argument_specs.yml); the API "
            "checks variables against them: install the smcp.platform collection or set SMCP_COLLECTIONS_PATH"
        )
    refused = set(CONTROLLER_OPTIONS) | set(API_GROUP_VARS)
    if scope != "job":
        refused |= set(MANAGED_CLUSTER_VARS) | JOB_ONLY_OPTIONS
    return {name: spec for name, spec in options.items() if name not in refused}


def _name_problem(field: str, name: str, scope: Scope, allowed: dict[str, Any]) -> str:
    if name in CONTROLLER_OPTIONS:
        return f"{field}.{name}: refused through the API: it {CONTROLLER_OPTIONS[name]}; remove '{name}'"
    if name in API_GROUP_VARS:
        return (
            f"{field}.{name}: the API builds the inventory groups from the hosts' roles; remove '{name}' and give "
            f"hosts the role {API_GROUP_VARS[name]}"
        )
    if name in MANAGED_CLUSTER_VARS:
        return f"{field}.{name}: set by the API from the cluster's '{MANAGED_CLUSTER_VARS[name]}' field; use that field"
    if name in JOB_ONLY_OPTIONS:
        return f"{field}.{name}: a confirmation for one job; give it in the job's params.extra_vars, not per {scope}"
    near = sorted(o for o in allowed if o.split("_")[0] == name.split("_")[0])[:8]
    hint = f" (options of that role: {', '.join(near)})" if near else ""
    return (
        f"{field}.{name}: not an option of any smcp.platform role the API runs; remove it or fix the name{hint}. "
        f"Allowed variables: {DOCS} and the roles' meta/argument_specs.yml"
    )


def problems(field: str, values: dict[str, Any], scope: Scope, collection_dir: Path) -> list[str]:
    """Every problem with `values` set in `scope` (empty when the policy allows them all)."""
    found = static_problems(field, values, scope)
    allowed = allowed_names(collection_dir, scope)
    checked = {}
    for name, value in values.items():
        if not isinstance(name, str) or not VAR_NAME_RE.match(name) or name.lower().startswith("ansible_"):
            continue
        if name not in allowed:
            found.append(_name_problem(field, name, scope, allowed))
        else:
            checked[name] = value
    found += argspecs.check_values(field, checked, allowed)
    return found


def allowed_host_vars(values: dict[str, Any], collection_dir: Path) -> dict[str, Any]:
    """The part of a stored host's vars the policy allows today (hosts stored before it may hold more).

    The job inventory builder calls this, so a variable the policy refuses never reaches Ansible, whatever
    the store holds. A variable is kept only when it alone passes `problems(..., "host", ...)`.
    """
    return {
        name: value
        for name, value in (values or {}).items()
        if not problems("vars", {name: value}, "host", collection_dir)
    }


def refused_host_vars(values: dict[str, Any], collection_dir: Path) -> list[str]:
    """Why each stored host variable that `allowed_host_vars` drops is refused (for a job event)."""
    out: list[str] = []
    for name, value in (values or {}).items():
        out += problems("vars", {name: value}, "host", collection_dir)
    return out
