#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)

from __future__ import annotations

DOCUMENTATION = r"""
module: cni_manifests
short_description: Render and validate the pod network manifests (Calico or Flannel, Multus, SR-IOV)
version_added: 0.1.0
description:
  - Checks the inputs (CNI name, pod CIDR size and overlaps, MTU from the node interface MTUs minus
    the encapsulation overhead, SR-IOV PFs and networks), renders every manifest of the pod network
    for the Kubernetes minor with the pinned images (rewritten through a registry mirror), and
    validates each against the Kubernetes OpenAPI schema of that minor and the CRD schemas.
  - Nothing is applied; the manifests are returned (and written to O(dest) when given) for
    M(smcp.platform.cni_apply). Any problem fails naming the object and the field.
  - Runs on the controller.
author:
  - smcp developers (@smcp)
extends_documentation_fragment:
  - ansible.builtin.files
options:
  cni:
    description: Primary CNI.
    type: str
    required: true
  kubernetes_version:
    description: Kubernetes version (V(1.35.0) or V(v1.35.0)); its minor selects the pins and the schema.
    type: str
    required: true
  pod_cidr:
    description: Pod network (CIDR).
    type: str
    required: true
  service_cidr:
    description: Service network (CIDR), must not overlap O(pod_cidr).
    type: str
    default: ""
  node_networks:
    description: Networks of the nodes' interfaces (CIDR); none may overlap O(pod_cidr).
    type: list
    elements: str
    default: []
  interface_mtus:
    description: MTU of the interface carrying each node's IP, by host name.
    type: dict
    required: true
  encapsulation:
    description: Overlay encapsulation; V(none) routes pod traffic unencapsulated (Calico BGP, flannel host-gw).
    type: str
    choices: [vxlan, ipip, none]
    default: vxlan
  mtu:
    description: Pod MTU; V(0) computes it from O(interface_mtus) minus the encapsulation overhead.
    type: int
    default: 0
  registry:
    description: Registry mirror for every image (V("") = upstream).
    type: str
    default: ""
  calico_block_size:
    description: Prefix length of Calico's per-node IP blocks (V(0) = 26 for IPv4).
    type: int
    default: 0
  multus:
    description: Deploy Multus (thick plugin). Implied when SR-IOV PFs are given.
    type: bool
    default: false
  sriov_pfs:
    description: SR-IOV PFs per host name, each a list of C(name), C(num_vfs), C(resource_name) entries.
    type: dict
    default: {}
  sriov_networks:
    description:
      - SR-IOV NetworkAttachmentDefinitions, entries with C(name), C(namespace), C(resource_name), C(vlan), C(ipam).
    type: list
    elements: dict
    default: []
  sriov_resource_prefix:
    description: Resource prefix of the SR-IOV device plugin resources (C(<prefix>/<resource_name>)).
    type: str
    default: intel.com
  schema_dir:
    description: Directory holding C(kubernetes-<minor>.json) (the role's C(files/schemas)).
    type: path
    required: true
  dest:
    description:
      - When set, write the manifests there as one multi-document YAML file, mode 0600 unless O(mode) is given
        (written to a temporary file in the same directory, then moved into place).
    type: path
attributes:
  check_mode:
    support: full
    description: Renders and validates; reports whether O(dest) would change, without writing it.
  diff_mode:
    support: none
    description: Nothing on a host is compared; the manifests are returned.
notes:
  - Python modules C(yaml) (PyYAML, always present with Ansible) on the controller.
"""

EXAMPLES = r"""
- name: Render and validate the pod network
  smcp.platform.cni_manifests:
    cni: calico
    kubernetes_version: "1.35.0"
    pod_cidr: 10.244.0.0/16
    service_cidr: 10.96.0.0/12
    interface_mtus: {cp1: 1500, w1: 1500}
    encapsulation: vxlan
    schema_dir: "{{ role_path }}/files/schemas"
  delegate_to: localhost
  run_once: true
  register: net
"""

RETURN = r"""
objects:
  description:
    - The manifests in apply order, checked against the Kubernetes schema of O(kubernetes_version).
    - What M(smcp.platform.cni_apply) takes as O(smcp.platform.cni_apply#module:objects).
  returned: success
  type: list
  elements: dict
mtu:
  description: Pod MTU, the smallest interface MTU and the overhead used.
  returned: success
  type: dict
  sample: {mtu: 1450, interface_mtu: 1500, overhead: 50, host: w1}
images:
  description: Images the manifests use (after the mirror rewrite).
  returned: success
  type: dict
workloads:
  description: DaemonSets and Deployments to wait for, C([kind, namespace, name]).
  returned: success
  type: list
  elements: list
host_conflist:
  description: The CNI config the role writes on every node (flannel), or null (Calico writes its own).
  returned: success
  type: dict
cidr:
  description: Pod CIDR facts (network, per-node prefix, capacity in nodes).
  returned: success
  type: dict
minor:
  description: Kubernetes minor used for the pins and the schema.
  returned: success
  type: str
"""

