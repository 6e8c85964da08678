#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: etcd_certs
short_description: Keep an etcd CA and its member and client certificates issued, or install them on a host
version_added: 0.1.0
description:
  - O(state=issued) runs on the CA host. It creates the cluster CA in O(pki_dir) unless one exists or is
    supplied (O(ca_cert) + O(ca_key)), then issues a peer and a server certificate per entry of O(members)
    and one certificate per entry of O(clients) into O(pki_dir)/issued/. A certificate is issued again only
    when it is missing, unreadable, signed by another CA, within O(renew_days) of expiry, or when its
    SANs or common name changed.
  - O(state=installed) writes the given O(files) (PEM text) into O(dest); C(*.key) files get mode 0600,
    the others O(mode) (default 0644). Only files whose content differs are written; owner, group, mode
    and SELinux context are set on every file either way.
  - Private keys (C(ca.key), C(*.key)) are always mode 0600, whatever O(mode) says. Files are written to a
    temporary file in the same directory and moved into place, so no reader sees half a file.
  - Keys are ECDSA P-256. Key material is never part of the result unless O(return_content=true);
    run such tasks with C(no_log=true).
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - ansible.builtin.files
requirements:
  - cryptography >= 3.4 on the host running O(state=issued)
options:
  state:
    description: V(issued) on the CA host, V(installed) on a member.
    type: str
    choices: [issued, installed]
    default: issued
  pki_dir:
    description: Directory holding C(ca.crt), C(ca.key) and C(issued/) (O(state=issued)).
    type: path
    default: /etc/etcd/pki
  ca_common_name:
    description: Common name of a CA created by the module.
    type: str
    default: etcd-ca
  ca_cert:
    description:
      - PEM CA certificate supplied by the user (with O(ca_key), both or neither). Replaces a different
        stored CA, which makes every certificate be issued again.
    type: str
  ca_key:
    description: PEM private key of O(ca_cert) (unencrypted).
    type: str
  ca_days:
    description: Validity of a CA created by the module, in days.
    type: int
    default: 3650
  cert_days:
    description: Validity of issued certificates, in days (capped at the CA's expiry).
    type: int
    default: 365
  renew_days:
    description: Issue a certificate again when it expires within this many days.
    type: int
    default: 30
  members:
    description: etcd members; each gets C(NAME-peer) and C(NAME-server) certificates with the SANs given.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Member name (also the certificates' common name).
        type: str
        required: true
      sans:
        description: DNS names and IP addresses.
        type: list
        elements: str
        required: true
  clients:
    description: Client certificates (for the API server, operators, backups).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: File stem in C(issued/).
        type: str
        required: true
      common_name:
        description: Subject common name.
        type: str
        required: true
      organization:
        description: Subject organization (for example C(system:masters)).
        type: str
        default: ""
  return_content:
    description:
      - Return the CA certificate and every issued certificate and key as RV(content), to hand them to
        O(state=installed) on the members. Use C(no_log=true) on the task.
    type: bool
    default: false
  dest:
    description: Directory the O(files) are written to (required with O(state=installed)); created with mode 0755.
    type: path
  files:
    description: File name to PEM text (required with O(state=installed)).
    type: dict
  owner:
    description: Owner of the written files (O(state=installed)).
    type: str
    default: root
  group:
    description: Group of the written files (O(state=installed)).
    type: str
    default: root
attributes:
  check_mode:
    support: full
    description: Reports which certificates would be issued or which files written; writes nothing.
  diff_mode:
    support: partial
    description: Lists the certificate or file names that would change, never their content.
"""

EXAMPLES = r"""
- name: Issue the etcd certificates on the first etcd host
  smcp.platform.etcd_certs:
    members:
      - {name: etcd1, sans: [etcd1, 10.0.0.1, localhost, 127.0.0.1]}
    clients:
      - {name: apiserver-etcd-client, common_name: kube-apiserver-etcd-client, organization: "system:masters"}
    return_content: true
  register: pki
  no_log: true

- name: Install the member's files
  smcp.platform.etcd_certs:
    state: installed
    dest: /etc/etcd/pki
    owner: etcd
    group: etcd
    files:
      ca.crt: "{{ pki.content['ca.crt'] }}"
      peer.crt: "{{ pki.content['etcd1-peer.crt'] }}"
      peer.key: "{{ pki.content['etcd1-peer.key'] }}"
  no_log: true
"""

RETURN = r"""
issued:
  description: Certificates issued by this run (O(state=issued)), with the reason.
  returned: state is issued
  type: list
  elements: dict
  sample: [{name: etcd1-peer, reason: SANs changed}]
ca_created:
  description: Whether the CA was created (or replaced by the supplied one) by this run.
  returned: state is issued
  type: bool
content:
  description: File name (C(ca.crt), C(NAME.crt), C(NAME.key)) to PEM text. Contains private keys.
  returned: state is issued and return_content is true
  type: dict
written:
  description: Names of the files written (O(state=installed)).
  returned: state is installed
  type: list
  elements: str
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule, missing_required_lib  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils import _io  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils import etcd_pki as pki  # noqa: E402

ARGUMENT_SPEC = dict(
    state=dict(type="str", choices=["issued", "installed"], default="issued"),
    pki_dir=dict(type="path", default="/etc/etcd/pki"),
    ca_common_name=dict(type="str", default="etcd-ca"),
    ca_cert=dict(type="str"),
    ca_key=dict(type="str", no_log=True),
    ca_days=dict(type="int", default=3650),
    cert_days=dict(type="int", default=365),
    renew_days=dict(type="int", default=30),
    members=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(name=dict(type="str", required=True), sans=dict(type="list", elements="str", required=True)),
    ),
    clients=dict(
        type="list",
        elements="dict",
        default=[],
        options=dict(
            name=dict(type="str", required=True),
            common_name=dict(type="str", required=True),
            organization=dict(type="str", default=""),
        ),
    ),
    return_content=dict(type="bool", default=False),
    dest=dict(type="path"),
    files=dict(type="dict", no_log=True),
    owner=dict(type="str", default="root"),
    group=dict(type="str", default="root"),
)
REQUIRED_TOGETHER = [("ca_cert", "ca_key")]
REQUIRED_IF = [("state", "installed", ("dest", "files"))]


def _read(path):
    try:
        with open(path, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def _write(module, path, content, default_mode, state):
    """Write one PEM file through the shared writer; keys are 0600 whatever ``mode`` says."""
    forced = 0o600 if path.endswith(".key") else None
    args = _io.file_arguments(module, path, default_mode, mode=forced)
    if state == "issued":  # owner and group are options of state=installed; the CA host keeps root
        args["owner"] = args["group"] = None
    return _io.write_file(module, content, args)


def _specs(params):
    specs = []
    for member in params["members"]:
        for usage in ("peer", "server"):
            specs.append(pki.CertSpec(f"{member['name']}-{usage}", member["name"], usage, list(member["sans"])))
    for client in params["clients"]:
        specs.append(pki.CertSpec(client["name"], client["common_name"], "client", [], client["organization"]))
    names = [s.name for s in specs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise pki.PkiError(f"duplicate certificate names {duplicates}: member and client names must be unique")
    for spec in specs:
        spec.validate()
    return specs


def issue_all(module):
    params = module.params
    result = dict(changed=False, issued=[], ca_created=False)
    specs = _specs(params)
    ca_cert_path = os.path.join(params["pki_dir"], "ca.crt")
    ca_key_path = os.path.join(params["pki_dir"], "ca.key")
    issued_dir = os.path.join(params["pki_dir"], "issued")
    stored_cert, stored_key = _read(ca_cert_path), _read(ca_key_path)

    if params["ca_cert"]:
        pki.ca_reason(params["ca_cert"], params["ca_key"], 0)  # raises on a bad pair
        ca_pem, ca_key_pem = params["ca_cert"].strip() + "\n", params["ca_key"].strip() + "\n"
        write_ca = ca_pem != stored_cert or ca_key_pem != stored_key
    else:
        reason = pki.ca_reason(stored_cert, stored_key, params["renew_days"])
        if reason == "missing":
            if module.check_mode:
                result.update(
                    changed=True, ca_created=True, issued=[{"name": s.name, "reason": "new CA"} for s in specs]
                )
                return result
            created = pki.new_ca(params["ca_common_name"], params["ca_days"])
            ca_pem, ca_key_pem, write_ca = created.cert_pem, created.key_pem, True
        else:
            if reason:
                module.warn(f"the etcd CA in {ca_cert_path} {reason}: supply a new one with ca_cert/ca_key")
            ca_pem, ca_key_pem, write_ca = stored_cert, stored_key, False

    ca_cert = pki.load_cert(ca_pem, "CA certificate")
    ca_key = pki.load_key(ca_key_pem, "CA key")
    content = {"ca.crt": ca_pem}
    pending = []
    for spec in specs:
        cert_pem = _read(os.path.join(issued_dir, spec.name + ".crt"))
        key_pem = _read(os.path.join(issued_dir, spec.name + ".key"))
        reason = pki.reissue_reason(spec, cert_pem, key_pem, ca_cert, params["renew_days"])
        if reason:
            result["issued"].append({"name": spec.name, "reason": reason})
            pending.append(spec)
        else:
            content[spec.name + ".crt"], content[spec.name + ".key"] = cert_pem, key_pem
    result["changed"] = bool(write_ca or pending)
    result["ca_created"] = write_ca
    if module.check_mode:
        return result

    if write_ca:
        os.makedirs(params["pki_dir"], mode=0o755, exist_ok=True)
        _write(module, ca_key_path, ca_key_pem, 0o600, "issued")
        _write(module, ca_cert_path, ca_pem, 0o644, "issued")
    if pending:
        os.makedirs(issued_dir, mode=0o700, exist_ok=True)
    for spec in pending:
        new = pki.issue(spec, ca_cert, ca_key, params["cert_days"])
        _write(module, os.path.join(issued_dir, spec.name + ".key"), new.key_pem, 0o600, "issued")
        _write(module, os.path.join(issued_dir, spec.name + ".crt"), new.cert_pem, 0o644, "issued")
        content[spec.name + ".crt"], content[spec.name + ".key"] = new.cert_pem, new.key_pem
    if params["return_content"]:
        result["content"] = content
    return result


def install(module):
    params = module.params
    result = dict(changed=False, written=[])
    for name in sorted(params["files"]):
        if not name or "/" in name or name.startswith("."):
            module.fail_json(msg=f"files: {name!r} must be a plain file name")
    for name in sorted(params["files"]):
        path = os.path.join(params["dest"], name)
        wanted = str(params["files"][name])
        if _io.read_bytes(path) != wanted.encode("utf-8"):
            result["written"].append(name)
        if not module.check_mode:
            os.makedirs(params["dest"], mode=0o755, exist_ok=True)
        result["changed"] |= _write(module, path, wanted, 0o644, "installed")
    return result


def main():
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        required_together=REQUIRED_TOGETHER,
        required_if=REQUIRED_IF,
        add_file_common_args=True,
        supports_check_mode=True,
    )
    try:
        if module.params["state"] == "installed":
            result = install(module)
            result["diff"] = dict(before={"files": []}, after={"files": result["written"]})
        else:
            if pki.CRYPTOGRAPHY_IMPORT_ERROR is not None:
                module.fail_json(
                    msg=missing_required_lib("cryptography (Debian: python3-cryptography)"),
                    exception=str(pki.CRYPTOGRAPHY_IMPORT_ERROR),
                )
            result = issue_all(module)
            result["diff"] = dict(before={"issued": []}, after={"issued": [i["name"] for i in result["issued"]]})
    except pki.PkiError as exc:
        module.fail_json(msg=str(exc))
    except OSError as exc:
        module.fail_json(msg=f"cannot write etcd PKI files: {exc}")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
