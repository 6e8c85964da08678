# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""CNI component versions per Kubernetes minor (Calico, Flannel, Multus, SR-IOV).

Owned by the cni role. The versions table (versions.py) merges this into each release
under the key "cni". Format, per minor ("1.35"):

    {"calico": {"version": "v3.31.3", "images": {"node": "docker.io/calico/node:v3.31.3", ...}},
     "flannel": {"version": ..., "images": {"flannel": ..., "cni_plugin": ...}},
     "multus": {...}, "sriov_cni": {...}, "sriov_device_plugin": {...}}

Image references are the upstream ones; the cni role rewrites them through
smcp_image_registry (module_utils/cni.py mirror_image) for air-gapped sites.

Sources (looked up 2026-11-25):
- Calico v3.31.3: https://docs.tigera.io/calico/latest/reference/component-versions
  (calico/node, calico/cni, calico/kube-controllers v3.31.3); Kubernetes 1.35 tested with
  v3.31 per https://github.com/orgs/projectcalico/discussions/11717 (maintainer answer:
  "v1.35 has been added" to the requirements page; 1.32-1.34 were listed before). No Calico
  release in our sources names 1.36 yet: 1.36 uses the same v3.31.3 (closest tested; revisit
  when a newer line lists 1.36).
- Flannel v0.28.0: https://pkg.go.dev/github.com/flannel-io/flannel@v0.28.0 (published
  2026-01-06); image ghcr.io/flannel-io/flannel (kube-flannel.yml of flannel-io/flannel).
  flannel CNI plugin v1.8.0-flannel1: https://github.com/flannel-io/cni-plugin (tag
  v1.8.0-flannel1, as packaged by nixpkgs pkgs/tools/networking/flannel/plugin.nix).
- Multus v4.2.2, thick image tag "-thick":
  https://github.com/k8snetworkplumbingwg/multus-cni/releases/tag/v4.2.2 (bump seen in
  https://github.com/pelotech/foundation/pull/255; "-thick" tag form in
  https://github.com/open-edge-platform/edge-microvisor-toolkit-standalone-node/pull/162).
- SR-IOV CNI v2.9.0: https://github.com/k8snetworkplumbingwg/sriov-cni/blob/v2.9.0/images/sriov-cni-daemonset.yaml
- SR-IOV network device plugin v3.9.0:
  https://github.com/k8snetworkplumbingwg/sriov-network-device-plugin/blob/v3.9.0/deployments/sriovdp-daemonset.yaml
"""

from __future__ import annotations

import copy

_CALICO = "v3.31.3"
_FLANNEL = "v0.28.0"
_FLANNEL_CNI = "v1.8.0-flannel1"
_MULTUS = "v4.2.2"
_SRIOV_CNI = "v2.9.0"
_SRIOV_DP = "v3.9.0"

_COMMON = {
    "calico": {
        "version": _CALICO,
        "images": {
            "node": "docker.io/calico/node:" + _CALICO,
            "cni": "docker.io/calico/cni:" + _CALICO,
            "kube_controllers": "docker.io/calico/kube-controllers:" + _CALICO,
        },
    },
    "flannel": {
        "version": _FLANNEL,
        "images": {
            "flannel": "ghcr.io/flannel-io/flannel:" + _FLANNEL,
            "cni_plugin": "ghcr.io/flannel-io/flannel-cni-plugin:" + _FLANNEL_CNI,
        },
    },
    "multus": {
        "version": _MULTUS,
        "images": {"multus": "ghcr.io/k8snetworkplumbingwg/multus-cni:" + _MULTUS + "-thick"},
    },
    "sriov_cni": {
        "version": _SRIOV_CNI,
        "images": {"sriov_cni": "ghcr.io/k8snetworkplumbingwg/sriov-cni:" + _SRIOV_CNI},
    },
    "sriov_device_plugin": {
        "version": _SRIOV_DP,
        "images": {"device_plugin": "ghcr.io/k8snetworkplumbingwg/sriov-network-device-plugin:" + _SRIOV_DP},
    },
}

# One entry per Kubernetes minor of the versions table (1.33-1.35) plus 1.36. The same component set
# serves all of them (Calico v3.31 is tested on 1.32-1.35, see the sources above); a minor gets its
# own pins when upstream support differs.
CNI_BY_MINOR = {minor: copy.deepcopy(_COMMON) for minor in ("1.33", "1.34", "1.35", "1.36")}


def cni_release(minor):
    """Return the CNI pins for a Kubernetes minor ("1.35"), or raise ValueError naming the choices."""
    if minor not in CNI_BY_MINOR:
        raise ValueError(
            "no CNI versions pinned for Kubernetes %s; supported minors: %s" % (minor, ", ".join(sorted(CNI_BY_MINOR)))
        )
    return copy.deepcopy(CNI_BY_MINOR[minor])
