# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
name: kube_release
short_description: One Kubernetes release of smcp's versions table (binaries, sums, images, CNI)
version_added: 0.1.0
description:
  - Returns the release record of each given Kubernetes version from
    C(plugins/module_utils/versions.py), with per file (kubeadm, kubelet, kubectl, crictl, cni_plugins,
    containerd, runc, etcd) the component version, the download URL (with an C({arch}) placeholder),
    the upstream-published sha256 per architecture and the URL where that sum is published; the
    container images kubeadm needs; the CNI versions of the minor.
  - An unknown or malformed version fails, listing the supported versions.
author:
  - smcp developers (@smcp)
options:
  _terms:
    description: Kubernetes versions, C(MAJOR.MINOR.PATCH) with or without a leading C(v).
    required: true
    type: list
    elements: str
"""

EXAMPLES = r"""
- name: The kubeadm URL and sum for this host
  ansible.builtin.debug:
    msg: >-
      {{ rel.files.kubeadm.url | replace('{arch}', 'amd64') }}
      {{ rel.files.kubeadm.sha256.amd64 }}
  vars:
    rel: "{{ lookup('smcp.platform.kube_release', smcp_kubernetes_version) }}"

- name: Every supported version is listed in the error of an unknown one
  ansible.builtin.set_fact:
    rel: "{{ lookup('smcp.platform.kube_release', '1.99.0') }}"
  ignore_errors: true
"""

RETURN = r"""
_raw:
  description: One release record per term (a single dict when one version is given).
  type: list
  elements: dict
  contains:
    version:
      description: The normalised version, e.g. C(1.35.0).
      type: str
    minor:
      description: e.g. C(1.35).
      type: str
    files:
      description: Per file name, C(version), C(url), C(sha256) (per arch), C(source), C(via), C(kind).
      type: dict
    images:
      description: Image name to reference (registry.k8s.io).
      type: dict
    image_digests:
      description: Image name to a published digest, or null when none was found.
      type: dict
    cni:
      description: CNI component versions of the minor (from cni_versions.py); empty if none.
      type: dict
"""

from ansible.errors import AnsibleError  # noqa: E402
from ansible.plugins.lookup import LookupBase  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils.versions import release  # noqa: E402


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        results = []
        for term in terms:
            try:
                results.append(release(str(term)))
            except ValueError as exc:
                raise AnsibleError(f"smcp.platform.kube_release: {exc}") from exc
        return results