import re  # noqa: E402
import traceback  # noqa: E402

from ansible.module_utils.basic import AnsibleModule  # noqa: E402

from ansible_collections.smcp.platform.plugins.module_utils import _io  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.cni import (  # noqa: E402
    CniError,
    check_choice,
    check_pod_cidr,
    compute_mtu,
    flannel_conflist,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.manifests import render_all, workloads  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.sriov import check_sriov_nodes  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.cni_schema import load_schemas, validate  # noqa: E402
from ansible_collections.smcp.platform.plugins.module_utils.cni_versions import cni_release  # noqa: E402

YAML_ERROR = None
try:
    import yaml

    HAS_YAML = True
except ImportError:
    HAS_YAML = False
    YAML_ERROR = traceback.format_exc()


def minor_of(version):
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)$", str(version).strip())
    if not match:
        raise CniError("kubernetes_version=%r is not MAJOR.MINOR.PATCH (e.g. 1.35.0)" % (version,))
    return "%s.%s" % (match.group(1), match.group(2))


def build(params):
    """Render and validate; returns the result dict or raises CniError."""
    cni = check_choice("smcp_cni", params["cni"], ("calico", "flannel"))
    minor = minor_of(params["kubernetes_version"])
    try:
        pins = cni_release(minor)
    except ValueError as exc:
        raise CniError(str(exc)) from exc
    hosts = sorted(params["interface_mtus"])
    cidr = check_pod_cidr(
        params["pod_cidr"], params["service_cidr"], params["node_networks"], node_count=max(1, len(hosts))
    )
    if params["calico_block_size"] and cni == "calico":
        check_pod_cidr(params["pod_cidr"], node_mask=params["calico_block_size"], node_count=max(1, len(hosts)))
    mtus = {}
    for host, mtu in params["interface_mtus"].items():
        try:
            mtus[host] = int(mtu)
        except (TypeError, ValueError):
            mtus[host] = mtu
    mtu = compute_mtu(mtus, params["encapsulation"], params["mtu"])
    nodes = check_sriov_nodes(params["sriov_pfs"], set(hosts) if hosts else None)
    cfg = {
        "cni": cni,
        "pod_cidr": cidr["network"],
        "encapsulation": params["encapsulation"],
        "mtu": mtu["mtu"],
        "registry": params["registry"],
        "calico_block_size": params["calico_block_size"],
        "multus": params["multus"],
        "sriov_nodes": nodes,
        "sriov_networks": params["sriov_networks"],
        "sriov_resource_prefix": params["sriov_resource_prefix"],
    }
    objs, images = render_all(cfg, pins)
    try:
        schemas = load_schemas(params["schema_dir"], minor)
    except ValueError as exc:
        raise CniError(str(exc)) from exc
    errors = validate(objs, schemas)
    if errors:
        raise CniError(
            "%d manifest error(s) against the Kubernetes %s schema: %s" % (len(errors), minor, "; ".join(errors))
        )
    return {
        "objects": objs,
        "mtu": mtu,
        "images": images,
        "workloads": [list(w) for w in workloads(objs)],
        "host_conflist": flannel_conflist(mtu["mtu"]) if cni == "flannel" else None,
        "cidr": cidr,
        "minor": minor,
    }


def write(module, dest, objs):
    """Write the manifests to ``dest`` (0600 unless ``mode`` is given) with the shared writer; check mode aware."""
    text = yaml.safe_dump_all(objs, default_flow_style=False, sort_keys=False)
    return _io.write_file(module, text, _io.file_arguments(module, dest, 0o600))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            cni=dict(type="str", required=True),
            kubernetes_version=dict(type="str", required=True),
            pod_cidr=dict(type="str", required=True),
            service_cidr=dict(type="str", default=""),
            node_networks=dict(type="list", elements="str", default=[]),
            interface_mtus=dict(type="dict", required=True),
            encapsulation=dict(type="str", choices=["vxlan", "ipip", "none"], default="vxlan"),
            mtu=dict(type="int", default=0),
            registry=dict(type="str", default=""),
            calico_block_size=dict(type="int", default=0),
            multus=dict(type="bool", default=False),
            sriov_pfs=dict(type="dict", default={}),
            sriov_networks=dict(type="list", elements="dict", default=[]),
            sriov_resource_prefix=dict(type="str", default="intel.com"),
            schema_dir=dict(type="path", required=True),
            dest=dict(type="path"),
        ),
        add_file_common_args=True,
        supports_check_mode=True,
    )
    if not HAS_YAML:
        module.fail_json(msg="PyYAML is required on the controller", exception=YAML_ERROR)
    try:
        result = build(module.params)
    except CniError as exc:
        module.fail_json(msg=str(exc))
    changed = False
    if module.params["dest"]:
        changed = write(module, module.params["dest"], result["objects"])
    module.exit_json(changed=changed, **result)


if __name__ == "__main__":
    main()
