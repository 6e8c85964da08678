#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cert_expiry
short_description: Report when certificates and kubeconfig client certificates expire
version_added: 0.1.0
description:
  - Reads PEM certificates (files or glob patterns) and the client certificates inside kubeconfigs
    (inline C(client-certificate-data) or a C(client-certificate) path) with C(openssl), and reports
    each one's subject, expiry date, days left and whether it expires within O(renew_days).
  - Missing files are skipped (a host that is not a control plane has no /etc/kubernetes/pki).
author:
  - smcp developers (@smcp)
options:
  paths:
    description: Certificate files or glob patterns (C(/etc/kubernetes/pki/*.crt)).
    type: list
    elements: str
    default: []
  kubeconfigs:
    description: Kubeconfig files whose client certificates are read.
    type: list
    elements: path
    default: []
  renew_days:
    description: A certificate expiring within this many days is reported as expiring.
    type: int
    default: 30
requirements:
  - openssl (command) on the host
attributes:
  check_mode:
    support: full
    description: Only reads.
  diff_mode:
    support: none
    description: No diff is returned.
"""

EXAMPLES = r"""
- name: Report kubeadm's and etcd's certificates
  smcp.platform.cert_expiry:
    paths: [/etc/kubernetes/pki/*.crt, /etc/etcd/pki/*.crt]
    kubeconfigs: [/etc/kubernetes/admin.conf]
    renew_days: 30
  register: certs
"""

RETURN = r"""
certificates:
  description: One entry per certificate, soonest expiry first.
  returned: always
  type: list
  elements: dict
  sample:
    - path: /etc/kubernetes/pki/apiserver.crt
      source: file
      subject: CN = kube-apiserver
      not_after: "2027-11-25T15:00:00Z"
      days_left: 364
      expiring: false
      expired: false
      ca: false
expiring:
  description: Paths of the certificates expiring within O(renew_days) (CAs included).
  returned: always
  type: list
  elements: str
"""

import glob  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.cert_expiry import (  # noqa: E402
    entry,
    kubeconfig_client_certs,
    parse_openssl,
)

ARGUMENT_SPEC = {
    "paths": {"type": "list", "elements": "str", "default": []},
    "kubeconfigs": {"type": "list", "elements": "path", "default": []},
    "renew_days": {"type": "int", "default": 30},
}


def read(module, openssl, path, source, pem=None):
    args = [openssl, "x509", "-noout", "-enddate", "-subject"] + ([] if pem else ["-in", path])
    rc, out, err = module.run_command(args, data=pem, binary_data=False)
    if rc != 0:
        module.fail_json(msg=f"{path}: openssl cannot read the certificate ({err.strip()}); check the file")
    not_after, subject = parse_openssl(out)
    return entry(path, source, not_after, subject, module.params["renew_days"])


def execute_module(module):
    openssl = module.get_bin_path("openssl", required=True)
    certs = []
    for pattern in module.params["paths"]:
        for path in sorted(glob.glob(pattern)):
            certs.append(read(module, openssl, path, "file"))
    for kubeconfig in module.params["kubeconfigs"]:
        try:
            with open(kubeconfig, encoding="utf-8") as handle:
                text = handle.read()
        except FileNotFoundError:
            continue
        for found in kubeconfig_client_certs(text):
            if "pem" in found:
                certs.append(read(module, openssl, kubeconfig, "kubeconfig", pem=found["pem"]))
            elif glob.glob(found["file"]) and found["file"] not in {c["path"] for c in certs}:
                certs.append(read(module, openssl, found["file"], "kubeconfig:" + kubeconfig))
    certs.sort(key=lambda c: (c["not_after"], c["path"]))
    module.exit_json(changed=False, certificates=certs, expiring=[c["path"] for c in certs if c["expiring"]])


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
