#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: artifact_fetch
short_description: Download a file and keep it only if its sha256 is the expected one
version_added: 0.1.0
description:
  - Makes O(dest) hold the file published at O(url) whose sha256 is O(sha256).
  - An existing O(dest) with the expected sum is kept without any download (mode, owner and group are still
    enforced). A download goes to a temporary file next to O(dest) and replaces it only once verified.
  - Otherwise the file is downloaded to a temporary file next to O(dest), hashed, and moved into place only
    when the sum matches. A mismatch deletes the downloaded file and fails with a message naming the URL,
    the expected and the actual sum.
  - Without O(url) the module only verifies the existing O(dest), deleting it on mismatch (bundle files on
    the controller).
  - O(manifest_sha256) is the sum an offline bundle's manifest lists for the file; when it disagrees with
    O(sha256) the module fails before downloading anything.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - ansible.builtin.files
options:
  url:
    description:
      - Where the file comes from, V(http://), V(https://), V(file://) or an absolute path.
      - Omit it to verify O(dest) in place.
    type: str
  dest:
    description: Absolute path of the file on the host running the module. Its directory is created if needed.
    type: path
    required: true
  sha256:
    description: The expected sha256 (64 hex characters, optionally prefixed C(sha256:)).
    type: str
    required: true
  manifest_sha256:
    description: The sum an offline bundle's manifest lists for this file; must equal O(sha256).
    type: str
  mode:
    description: Mode of O(dest), octal such as V('0755') for an executable, or symbolic such as V(u=rwx,go=rx).
    type: raw
    default: "0644"
  timeout:
    description: Seconds to wait for the server.
    type: int
    default: 60
  validate_certs:
    description: Verify the server's TLS certificate.
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: Reports whether the file would be downloaded; downloads, deletes and writes nothing.
  diff_mode:
    support: none
    description: Returns no diff; the result names the file, its sum and whether it was downloaded.
"""

EXAMPLES = r"""
- name: Download kubeadm and check it against the versions table
  smcp.platform.artifact_fetch:
    url: https://dl.k8s.io/release/v1.35.0/bin/linux/amd64/kubeadm
    dest: /var/cache/smcp/kube-artifacts/1.35.0-amd64/kubeadm
    sha256: 729e7fb34e4f1bfcf2bdaf2a14891ed64bd18c47aaab42f8cc5030875276cfed
    mode: "0755"

- name: Verify a file of an offline bundle in place
  smcp.platform.artifact_fetch:
    dest: /srv/bundles/1.35.0-amd64/bin/kubeadm
    sha256: 729e7fb34e4f1bfcf2bdaf2a14891ed64bd18c47aaab42f8cc5030875276cfed
"""

RETURN = r"""
dest:
  description: The verified file.
  returned: success
  type: str
  sample: /var/cache/smcp/kube-artifacts/1.35.0-amd64/kubeadm
url:
  description: Where it came from (empty when only verified).
  returned: success
  type: str
sha256:
  description: The verified sum (the expected one in check mode when a download would happen).
  returned: success
  type: str
  sample: 729e7fb34e4f1bfcf2bdaf2a14891ed64bd18c47aaab42f8cc5030875276cfed
size:
  description: Size of O(dest) in bytes (0 in check mode when a download would happen).
  returned: success
  type: int
action:
  description: V(kept) (already there), V(downloaded), or V(would download) (check mode).
  returned: success
  type: str
expected:
  description: The expected sum.
  returned: on a checksum mismatch
  type: str
actual:
  description: The sum the file (or the bundle manifest) had.
  returned: on a checksum mismatch
  type: str
"""

from ansible.module_utils.basic import AnsibleModule  # noqa: E402
from ansible.module_utils.urls import open_url  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils import _io  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.artifact_fetch import (  # noqa: E402
    ArtifactError,
    ChecksumMismatch,
    fetch,
)

ARGUMENT_SPEC = dict(
    url=dict(type="str"),
    dest=dict(type="path", required=True),
    sha256=dict(type="str", required=True),
    manifest_sha256=dict(type="str"),
    mode=dict(type="raw", default="0644"),
    timeout=dict(type="int", default=60),
    validate_certs=dict(type="bool", default=True),
)


def execute_module(module):
    params = module.params
    file_args = _io.file_arguments(module, params["dest"])

    def opener(url, timeout):
        try:
            return open_url(url, timeout=timeout, validate_certs=params["validate_certs"], follow_redirects="all")
        except OSError:
            raise
        except Exception as exc:  # ansible's ConnectionError, SSL validation errors
            raise OSError(str(exc)) from exc

    try:
        result = fetch(
            params["url"] or "",
            params["dest"],
            params["sha256"],
            manifest_sha256=params["manifest_sha256"],
            mode=None,
            timeout=params["timeout"],
            check_mode=module.check_mode,
            opener=opener,
            temp_file=lambda dest: _io.temp_file(module, file_args),
            place=lambda tmp, dest: _io.install_file(module, tmp, file_args),
        )
    except ChecksumMismatch as exc:
        module.fail_json(msg=str(exc), url=exc.url, expected=exc.expected, actual=exc.actual, deleted=exc.deleted)
    except ArtifactError as exc:
        module.fail_json(msg=str(exc), url=params["url"] or "", dest=params["dest"])
    changed = result.changed
    if result.action == "kept":
        changed = module.set_fs_attributes_if_different(file_args, changed)
    module.exit_json(
        changed=changed,
        dest=result.dest,
        url=result.url,
        sha256=result.sha256,
        size=result.size,
        action=result.action,
    )


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, add_file_common_args=True, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
