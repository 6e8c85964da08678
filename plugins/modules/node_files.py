#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: node_files
short_description: Write several configuration files of a host in one call
version_added: 0.1.0
description:
  - Makes each entry of O(files) hold its O(files[].content) with its mode, owner and group, creating
    the O(directories) first. Only files whose content differs are written; mode, owner and group are set
    on every file either way.
  - One module call per host for all of a role's files. M(ansible.builtin.template) and
    M(ansible.builtin.copy) each copy a file to the host and run twice there (stat, then copy), several
    round trips per file; render the content on the controller with
    C(lookup('ansible.builtin.template', ...)) and hand it here.
  - Each file is written to a temporary file in its directory (mode 0600 until it gets its final mode and
    owner) and moved into place, so no reader sees half a file or looser permissions than asked for.
author:
  - smcp developers (@smcp)
options:
  files:
    description: The files.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: Absolute path of the file. Its directory must exist or be listed in O(directories).
        type: path
        required: true
      content:
        description: The whole content of the file.
        type: str
        required: true
      mode:
        description: Mode, as an octal string (C("0644")) or symbolic.
        type: raw
        default: "0644"
      owner:
        description: Owner (name or uid).
        type: str
        default: root
      group:
        description: Group (name or gid).
        type: str
        default: root
  directories:
    description: Directories created (or given this mode, owner and group) before the files are written.
    type: list
    elements: dict
    default: []
    suboptions:
      path:
        description: Absolute path of the directory. Its parent must exist.
        type: path
        required: true
      mode:
        description: Mode, as an octal string or symbolic.
        type: raw
        default: "0755"
      owner:
        description: Owner (name or uid).
        type: str
        default: root
      group:
        description: Group (name or gid).
        type: str
        default: root
attributes:
  check_mode:
    support: full
    description: Reports which files and directories would change and writes nothing.
  diff_mode:
    support: full
    description: Returns the content before and after of each file that changes. Use C(no_log) for secrets.
notes:
  - Files with secrets (keys, tokens) must be written by a task with C(no_log=true).
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
"""

EXAMPLES = r"""
- name: Write the node configuration files (one call)
  smcp.platform.node_files:
    directories:
      - path: /etc/smcp
    files:
      - dest: /etc/sysctl.d/90-smcp.conf
        content: "{{ lookup('ansible.builtin.template', 'sysctl.conf.j2') }}"
      - dest: /etc/smcp/cluster
        content: "smcp\n"
  register: written
  notify: node files changed
"""

RETURN = r"""
changed_files:
  description: Paths of the files and directories that changed (or would, in check mode), in the order given.
  returned: always
  type: list
  elements: str
  sample: [/etc/sysctl.d/90-smcp.conf]
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils._io import read_bytes, write_file  # noqa: E402

OWNERSHIP = dict(owner=dict(type="str", default="root"), group=dict(type="str", default="root"))

ARGUMENT_SPEC = dict(
    files=dict(
        type="list",
        elements="dict",
        required=True,
        options=dict(
            dest=dict(type="path", required=True),
            content=dict(type="str", required=True, no_log=False),
            mode=dict(type="raw", default="0644"),
            **OWNERSHIP,
        ),
    ),
    directories=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(path=dict(type="path", required=True), mode=dict(type="raw", default="0755"), **OWNERSHIP),
    ),
)


def _file_args(module: AnsibleModule, path: str, entry: dict) -> dict:
    return module.load_file_common_arguments(
        dict(mode=entry["mode"], owner=entry["owner"], group=entry["group"]), path=path
    )


def _directory(module: AnsibleModule, entry: dict) -> bool:
    path = entry["path"]
    file_args = _file_args(module, path, entry)
    if os.path.isdir(path):
        return module.set_fs_attributes_if_different(file_args, False)
    if os.path.lexists(path):
        module.fail_json(
            msg="directories: %s exists and is not a directory; move it away or choose another path" % path,
            path=path,
        )
    if not module.check_mode:
        os.mkdir(path, 0o700)
        module.set_fs_attributes_if_different(file_args, False)
    return True


def execute_module(module: AnsibleModule) -> None:
    changed_files: list[str] = []
    diffs: list[dict] = []
    for entry in module.params["directories"]:
        if _directory(module, entry):
            changed_files.append(entry["path"])
    for entry in module.params["files"]:
        dest = entry["dest"]
        if not os.path.isabs(dest):
            module.fail_json(msg="files: dest %r is not an absolute path; give the full path" % dest, dest=dest)
        before = read_bytes(dest)
        if write_file(module, entry["content"], _file_args(module, dest, entry)):
            changed_files.append(dest)
            after = entry["content"]
            if module._diff and before is not None and before.decode("utf-8", "replace") != after:
                diffs.append(
                    dict(before_header=dest, after_header=dest, before=before.decode("utf-8", "replace"), after=after)
                )
            elif module._diff and before is None:
                diffs.append(dict(before_header=dest, after_header=dest, before="", after=after))
    result: dict = dict(changed=bool(changed_files), changed_files=changed_files)
    if diffs:
        result["diff"] = diffs
    module.exit_json(**result)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
