#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cni_sriov_pf
short_description: Check that SR-IOV physical functions exist and can provide the VFs asked for
version_added: 0.1.0
description:
  - Reads sysfs on the node (C(/sys/class/net/<pf>/device/sriov_totalvfs), C(sriov_numvfs)) and fails,
    before anything is changed, when a PF is missing, does not support SR-IOV or supports fewer
    VFs than requested. Returns the current VF counts.
  - Creating the VFs is done by the C(smcp-sriov-vfs) systemd unit the C(cni) role installs.
author:
  - smcp developers (@smcp)
options:
  pfs:
    description: C([{name, num_vfs, resource_name}]) for this node.
    type: list
    elements: dict
    required: true
  sysfs:
    description: Root of sysfs (tests point it at a fake tree).
    type: path
    default: /sys
attributes:
  check_mode:
    support: full
    description: Read-only.
  diff_mode:
    support: none
    description: Read-only, nothing to diff.
"""

EXAMPLES = r"""
- name: Check the SR-IOV PFs of this node
  smcp.platform.cni_sriov_pf:
    pfs: "{{ cni_sriov_pfs }}"
"""

RETURN = r"""
pfs:
  description: Per PF name, C(total_vfs) supported and C(num_vfs) currently configured.
  returned: success
  type: dict
  sample: {ens1f0: {total_vfs: 64, num_vfs: 0, wanted: 8}}
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.cni import CniError  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.cni_sriov import check_pfs  # noqa: E402


def main():
    module = AnsibleModule(
        argument_spec=dict(
            pfs=dict(type="list", elements="dict", required=True),
            sysfs=dict(type="path", default="/sys"),
        ),
        supports_check_mode=True,
    )
    try:
        state = check_pfs(module.params["pfs"], module.params["sysfs"])
    except CniError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(changed=False, pfs=state)


if __name__ == "__main__":
    main()
