#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: node_preflight
short_description: Check that a host can become an smcp Kubernetes node, in one round-trip
version_added: "0.1.0"
description:
  - Collects, in one pass over C(/proc), C(/sys) and C(/etc), everything needed to decide whether the host
    can join an smcp cluster in the given node roles, and checks it.
  - "Checks (by id): C(os_supported) (Debian 12/13, Ubuntu 22.04/24.04, RHEL-family 9; Debian 12 is the tested one),
    C(arch), C(cpu), C(memory), C(disk) (free space on O(disk_paths)), C(swap), C(cgroup) (version and controllers),
    C(kernel_overlay), C(kernel_br_netfilter), C(kernel_modules), C(ip_forward), C(time_sync), C(hostname) (RFC 1123),
    C(node_ip) (present on an interface), C(ports) (already in use), C(pkg_lock) (held package-manager lock),
    C(existing_install) (Kubernetes, etcd or a container runtime already there)."
  - Problems that the C(host_prep) role fixes (module not loaded, C(ip_forward) or C(bridge-nf-call-iptables) off)
    are warnings; the others are failures. O(warn_only) downgrades chosen checks to warnings.
  - The module never changes the host and never fails because a check failed (unless O(fail_on_problems=true));
    it returns the problems so a caller can aggregate them over many hosts (see the C(smcp.platform.preflight) role).
  - Listening ports are read from C(/proc/net/tcp) and C(/proc/net/tcp6), package locks are tested with a
    non-blocking C(F_GETLK) on files opened read-only, clock synchronisation with C(adjtimex) in read mode.
  - Also returns the distribution facts (as C(setup) with C(gather_subset=distribution) would), so the roles
    that run after it on the host need no fact gathering of their own.
author:
  - smcp developers (@smcp)
options:
  node_ip:
    description:
      - The address other nodes will use to reach this node (normally C(smcp_node_ip)). It must be configured
        on one of the host's interfaces.
    type: str
    required: true
  roles:
    description:
      - The node roles of the host. They decide the minimums and the ports that must be free.
    type: list
    elements: str
    choices: [control_plane, etcd, worker]
    default: []
  expected_hostname:
    description:
      - The node name the host will get from C(host_prep) (normally the inventory name). When set, the
        C(hostname) check validates this name and only warns if the current hostname differs.
      - When not set, the current hostname is validated.
    type: str
  cluster_name:
    description:
      - The cluster the host is meant for (normally C(smcp_cluster_name)).
      - A host whose marker file C(/etc/smcp/cluster) names this cluster is already a member (a re-run);
        its Kubernetes and etcd installation, and the ports its own components hold, are then expected.
        A marker naming another cluster is a failure of C(existing_install).
    type: str
  sandbox:
    description:
      - The host is an smcp sandbox host sharing the machine's kernel (C(smcp_sandbox)). Swap, memory and clock
        are then the machine's; messages say so and an unsynchronized clock is only a warning.
    type: bool
    default: false
  min_cpus:
    description:
      - Minimum CPUs per role, merged over the defaults C(control_plane=2), C(etcd=1), C(worker=1).
        A host in several roles must meet the largest.
    type: dict
    default: {}
  min_memory_mb:
    description:
      - Minimum memory (MiB, MemTotal) per role, merged over the defaults C(control_plane=1700), C(etcd=1024),
        C(worker=1024).
    type: dict
    default: {}
  min_disk_mb:
    description:
      - Minimum free space (MiB) per role required on each filesystem holding one of O(disk_paths), merged over
        the defaults C(control_plane=4096), C(etcd=2048), C(worker=4096).
    type: dict
    default: {}
  disk_paths:
    description:
      - Paths whose filesystems need the free space of O(min_disk_mb). A filesystem is checked once.
    type: list
    elements: path
    default: [/, /var]
  extra_ports:
    description:
      - TCP ports that must be free in addition to those of the roles
        (control_plane 6443, 10250, 10256, 10257, 10259; etcd 2379, 2380; worker 10250, 10256).
    type: list
    elements: int
    default: []
  kernel_modules:
    description:
      - Further kernel modules the host needs (normally C(host_prep_kernel_modules) other than C(overlay) and
        C(br_netfilter), which are always checked). Check C(kernel_modules) fails for one that is neither loaded,
        built in nor loadable, or that C(host_prep) could not load (sandbox host, kernel without module support,
        C(kernel.modules_disabled=1), no C(modprobe)); one that host_prep will load is a warning.
    type: list
    elements: str
    default: []
  warn_only:
    description:
      - Check ids whose failures are reported as warnings instead.
    type: list
    elements: str
    default: []
  fail_on_problems:
    description:
      - Fail the task when a check fails (the message lists every failure). The default returns the problems
        without failing, for aggregation by the caller.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    description: The module only reads; it runs the same in check mode.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
  platform:
    support: full
    platforms: posix
    description: Linux targets (reads C(/proc) and C(/sys)).
notes:
  - Uses only the Python standard library on the target; no C(ss), C(ip) or C(timedatectl) needed.
seealso:
  - name: smcp.platform.preflight role
    description: Runs this module on every host, adds cross-host checks and fails once with every problem.
    link: https://github.com/smcp/platform/blob/main/roles/preflight/README.md
"""

EXAMPLES = r"""
- name: Check a host that will be a control-plane and etcd node
  smcp.platform.node_preflight:
    node_ip: 192.0.2.10
    roles: [control_plane, etcd]
  register: node

