# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Kubernetes manifests of the pod network: Calico or Flannel, Multus (thick) and SR-IOV.

Written for this collection from the upstream manifests' facts (object names, images, env,
mounts): Calico's calico.yaml (manifest install, Kubernetes datastore), flannel's
kube-flannel.yml, multus-cni deployments/multus-daemonset-thick.yml, sriov-cni
images/sriov-cni-daemonset.yaml and sriov-network-device-plugin deployments/sriovdp-daemonset.yaml.
Every function returns plain dicts (apply order) that cni_schema validates before anything is applied.

One file per layer: ``data`` (names, kinds, schemas), ``objects`` (object builders), one file per
plugin (``calico``, ``flannel``, ``multus``, ``sriov``) and ``manifests`` (``render_all``, ``workloads``).
Import from the submodule that holds a name; this package file holds no code.
"""
