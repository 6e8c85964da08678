#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: kubeadm_config
short_description: Render, validate and write a kubeadm v1beta4 configuration file
version_added: 0.1.0
description:
  - Builds the kubeadm configuration of a node from a few inventory-level inputs, checks every
    field before anything is written, and writes the file (mode 0600 unless O(mode) says otherwise,
    directory 0700) only when its content differs, through a temporary file moved into place.
    A join file holds the bootstrap token and the certificate key, so keep it 0600.
  - O(kind=init) writes InitConfiguration, ClusterConfiguration (external etcd),
    KubeletConfiguration (systemd cgroup driver) and KubeProxyConfiguration (iptables or nftables).
  - O(kind=join) writes a JoinConfiguration with token discovery pinned to the cluster CA, and a
    C(controlPlane) section with the certificate key when O(control_plane=true).
  - A bad value fails naming the option, the value and the fix (RV(error)). Run
    C(kubeadm config validate --config <path>) on the host afterwards for kubeadm's own checks.
  - Bootstrap tokens and certificate keys never appear in the diff or the result.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - ansible.builtin.files
options:
  path:
    description: File to write.
    type: path
    required: true
  kind:
    description: V(init) for the first control plane, V(join) for every other node.
    type: str
    choices: [init, join]
    default: init
  cluster_name:
    description: ClusterConfiguration C(clusterName).
    type: str
    default: smcp
  kubernetes_version:
    description: Kubernetes version C(MAJOR.MINOR.PATCH) (ClusterConfiguration C(kubernetesVersion)).
    type: str
    required: true
  control_plane_endpoint:
    description: The stable API endpoint C(host:port) (ClusterConfiguration C(controlPlaneEndpoint)).
    type: str
    required: true
  node_name:
    description: Node name (C(nodeRegistration.name)); a lower-case RFC 1123 subdomain.
    type: str
    required: true
  node_ip:
    description: Kubelet C(--node-ip) (C(nodeRegistration.kubeletExtraArgs)). Empty leaves the kubelet's choice.
    type: str
    default: ""
  advertise_address:
    description: API server advertise address of a control plane (C(localAPIEndpoint.advertiseAddress)).
    type: str
    default: ""
  bind_port:
    description: API server port (C(localAPIEndpoint.bindPort)).
    type: int
    default: 6443
  pod_subnet:
    description: C(networking.podSubnet) and KubeProxyConfiguration C(clusterCIDR).
    type: str
    default: 10.244.0.0/16
  service_subnet:
    description: C(networking.serviceSubnet).
    type: str
    default: 10.96.0.0/12
  dns_domain:
    description: C(networking.dnsDomain) and KubeletConfiguration C(clusterDomain).
    type: str
    default: cluster.local
  image_repository:
    description: Registry mirror for the control-plane images (C(imageRepository)). Empty means registry.k8s.io.
    type: str
    default: ""
  etcd_endpoints:
    description: Client URLs of the external etcd cluster (C(etcd.external.endpoints)).
    type: list
    elements: str
    default: []
  etcd_ca_file:
    description: C(etcd.external.caFile).
    type: path
    default: /etc/kubernetes/pki/etcd/ca.crt
  etcd_cert_file:
    description: C(etcd.external.certFile).
    type: path
    default: /etc/kubernetes/pki/etcd/apiserver-etcd-client.crt
  etcd_key_file:
    description: C(etcd.external.keyFile).
    type: path
    default: /etc/kubernetes/pki/etcd/apiserver-etcd-client.key
  cri_socket:
    description: C(nodeRegistration.criSocket) and KubeletConfiguration C(containerRuntimeEndpoint).
    type: str
    default: unix:///run/containerd/containerd.sock
  proxy_mode:
    description: KubeProxyConfiguration C(mode).
    type: str
    choices: [iptables, nftables]
    default: iptables
  taints:
    description:
      - Taints the node registers with (C(nodeRegistration.taints)).
      - Each has C(key), optional C(value) and C(effect) (default C(NoSchedule)).
      - Unset means the control-plane taint on control planes and none on workers; V([]) means none.
    type: list
    elements: dict
  cert_sans:
    description: Extra API server certificate SANs (the endpoint host and advertise address are always included).
    type: list
    elements: str
    default: []
  control_plane:
    description: With O(kind=join), join as a control plane.
    type: bool
    default: false
  discovery_endpoint:
    description: With O(kind=join), the API endpoint C(host:port) used for discovery.
    type: str
    default: ""
  token:
    description: With O(kind=join), the bootstrap token (see M(smcp.platform.bootstrap_token)).
    type: str
    default: ""
  ca_cert_hashes:
    description: With O(kind=join), C(sha256:<hex>) hashes of the cluster CA public key.
    type: list
    elements: str
    default: []
  certificate_key:
    description: With O(kind=join) and O(control_plane=true), the key of the uploaded control-plane certificates.
    type: str
    default: ""
  kubelet_version:
    description:
      - Installed kubelet version.
      - With O(api_server_version), a join that breaks the version skew policy is refused.
    type: str
    default: ""
  api_server_version:
    description: Version the API server reports (for O(kind=init), the version being installed).
    type: str
    default: ""
  control_plane_count:
    description: Number of control planes in the inventory; 2 adds a warning.
    type: int
    default: 0
  ignore_preflight_errors:
    description:
      - kubeadm preflight checks whose errors become warnings (C(nodeRegistration.ignorePreflightErrors)),
        for example V(Swap) or V(NumCPU). Empty leaves every check fatal.
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Validates and reports whether the file would change without writing it.
  diff_mode:
    support: full
    description: Returns the old and new file text, secrets replaced by C(<redacted>).