- name: Check a small worker, accepting swap and little memory as warnings, failing on any other problem
  smcp.platform.node_preflight:
    node_ip: "{{ ansible_host }}"
    roles: [worker]
    min_memory_mb:
      worker: 768
    warn_only: [swap, memory]
    fail_on_problems: true
"""

RETURN = r"""
msg:
  description: One-line summary (counts of failures and warnings).
  returned: always
  type: str
  sample: "node preflight: 1 failure(s), 2 warning(s)"
preflight:
  description: Everything the module found.
  returned: always
  type: dict
  contains:
    node_ip:
      description: The O(node_ip) that was checked.
      type: str
      sample: 192.0.2.10
    roles:
      description: The O(roles) the host was checked for.
      type: list
      elements: str
      sample: [control_plane, etcd]
    node_name:
      description: The node name checked (O(expected_hostname), else the current hostname).
      type: str
      sample: cp1
    sandbox:
      description: The O(sandbox) flag.
      type: bool
    checks:
      description: Check id to C(ok), C(warning) or C(failure).
      type: dict
      sample: {"swap": "ok", "memory": "failure"}
    failures:
      description:
        - Failed checks. Each has C(id), C(severity), C(what), C(found), C(need), C(fix) and C(msg).
        - 'C(msg) reads V([<id>] <what> (found X, need Y\); fix: <how>).'
      type: list
      elements: dict
      sample:
        - id: memory
          severity: failure
          what: too little memory for role control_plane
          found: 980 MiB
          need: at least 1700 MiB
          fix: give the machine more memory, or lower preflight_min_memory_mb['control_plane']
          msg: "[memory] too little memory for role control_plane (found 980 MiB, need at least 1700 MiB); fix: ..."
    warnings:
      description: Problems that do not block (same keys as RV(preflight.failures)).
      type: list
      elements: dict
    facts:
      description: The collected facts (os, arch, cpus, memory_mb, swap, disk, cgroup, kernel, time_sync, hostname,
        addresses, networks, listening_ports, port_conflicts, pkg_locks, existing, smcp_cluster).
      type: dict
ansible_facts:
  description: The distribution facts, collected by Ansible's own distribution fact collector.
  returned: success
  type: dict
  contains:
    distribution:
      description: Distribution name.
      type: str
      sample: Debian
    distribution_major_version:
      description: Major version of the distribution.
      type: str
      sample: "12"
    os_family:
      description: OS family.
      type: str
      sample: Debian
"""

import re  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.facts.system.distribution import DistributionFactCollector  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import ALL_CHECK_IDS, NODE_ROLES  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.preflight.host import HostView  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.preflight.problems import unknown_check_ids  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.preflight.report import run_preflight  # noqa: E402

ARGUMENT_SPEC = dict(
    node_ip=dict(type="str", required=True),
    roles=dict(type="list", elements="str", choices=list(NODE_ROLES), default=[]),
    expected_hostname=dict(type="str"),
    cluster_name=dict(type="str"),
    sandbox=dict(type="bool", default=False),
    min_cpus=dict(type="dict", default={}),
    min_memory_mb=dict(type="dict", default={}),
    min_disk_mb=dict(type="dict", default={}),
    disk_paths=dict(type="list", elements="path", default=["/", "/var"]),
    extra_ports=dict(type="list", elements="int", default=[]),
    kernel_modules=dict(type="list", elements="str", default=[]),
    warn_only=dict(type="list", elements="str", default=[]),
    fail_on_problems=dict(type="bool", default=False),
)


def execute_module(module):
    params = module.params
    unknown = unknown_check_ids(params["warn_only"])
    if unknown:
        module.fail_json(
            msg="warn_only: unknown check id(s) %s; fix: use ids from %s"
            % (", ".join(unknown), ", ".join(ALL_CHECK_IDS)),
            warn_only=params["warn_only"],
        )
    for name in params["kernel_modules"]:
        if not re.match(r"^[A-Za-z0-9_-]{1,64}$", name):
            module.fail_json(
                msg="kernel_modules: %r is not a kernel module name; fix: give names like ip_vs "
                "(letters, digits, _ and -, at most 64)" % name
            )
    for field in ("min_cpus", "min_memory_mb", "min_disk_mb"):
        for key, value in params[field].items():
            if key not in NODE_ROLES:
                module.fail_json(msg="%s: unknown role %r; fix: use %s" % (field, key, ", ".join(NODE_ROLES)))
            try:
                params[field][key] = int(value)
            except (TypeError, ValueError):
                module.fail_json(msg="%s[%s]: %r is not an integer; fix: give a whole number" % (field, key, value))

    result = run_preflight(HostView(), params)
    summary = "node preflight: %d failure(s), %d warning(s)" % (len(result["failures"]), len(result["warnings"]))
    if params["fail_on_problems"] and result["failures"]:
        module.fail_json(
            msg="%s: %s" % (summary, "; ".join(item["msg"] for item in result["failures"])), preflight=result
        )
    module.exit_json(changed=False, msg=summary, preflight=result, ansible_facts=distribution_facts(module))


def distribution_facts(module):
    """The facts C(setup) returns for C(gather_subset=distribution), from the same collector."""
    facts = DistributionFactCollector().collect(module=module)
    return {"ansible_" + key: value for key, value in facts.items()}


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
