# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Data of the pod network manifests: namespaces, API groups, Calico's CRD kinds, typed schemas, plurals."""

from __future__ import annotations


NS = "kube-system"
NAD_GROUP = "k8s.cni.cncf.io"
CALICO_GROUP = "crd.projectcalico.org"

# Calico v3.31 CRDs (libcalico-go/config/crd): kind -> (plural, namespaced).
CALICO_KINDS = {
    "BGPConfiguration": ("bgpconfigurations", False),
    "BGPFilter": ("bgpfilters", False),
    "BGPPeer": ("bgppeers", False),
    "BlockAffinity": ("blockaffinities", False),
    "CalicoNodeStatus": ("caliconodestatuses", False),
    "ClusterInformation": ("clusterinformations", False),
    "FelixConfiguration": ("felixconfigurations", False),
    "GlobalNetworkPolicy": ("globalnetworkpolicies", False),
    "GlobalNetworkSet": ("globalnetworksets", False),
    "HostEndpoint": ("hostendpoints", False),
    "IPAMBlock": ("ipamblocks", False),
    "IPAMConfig": ("ipamconfigs", False),
    "IPAMHandle": ("ipamhandles", False),
    "IPPool": ("ippools", False),
    "IPReservation": ("ipreservations", False),
    "KubeControllersConfiguration": ("kubecontrollersconfigurations", False),
    "NetworkPolicy": ("networkpolicies", True),
    "NetworkSet": ("networksets", True),
    "StagedGlobalNetworkPolicy": ("stagedglobalnetworkpolicies", False),
    "StagedKubernetesNetworkPolicy": ("stagedkubernetesnetworkpolicies", True),
    "StagedNetworkPolicy": ("stagednetworkpolicies", True),
    "Tier": ("tiers", False),
}

# Typed schemas for the custom resources this role creates itself; the others keep their fields
# (x-kubernetes-preserve-unknown-fields) as Calico's controllers own them.
_MODES = {"type": "string", "enum": ["Always", "CrossSubnet", "Never"]}
IPPOOL_SPEC = {
    "type": "object",
    "required": ["cidr"],
    "properties": {
        "cidr": {"type": "string"},
        "blockSize": {"type": "integer", "minimum": 20, "maximum": 128},
        "ipipMode": _MODES,
        "vxlanMode": _MODES,
        "natOutgoing": {"type": "boolean"},
        "disabled": {"type": "boolean"},
        "disableBGPExport": {"type": "boolean"},
        "nodeSelector": {"type": "string"},
        "allowedUses": {"type": "array", "items": {"type": "string", "enum": ["Workload", "Tunnel", "LoadBalancer"]}},
        "assignmentMode": {"type": "string", "enum": ["Automatic", "Manual"]},
    },
}
NAD_SPEC = {"type": "object", "properties": {"config": {"type": "string"}}}

# Plural resource names of every kind this role renders (the apply path builds URLs from them).
PLURALS = {
    "Namespace": "namespaces",
    "ServiceAccount": "serviceaccounts",
    "ConfigMap": "configmaps",
    "ClusterRole": "clusterroles",
    "ClusterRoleBinding": "clusterrolebindings",
    "DaemonSet": "daemonsets",
    "Deployment": "deployments",
    "CustomResourceDefinition": "customresourcedefinitions",
    "NetworkAttachmentDefinition": "network-attachment-definitions",
}
PLURALS.update({kind: info[0] for kind, info in CALICO_KINDS.items()})

TOLERATE_ALL = [{"operator": "Exists", "effect": "NoSchedule"}, {"operator": "Exists", "effect": "NoExecute"}]
LINUX_NODES = {"kubernetes.io/os": "linux"}
