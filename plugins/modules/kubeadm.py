#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: kubeadm
short_description: Check a kubeadm configuration with kubeadm, then run kubeadm init or join with it
version_added: 0.1.0
description:
  - Runs C(kubeadm config validate --config <config>) (kubeadm's own checks of a file written by
    M(smcp.platform.kubeadm_config)), then, when O(run=true), C(kubeadm init --config <config>)
    (O(command=init), with C(--upload-certs) when O(upload_certs=true)) or C(kubeadm join --config <config>)
    (O(command=join)). One task instead of a validate command, the run and a failure report.
  - kubeadm prints bootstrap tokens and the certificate key; every output this module returns or puts
    in a failure message has them replaced by C(<token>) and C(<key>), so the task needs no C(no_log).
  - A rejected configuration or a failed run fails naming the command, its exit code and the last
    O(tail) characters of its output (redacted).
author:
  - smcp developers (@smcp)
options:
  command:
    description: V(init) on the first control plane, V(join) on every other node.
    type: str
    choices: [init, join]
    required: true
  config:
    description: The kubeadm configuration file (on the host).
    type: path
    required: true
  run:
    description:
      - V(false) only validates the configuration (for example when the node already runs and the file
        changed). V(true) runs O(command) after the validation.
    type: bool
    default: true
  upload_certs:
    description: Add C(--upload-certs) to C(kubeadm init) (the other control planes fetch the certificates).
    type: bool
    default: false
  binary:
    description: Path of kubeadm.
    type: path
    default: /usr/local/bin/kubeadm
  tail:
    description: How many characters of the end of kubeadm's output a failure message keeps (0 keeps all).
    type: int
    default: 2000
attributes:
  check_mode:
    support: full
    description: Runs nothing; reports a change when O(run=true) (kubeadm would run).
  diff_mode:
    support: none
    description: The configuration's diff comes from M(smcp.platform.kubeadm_config).
notes:
  - kubeadm init and join are not idempotent; decide with a probe of the node (C(/etc/kubernetes/admin.conf),
    C(kubelet.conf)) whether to run, as the control_plane and node roles do.
seealso:
  - module: smcp.platform.kubeadm_config
"""

EXAMPLES = r"""
- name: Run kubeadm init on the first control plane
  smcp.platform.kubeadm:
    command: init
    config: /etc/kubernetes/smcp/kubeadm-init.yaml
    upload_certs: true
    run: "{{ not initialized }}"

- name: Join a worker
  smcp.platform.kubeadm:
    command: join
    config: /etc/kubernetes/smcp/kubeadm-join.yaml
"""

RETURN = r"""
cmd:
  description: The last kubeadm command line run (or that would run, in check mode).
  returned: always
  type: list
  elements: str
  sample: [/usr/local/bin/kubeadm, join, --config, /etc/kubernetes/smcp/kubeadm-join.yaml]
rc:
  description: Exit code of the last command run (0 in check mode).
  returned: always
  type: int
  sample: 0
stdout:
  description: Its standard output, tokens and keys replaced.
  returned: always
  type: str
stderr:
  description: Its standard error, tokens and keys replaced.
  returned: always
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.kubeadm_output import redact  # noqa: E402

ARGUMENT_SPEC = dict(
    command=dict(type="str", choices=["init", "join"], required=True),
    config=dict(type="path", required=True),
    run=dict(type="bool", default=True),
    upload_certs=dict(type="bool", default=False),
    binary=dict(type="path", default="/usr/local/bin/kubeadm"),
    tail=dict(type="int", default=2000),
)


def _run(module: AnsibleModule, argv: list[str], what: str) -> dict:
    rc, out, err = module.run_command(argv)
    result = dict(cmd=argv, rc=rc, stdout=redact(out, 0), stderr=redact(err, 0))
    if rc != 0:
        output = redact(" ".join(part for part in (err.strip(), out.strip()) if part), module.params["tail"])
        module.fail_json(msg="%s failed (rc %d): %s" % (what, rc, output), **result)
    return result


def execute_module(module: AnsibleModule) -> None:
    params = module.params
    kubeadm, config, command = params["binary"], params["config"], params["command"]
    run = [kubeadm, command, "--config", config] + (
        ["--upload-certs"] if command == "init" and params["upload_certs"] else []
    )
    if module.check_mode:
        module.exit_json(changed=params["run"], cmd=run if params["run"] else [], rc=0, stdout="", stderr="")
    result = _run(module, [kubeadm, "config", "validate", "--config", config], "kubeadm config validate of %s" % config)
    if params["run"]:
        result = _run(module, run, "kubeadm %s" % command)
    module.exit_json(changed=params["run"], **result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