notes:
  - Field reference U(https://kubernetes.io/docs/reference/config-api/kubeadm-config.v1beta4/).
"""

EXAMPLES = r"""
- name: Configuration of the first control plane
  smcp.platform.kubeadm_config:
    path: /etc/kubernetes/smcp/kubeadm-init.yaml
    kind: init
    kubernetes_version: 1.35.0
    control_plane_endpoint: 127.0.0.1:7443
    node_name: cp1
    node_ip: 10.0.0.11
    advertise_address: 10.0.0.11
    etcd_endpoints: [https://10.0.0.21:2379, https://10.0.0.22:2379, https://10.0.0.23:2379]
    proxy_mode: nftables

- name: Configuration of a worker
  smcp.platform.kubeadm_config:
    path: /etc/kubernetes/smcp/kubeadm-join.yaml
    kind: join
    kubernetes_version: 1.35.0
    control_plane_endpoint: 127.0.0.1:7443
    discovery_endpoint: 127.0.0.1:7443
    node_name: worker1
    token: "{{ join_token.token }}"
    ca_cert_hashes: ["{{ join_token.ca_cert_hash }}"]
  no_log: true
"""

RETURN = r"""
path:
  description: The file written.
  returned: always
  type: str
  sample: /etc/kubernetes/smcp/kubeadm-init.yaml
kinds:
  description: The C(kind) of every document in the file.
  returned: success
  type: list
  elements: str
  sample: [InitConfiguration, ClusterConfiguration, KubeletConfiguration, KubeProxyConfiguration]
error:
  description: The rejected option with C(field), C(value), C(problem) and C(fix).
  returned: failure on bad input
  type: dict
  sample:
    field: proxy_mode
    value: ipvs
    problem: is not a supported kube-proxy mode
    fix: use one of iptables, nftables
"""

import os  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils import _io  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.kubeadm_config import (  # noqa: E402
    REDACTED,
    ConfigError,
    KubeadmParams,
    render,
    render_documents,
)

ARGUMENT_SPEC = dict(
    path=dict(type="path", required=True),
    kind=dict(type="str", choices=["init", "join"], default="init"),
    cluster_name=dict(type="str", default="smcp"),
    kubernetes_version=dict(type="str", required=True),
    control_plane_endpoint=dict(type="str", required=True),
    node_name=dict(type="str", required=True),
    node_ip=dict(type="str", default=""),
    advertise_address=dict(type="str", default=""),
    bind_port=dict(type="int", default=6443),
    pod_subnet=dict(type="str", default="10.244.0.0/16"),
    service_subnet=dict(type="str", default="10.96.0.0/12"),
    dns_domain=dict(type="str", default="cluster.local"),
    image_repository=dict(type="str", default=""),
    etcd_endpoints=dict(type="list", elements="str", default=[]),
    etcd_ca_file=dict(type="path", default="/etc/kubernetes/pki/etcd/ca.crt"),
    etcd_cert_file=dict(type="path", default="/etc/kubernetes/pki/etcd/apiserver-etcd-client.crt"),
    etcd_key_file=dict(type="path", default="/etc/kubernetes/pki/etcd/apiserver-etcd-client.key"),
    cri_socket=dict(type="str", default="unix:///run/containerd/containerd.sock"),
    proxy_mode=dict(type="str", choices=["iptables", "nftables"], default="iptables"),
    taints=dict(type="list", elements="dict"),
    cert_sans=dict(type="list", elements="str", default=[]),
    control_plane=dict(type="bool", default=False),
    discovery_endpoint=dict(type="str", default=""),
    token=dict(type="str", default="", no_log=True),
    ca_cert_hashes=dict(type="list", elements="str", default=[]),
    certificate_key=dict(type="str", default="", no_log=True),
    kubelet_version=dict(type="str", default=""),
    api_server_version=dict(type="str", default=""),
    control_plane_count=dict(type="int", default=0),
    ignore_preflight_errors=dict(type="list", elements="str", default=[]),
)


def _read(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def _redacted_existing(text, params):
    """The existing file's text with the secrets of this run hidden (for the diff)."""
    if text is None:
        return ""
    for secret in (params.token, params.certificate_key):
        if secret:
            text = text.replace(secret, REDACTED)
    return text


def execute_module(module):
    params = KubeadmParams.from_dict({k: v for k, v in module.params.items() if k != "path"})
    if module.params["kind"] == "init":
        params.control_plane = True
    path = module.params["path"]
    try:
        text, shown, warnings = render(params)
    except ConfigError as exc:
        module.fail_json(msg=str(exc), error=exc.as_dict(), path=path)
    for warning in warnings:
        module.warn(warning)
    existing = _read(path)
    if existing != text and not module.check_mode:
        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
    changed = _io.write_file(module, text, _io.file_arguments(module, path, 0o600))
    result = dict(changed=changed, path=path, kinds=[doc["kind"] for doc in render_documents(params)])
    if existing != text and module._diff:
        result["diff"] = dict(
            before_header=path, after_header=path, before=_redacted_existing(existing, params), after=shown
        )
    module.exit_json(**result)


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, add_file_common_args=True, supports_check_mode=True)
    execute_module(module)


if __name__ == "__main__":
    main()
