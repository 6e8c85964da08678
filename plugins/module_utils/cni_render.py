# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Kubernetes manifests of the pod network: Calico or Flannel, Multus (thick) and SR-IOV.

Written for this collection from the upstream manifests' facts (object names, images, env,
mounts): Calico's calico.yaml (manifest install, Kubernetes datastore), flannel's
kube-flannel.yml, multus-cni deployments/multus-daemonset-thick.yml, sriov-cni
images/sriov-cni-daemonset.yaml and sriov-network-device-plugin deployments/sriovdp-daemonset.yaml.
Every function returns plain dicts (apply order) that cni_schema validates before anything is applied.
"""

from __future__ import annotations

import json

from ansible_collections.smcp.platform.plugins.module_utils.cni import (
    CALICO_BLOCK_SIZE,
    CniError,
    check_choice,
    flannel_conflist,
    mirror_image,
)

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


def _meta(name, namespace=None, labels=None):
    meta = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = dict(labels)
    return meta


def _obj(api_version, kind, name, namespace=None, labels=None, **body):
    obj = {"apiVersion": api_version, "kind": kind, "metadata": _meta(name, namespace, labels)}
    obj.update(body)
    return obj


def crd(group, kind, plural, namespaced, spec_schema=None, short_names=None):
    spec = spec_schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
    names = {"kind": kind, "plural": plural, "singular": plural[:-1] if plural.endswith("s") else plural}
    if kind.endswith("Policy") or plural.endswith("ies"):
        names["singular"] = kind.lower()
    if short_names:
        names["shortNames"] = list(short_names)
    names["listKind"] = kind + "List"
    return _obj(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "%s.%s" % (plural, group),
        spec={
            "group": group,
            "scope": "Namespaced" if namespaced else "Cluster",
            "names": names,
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                            },
                        }
                    },
                }
            ],
        },
    )


def _rule(groups, resources, verbs, names=None):
    rule = {"apiGroups": list(groups), "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _binding(name, role, sa, namespace):
    return _obj(
        "rbac.authorization.k8s.io/v1",
        "ClusterRoleBinding",
        name,
        roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        subjects=[{"kind": "ServiceAccount", "name": sa, "namespace": namespace}],
    )


def _host_path(name, path, type_=None):
    vol = {"name": name, "hostPath": {"path": path}}
    if type_:
        vol["hostPath"]["type"] = type_
    return vol


def _mount(name, path, read_only=False, propagation=None):
    mount = {"name": name, "mountPath": path}
    if read_only:
        mount["readOnly"] = True
    if propagation:
        mount["mountPropagation"] = propagation
    return mount


def _env(name, value=None, field=None, cm=None):
    if field:
        return {"name": name, "valueFrom": {"fieldRef": {"fieldPath": field}}}
    if cm:
        return {"name": name, "valueFrom": {"configMapKeyRef": {"name": cm[0], "key": cm[1]}}}
    return {"name": name, "value": str(value)}


def _daemonset(name, namespace, labels, pod_spec, max_unavailable=1):
    return _obj(
        "apps/v1",
        "DaemonSet",
        name,
        namespace,
        labels,
        spec={
            "selector": {"matchLabels": dict(labels)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": max_unavailable}},
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod_spec},
        },
    )


_TOLERATE_ALL = [{"operator": "Exists", "effect": "NoSchedule"}, {"operator": "Exists", "effect": "NoExecute"}]
_LINUX = {"kubernetes.io/os": "linux"}


def calico_backend(encapsulation):
    """(calico_backend, ipipMode, vxlanMode): VXLAN needs no BGP; IP-in-IP and none route with BIRD."""
    return {
        "vxlan": ("vxlan", "Never", "Always"),
        "ipip": ("bird", "Always", "Never"),
        "none": ("bird", "Never", "Never"),
    }[encapsulation]


def render_calico(cfg, images):
    pod_cidr, mtu, enc = cfg["pod_cidr"], cfg["mtu"], cfg["encapsulation"]
    block = int(cfg.get("calico_block_size") or CALICO_BLOCK_SIZE[4 if ":" not in pod_cidr else 6])
    backend, ipip, vxlan = calico_backend(enc)
    cni_config = {
        "name": "k8s-pod-network",
        "cniVersion": "0.3.1",
        "plugins": [
            {
                "type": "calico",
                "log_level": "info",
                "log_file_path": "/var/log/calico/cni/cni.log",
                "datastore_type": "kubernetes",
                "nodename": "__KUBERNETES_NODE_NAME__",
                "mtu": "__CNI_MTU__",
                "ipam": {"type": "calico-ipam"},
                "policy": {"type": "k8s"},
                "kubernetes": {"kubeconfig": "__KUBECONFIG_FILEPATH__"},
            },
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        ],
    }
    objs = [crd(CALICO_GROUP, k, p, n, IPPOOL_SPEC if k == "IPPool" else None) for k, (p, n) in CALICO_KINDS.items()]
    objs.append(
        _obj(
            "v1",
            "ConfigMap",
            "calico-config",
            NS,
            data={
                "typha_service_name": "none",
                "calico_backend": backend,
                "veth_mtu": str(mtu),
                "cni_network_config": json.dumps(cni_config, indent=2),
            },
        )
    )
    for sa in ("calico-node", "calico-cni-plugin", "calico-kube-controllers"):
        objs.append(_obj("v1", "ServiceAccount", sa, NS))
    calico_all = [CALICO_GROUP]
    objs.append(
        _obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "calico-node",
            rules=[
                _rule([""], ["pods", "nodes", "namespaces"], ["get"]),
                _rule(["discovery.k8s.io"], ["endpointslices"], ["watch", "list"]),
                _rule([""], ["endpoints", "services"], ["watch", "list", "get"]),
                _rule([""], ["configmaps"], ["get"]),
                _rule([""], ["nodes/status"], ["patch", "update"]),
                _rule(["networking.k8s.io"], ["networkpolicies"], ["watch", "list"]),
                _rule(
                    ["policy.networking.k8s.io"],
                    ["adminnetworkpolicies", "baselineadminnetworkpolicies"],
                    ["watch", "list"],
                ),
                _rule([""], ["pods", "namespaces", "serviceaccounts"], ["list", "watch"]),
                _rule([""], ["pods/status"], ["patch"]),
                _rule(calico_all, [info[0] for info in CALICO_KINDS.values()], ["get", "list", "watch"]),
                _rule(calico_all, ["ippools", "felixconfigurations", "clusterinformations"], ["create", "update"]),
                _rule(calico_all, ["caliconodestatuses"], ["update"]),
                _rule([""], ["nodes"], ["get", "list", "watch"]),
                _rule(
                    calico_all,
                    ["blockaffinities", "ipamblocks", "ipamhandles"],
                    ["get", "list", "create", "update", "delete"],
                ),
                _rule(calico_all, ["ipamconfigs"], ["get", "create"]),
                _rule(["apps"], ["daemonsets"], ["get"]),
            ],
        )
    )
    objs.append(
        _obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "calico-cni-plugin",
            rules=[
                _rule([""], ["pods", "nodes", "namespaces"], ["get"]),
                _rule([""], ["pods/status"], ["patch"]),
                _rule(
                    calico_all,
                    [
                        "blockaffinities",
                        "ipamblocks",
                        "ipamhandles",
                        "clusterinformations",
                        "ippools",
                        "ipreservations",
                        "ipamconfigs",
                    ],
                    ["get", "list", "create", "update", "delete"],
                ),
            ],
        )
    )
    objs.append(
        _obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "calico-kube-controllers",
            rules=[
                _rule([""], ["nodes"], ["watch", "list", "get"]),
                _rule([""], ["pods"], ["get", "list", "watch"]),
                _rule(calico_all, ["ipreservations"], ["list"]),
                _rule(
                    calico_all,
                    ["blockaffinities", "ipamblocks", "ipamhandles", "tiers"],
                    ["get", "list", "create", "update", "delete", "watch"],
                ),
                _rule(calico_all, ["ippools"], ["list", "watch"]),
                _rule(calico_all, ["hostendpoints"], ["get", "list", "create", "update", "delete"]),
                _rule(calico_all, ["clusterinformations"], ["get", "list", "create", "update", "watch"]),
                _rule(calico_all, ["kubecontrollersconfigurations"], ["get", "create", "list", "update", "watch"]),
                _rule(["networking.k8s.io"], ["networkpolicies"], ["get", "list", "watch"]),
            ],
        )
    )
    for name in ("calico-node", "calico-cni-plugin", "calico-kube-controllers"):
        objs.append(_binding(name, name, name, NS))

    node_image, cni_image = images["node"], images["cni"]
    common_volume_mounts = [
        _mount("cni-bin-dir", "/host/opt/cni/bin"),
        _mount("cni-net-dir", "/host/etc/cni/net.d"),
    ]
    cni_env = [
        _env("CNI_NETWORK_CONFIG", cm=("calico-config", "cni_network_config")),
        _env("KUBERNETES_NODE_NAME", field="spec.nodeName"),
        _env("CNI_MTU", cm=("calico-config", "veth_mtu")),
        _env("CNI_CONF_NAME", "10-calico.conflist"),
        _env("SLEEP", "false"),
    ]
    node_env = [
        _env("DATASTORE_TYPE", "kubernetes"),
        _env("WAIT_FOR_DATASTORE", "true"),
        _env("NODENAME", field="spec.nodeName"),
        _env("CALICO_NETWORKING_BACKEND", cm=("calico-config", "calico_backend")),
        _env("CLUSTER_TYPE", "k8s,bgp" if backend == "bird" else "k8s"),
        _env("IP", "autodetect"),
        _env("CALICO_IPV4POOL_CIDR", pod_cidr),
        _env("CALICO_IPV4POOL_BLOCK_SIZE", block),
        _env("CALICO_IPV4POOL_IPIP", ipip),
        _env("CALICO_IPV4POOL_VXLAN", vxlan),
        _env("CALICO_IPV6POOL_VXLAN", "Never"),
        _env("FELIX_IPINIPMTU", cm=("calico-config", "veth_mtu")),
        _env("FELIX_VXLANMTU", cm=("calico-config", "veth_mtu")),
        _env("FELIX_WIREGUARDMTU", cm=("calico-config", "veth_mtu")),
        _env("CALICO_DISABLE_FILE_LOGGING", "true"),
        _env("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
        _env("FELIX_IPV6SUPPORT", "false"),
        _env("FELIX_HEALTHENABLED", "true"),
    ]
    live = ["/bin/calico-node", "-felix-live"] + (["-bird-live"] if backend == "bird" else [])
    ready = ["/bin/calico-node", "-felix-ready"] + (["-bird-ready"] if backend == "bird" else [])
    node_pod = {
        "nodeSelector": dict(_LINUX),
        "hostNetwork": True,
        "tolerations": [
            {"effect": "NoSchedule", "operator": "Exists"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists"},
        ],
        "serviceAccountName": "calico-node",
        "terminationGracePeriodSeconds": 0,
        "priorityClassName": "system-node-critical",
        "initContainers": [
            {
                "name": "upgrade-ipam",
                "image": cni_image,
                "command": ["/opt/cni/bin/calico-ipam", "-upgrade"],
                "env": [
                    _env("KUBERNETES_NODE_NAME", field="spec.nodeName"),
                    _env("CALICO_NETWORKING_BACKEND", cm=("calico-config", "calico_backend")),
                ],
                "volumeMounts": [
                    _mount("host-local-net-dir", "/var/lib/cni/networks"),
                    _mount("cni-bin-dir", "/host/opt/cni/bin"),
                ],
                "securityContext": {"privileged": True},
            },
            {
                "name": "install-cni",
                "image": cni_image,
                "command": ["/opt/cni/bin/install"],
                "env": cni_env,
                "volumeMounts": common_volume_mounts,
                "securityContext": {"privileged": True},
            },
            {
                "name": "mount-bpffs",
                "image": node_image,
                "command": ["calico-node", "-init", "-best-effort"],
                "volumeMounts": [
                    _mount("sys-fs", "/sys/fs", propagation="Bidirectional"),
                    _mount("bpffs", "/sys/fs/bpf", propagation="Bidirectional"),
                    _mount("nodeproc", "/nodeproc", read_only=True),
                ],
                "securityContext": {"privileged": True},
            },
        ],
        "containers": [
            {
                "name": "calico-node",
                "image": node_image,
                "env": node_env,
                "securityContext": {"privileged": True},
                "resources": {"requests": {"cpu": "250m"}},
                "lifecycle": {"preStop": {"exec": {"command": ["/bin/calico-node", "-shutdown"]}}},
                "livenessProbe": {
                    "exec": {"command": live},
                    "periodSeconds": 10,
                    "initialDelaySeconds": 10,
                    "failureThreshold": 6,
                    "timeoutSeconds": 10,
                },
                "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 10, "timeoutSeconds": 10},
                "volumeMounts": [
                    _mount("cni-net-dir", "/host/etc/cni/net.d"),
                    _mount("lib-modules", "/lib/modules", read_only=True),
                    _mount("xtables-lock", "/run/xtables.lock"),
                    _mount("var-run-calico", "/var/run/calico"),
                    _mount("var-lib-calico", "/var/lib/calico"),
                    _mount("policysync", "/var/run/nodeagent"),
                    _mount("bpffs", "/sys/fs/bpf"),
                    _mount("cni-log-dir", "/var/log/calico/cni", read_only=True),
                ],
            }
        ],
        "volumes": [
            _host_path("lib-modules", "/lib/modules"),
            _host_path("var-run-calico", "/var/run/calico", "DirectoryOrCreate"),
            _host_path("var-lib-calico", "/var/lib/calico", "DirectoryOrCreate"),
            _host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
            _host_path("sys-fs", "/sys/fs/", "DirectoryOrCreate"),
            _host_path("bpffs", "/sys/fs/bpf", "Directory"),
            _host_path("nodeproc", "/proc"),
            _host_path("cni-bin-dir", "/opt/cni/bin", "DirectoryOrCreate"),
            _host_path("cni-net-dir", "/etc/cni/net.d"),
            _host_path("cni-log-dir", "/var/log/calico/cni"),
            _host_path("host-local-net-dir", "/var/lib/cni/networks"),
            _host_path("policysync", "/var/run/nodeagent", "DirectoryOrCreate"),
        ],
    }
    objs.append(_daemonset("calico-node", NS, {"k8s-app": "calico-node"}, node_pod))
    kc_labels = {"k8s-app": "calico-kube-controllers"}
    objs.append(
        _obj(
            "apps/v1",
            "Deployment",
            "calico-kube-controllers",
            NS,
            kc_labels,
            spec={
                "replicas": 1,
                "selector": {"matchLabels": dict(kc_labels)},
                "strategy": {"type": "Recreate"},
                "template": {
                    "metadata": {"name": "calico-kube-controllers", "namespace": NS, "labels": dict(kc_labels)},
                    "spec": {
                        "nodeSelector": dict(_LINUX),
                        "tolerations": [
                            {"key": "CriticalAddonsOnly", "operator": "Exists"},
                            {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                        ],
                        "serviceAccountName": "calico-kube-controllers",
                        "priorityClassName": "system-cluster-critical",
                        "containers": [
                            {
                                "name": "calico-kube-controllers",
                                "image": images["kube_controllers"],
                                "env": [
                                    _env("ENABLED_CONTROLLERS", "node,loadbalancer"),
                                    _env("DATASTORE_TYPE", "kubernetes"),
                                ],
                                "livenessProbe": {
                                    "exec": {"command": ["/usr/bin/check-status", "-l"]},
                                    "periodSeconds": 10,
                                    "initialDelaySeconds": 10,
                                    "failureThreshold": 6,
                                    "timeoutSeconds": 10,
                                },
                                "readinessProbe": {
                                    "exec": {"command": ["/usr/bin/check-status", "-r"]},
                                    "periodSeconds": 10,
                                },
                                "securityContext": {"runAsNonRoot": True},
                            }
                        ],
                    },
                },
            },
        )
    )
    objs.append(
        _obj(
            CALICO_GROUP + "/v1",
            "IPPool",
            "default-ipv4-ippool",
            spec={
                "cidr": pod_cidr,
                "blockSize": block,
                "ipipMode": ipip,
                "vxlanMode": vxlan,
                "natOutgoing": True,
                "nodeSelector": "all()",
                "allowedUses": ["Workload", "Tunnel"],
            },
        )
    )
    return objs


def render_flannel(cfg, images):
    enc = cfg["encapsulation"]
    if enc == "ipip":
        raise CniError("cni_encapsulation=ipip is not available with flannel; use vxlan, or none (host-gw backend)")
    ns = "kube-flannel"
    labels = {"app": "flannel", "k8s-app": "flannel", "tier": "node"}
    net_conf = {
        "Network": cfg["pod_cidr"],
        "EnableNFTables": False,
        "Backend": {"Type": "vxlan" if enc == "vxlan" else "host-gw"},
    }
    objs = [
        _obj("v1", "Namespace", ns, labels={"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"}),
        _obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "flannel",
            rules=[
                _rule([""], ["pods"], ["get"]),
                _rule([""], ["nodes"], ["get", "list", "watch"]),
                _rule([""], ["nodes/status"], ["patch"]),
            ],
        ),
        _binding("flannel", "flannel", "flannel", ns),
        _obj("v1", "ServiceAccount", "flannel", ns),
        _obj(
            "v1",
            "ConfigMap",
            "kube-flannel-cfg",
            ns,
            labels,
            data={
                "cni-conf.json": json.dumps(flannel_conflist(cfg["mtu"]), indent=2),
                "net-conf.json": json.dumps(net_conf, indent=2),
            },
        ),
    ]
    run_mounts = [
        _mount("run", "/run/flannel"),
        _mount("flannel-cfg", "/etc/kube-flannel/"),
        _mount("xtables-lock", "/run/xtables.lock"),
    ]
    pod = {
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]}]}
                    ]
                }
            }
        },
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "tolerations": [{"operator": "Exists", "effect": "NoSchedule"}],
        "serviceAccountName": "flannel",
        "initContainers": [
            {
                "name": "install-cni-plugin",
                "image": images["cni_plugin"],
                "command": ["cp"],
                "args": ["-f", "/flannel", "/opt/cni/bin/flannel"],
                "volumeMounts": [_mount("cni-plugin", "/opt/cni/bin")],
            },
            {
                "name": "install-cni",
                "image": images["flannel"],
                "command": ["cp"],
                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                "volumeMounts": [_mount("cni", "/etc/cni/net.d"), _mount("flannel-cfg", "/etc/kube-flannel/")],
            },
        ],
        "containers": [
            {
                "name": "kube-flannel",
                "image": images["flannel"],
                "command": ["/opt/bin/flanneld"],
                "args": ["--ip-masq", "--kube-subnet-mgr"],
                "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                "securityContext": {"privileged": False, "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                "env": [
                    _env("POD_NAME", field="metadata.name"),
                    _env("POD_NAMESPACE", field="metadata.namespace"),
                    _env("EVENT_QUEUE_DEPTH", "5000"),
                    _env("CONT_WHEN_CACHE_NOT_READY", "false"),
                ],
                "volumeMounts": run_mounts,
            }
        ],
        "volumes": [
            _host_path("run", "/run/flannel"),
            _host_path("cni-plugin", "/opt/cni/bin"),
            _host_path("cni", "/etc/cni/net.d"),
            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
            _host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
        ],
    }
    objs.append(_daemonset("kube-flannel-ds", ns, labels, pod))
    return objs


def nad_crd():
    return crd(
        NAD_GROUP, "NetworkAttachmentDefinition", "network-attachment-definitions", True, NAD_SPEC, ["net-attach-def"]
    )


def render_multus(images):
    labels = {"app": "multus", "name": "multus", "tier": "node"}
    daemon_config = {
        "chrootDir": "/hostroot",
        "cniVersion": "0.3.1",
        "logLevel": "verbose",
        "logToStderr": True,
        "cniConfigDir": "/host/etc/cni/net.d",
        "multusAutoconfigDir": "/host/etc/cni/net.d",
        "multusConfigFile": "auto",
        "socketDir": "/host/run/multus/",
    }
    pod = {
        "hostNetwork": True,
        "hostPID": True,
        "tolerations": list(_TOLERATE_ALL),
        "serviceAccountName": "multus",
        "terminationGracePeriodSeconds": 10,
        "initContainers": [
            {
                "name": "install-multus-binary",
                "image": images["multus"],
                "command": ["/usr/src/multus-cni/bin/install_multus", "-d", "/host/opt/cni/bin", "-t", "thick"],
                "resources": {"requests": {"cpu": "10m", "memory": "15Mi"}},
                "securityContext": {"privileged": True},
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "volumeMounts": [_mount("cnibin", "/host/opt/cni/bin", propagation="Bidirectional")],
            }
        ],
        "containers": [
            {
                "name": "kube-multus",
                "image": images["multus"],
                "command": ["/usr/src/multus-cni/bin/multus-daemon"],
                "resources": {
                    "requests": {"cpu": "100m", "memory": "50Mi"},
                    "limits": {"cpu": "100m", "memory": "50Mi"},
                },
                "securityContext": {"privileged": True},
                "terminationMessagePolicy": "FallbackToLogsOnError",
                "env": [_env("MULTUS_NODE_NAME", field="spec.nodeName")],
                "volumeMounts": [
                    _mount("cni", "/host/etc/cni/net.d"),
                    _mount("cnibin", "/opt/cni/bin"),
                    _mount("host-run", "/host/run"),
                    _mount("host-var-lib-cni-multus", "/var/lib/cni/multus"),
                    _mount("host-var-lib-kubelet", "/var/lib/kubelet", propagation="HostToContainer"),
                    _mount("host-run-k8s-cni-cncf-io", "/run/k8s.cni.cncf.io"),
                    _mount("host-run-netns", "/run/netns", propagation="HostToContainer"),
                    _mount("multus-daemon-config", "/etc/cni/net.d/multus.d", read_only=True),
                    _mount("hostroot", "/hostroot", propagation="HostToContainer"),
                    _mount("multus-conf-dir", "/etc/cni/multus/net.d"),
                ],
            }
        ],
        "volumes": [
            _host_path("cni", "/etc/cni/net.d"),
            _host_path("cnibin", "/opt/cni/bin"),
            _host_path("hostroot", "/"),
            {
                "name": "multus-daemon-config",
                "configMap": {
                    "name": "multus-daemon-config",
                    "items": [{"key": "daemon-config.json", "path": "daemon-config.json"}],
                },
            },
            _host_path("host-run", "/run"),
            _host_path("host-var-lib-cni-multus", "/var/lib/cni/multus"),
            _host_path("host-var-lib-kubelet", "/var/lib/kubelet"),
            _host_path("host-run-k8s-cni-cncf-io", "/run/k8s.cni.cncf.io"),
            _host_path("host-run-netns", "/run/netns/"),
            _host_path("multus-conf-dir", "/etc/cni/multus/net.d"),
        ],
    }
    return [
        nad_crd(),
        _obj(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "multus",
            rules=[
                _rule([NAD_GROUP], ["*"], ["*"]),
                _rule([""], ["pods", "pods/status"], ["get", "list", "update", "watch"]),
                _rule(
                    ["resource.k8s.io"], ["resourceclaims", "resourceclaims/status", "resourceslices"], ["get", "list"]
                ),
                _rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
            ],
        ),
        _binding("multus", "multus", "multus", NS),
        _obj("v1", "ServiceAccount", "multus", NS),
        _obj(
            "v1",
            "ConfigMap",
            "multus-daemon-config",
            NS,
            {"app": "multus", "tier": "node"},
            data={"daemon-config.json": json.dumps(daemon_config, indent=2)},
        ),
        _daemonset("kube-multus-ds", NS, labels, pod),
    ]


def check_sriov_nodes(nodes, known_hosts=None):
    """nodes: {host: [{"name": pf, "num_vfs": n, "resource_name": r}, ...]} -> the same, checked."""
    checked = {}
    for host, pfs in sorted((nodes or {}).items()):
        if known_hosts is not None and host not in known_hosts:
            raise CniError("cni_sriov_pfs is set for %s, which is not a cluster node" % host)
        seen = set()
        out = []
        for i, pf in enumerate(pfs or []):
            where = "cni_sriov_pfs[%d] on %s" % (i, host)
            if not isinstance(pf, dict) or not pf.get("name"):
                raise CniError("%s needs a name (the PF interface, e.g. ens1f0)" % where)
            if pf["name"] in seen:
                raise CniError("%s: PF %s is listed twice" % (where, pf["name"]))
            seen.add(pf["name"])
            num = pf.get("num_vfs")
            if not isinstance(num, int) or isinstance(num, bool) or num < 1:
                raise CniError("%s: num_vfs=%r must be an integer >= 1" % (where, num))
            resource = pf.get("resource_name") or ""
            if not resource or not resource.replace("_", "").isalnum():
                raise CniError(
                    "%s: resource_name=%r must be letters, digits and _ (e.g. sriov_net_a)" % (where, resource)
                )
            out.append({"name": pf["name"], "num_vfs": num, "resource_name": resource})
        if out:
            checked[host] = out
    return checked


def sriov_device_plugin_config(nodes, resource_prefix):
    """The sriovdp config.json: one resource per resource name, selecting its PFs' VFs by PF name."""
    resources = {}
    for pfs in nodes.values():
        for pf in pfs:
            names = resources.setdefault(pf["resource_name"], [])
            if pf["name"] not in names:
                names.append(pf["name"])
    return {
        "resourceList": [
            {"resourceName": name, "resourcePrefix": resource_prefix, "selectors": {"pfNames": sorted(pfs)}}
            for name, pfs in sorted(resources.items())
        ]
    }


def render_nads(networks, nodes, resource_prefix):
    """NetworkAttachmentDefinitions of type sriov from cni_sriov_networks."""
    resources = {pf["resource_name"] for pfs in nodes.values() for pf in pfs}
    objs = []
    for i, net in enumerate(networks or []):
        where = "cni_sriov_networks[%d]" % i
        if not isinstance(net, dict) or not net.get("name"):
            raise CniError("%s needs a name" % where)
        if net.get("resource_name") not in resources:
            raise CniError(
                "%s (%s): resource_name=%r is not provided by any PF in cni_sriov_pfs (known: %s)"
                % (where, net["name"], net.get("resource_name"), ", ".join(sorted(resources)) or "none")
            )
        config = {"cniVersion": "1.0.0", "name": net["name"], "type": "sriov"}
        if net.get("vlan"):
            config["vlan"] = int(net["vlan"])
        config["ipam"] = net.get("ipam") or {}
        objs.append(
            _obj(
                NAD_GROUP + "/v1",
                "NetworkAttachmentDefinition",
                net["name"],
                net.get("namespace") or "default",
                spec={"config": json.dumps(config, sort_keys=True)},
            )
        )
        objs[-1]["metadata"]["annotations"] = {
            "k8s.v1.cni.cncf.io/resourceName": "%s/%s" % (resource_prefix, net["resource_name"])
        }
    return objs


def render_sriov(nodes, networks, resource_prefix, images):
    hosts = sorted(nodes)
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/hostname", "operator": "In", "values": hosts}]}
                ]
            }
        }
    }
    cni_pod = {
        "affinity": affinity,
        "tolerations": list(_TOLERATE_ALL),
        "containers": [
            {
                "name": "kube-sriov-cni",
                "image": images["sriov_cni"],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "privileged": False,
                    "readOnlyRootFilesystem": True,
                    "capabilities": {"drop": ["ALL"]},
                },
                "resources": {
                    "requests": {"cpu": "100m", "memory": "50Mi"},
                    "limits": {"cpu": "100m", "memory": "50Mi"},
                },
                "volumeMounts": [_mount("cnibin", "/host/opt/cni/bin")],
            }
        ],
        "volumes": [_host_path("cnibin", "/opt/cni/bin")],
    }
    dp_pod = {
        "hostNetwork": True,
        "affinity": affinity,
        "tolerations": list(_TOLERATE_ALL),
        "serviceAccountName": "sriov-device-plugin",
        "containers": [
            {
                "name": "kube-sriovdp",
                "image": images["device_plugin"],
                "args": ["--log-dir=sriovdp", "--log-level=10"],
                "securityContext": {"privileged": True},
                "resources": {"requests": {"cpu": "250m", "memory": "40Mi"}, "limits": {"cpu": "1", "memory": "200Mi"}},
                "volumeMounts": [
                    _mount("devicesock", "/var/lib/kubelet/"),
                    _mount("log", "/var/log"),
                    _mount("config-volume", "/etc/pcidp"),
                    _mount("device-info", "/var/run/k8s.cni.cncf.io/devinfo/dp"),
                ],
            }
        ],
        "volumes": [
            _host_path("devicesock", "/var/lib/kubelet/"),
            _host_path("log", "/var/log"),
            _host_path("device-info", "/var/run/k8s.cni.cncf.io/devinfo/dp", "DirectoryOrCreate"),
            {
                "name": "config-volume",
                "configMap": {"name": "sriovdp-config", "items": [{"key": "config.json", "path": "config.json"}]},
            },
        ],
    }
    return [
        _obj("v1", "ServiceAccount", "sriov-device-plugin", NS),
        _obj(
            "v1",
            "ConfigMap",
            "sriovdp-config",
            NS,
            data={"config.json": json.dumps(sriov_device_plugin_config(nodes, resource_prefix), indent=2)},
        ),
        _daemonset("kube-sriov-cni-ds", NS, {"app": "sriov-cni", "name": "sriov-cni", "tier": "node"}, cni_pod),
        _daemonset(
            "kube-sriov-device-plugin", NS, {"app": "sriovdp", "name": "sriov-device-plugin", "tier": "node"}, dp_pod
        ),
        *render_nads(networks, nodes, resource_prefix),
    ]


def _mirror_all(images, registry):
    return {key: mirror_image(ref, registry) for key, ref in images.items()}


def render_all(cfg, pins):
    """Every manifest of the pod network for cfg, in apply order.

    cfg: cni, pod_cidr, encapsulation, mtu, registry, calico_block_size, multus (bool),
    sriov_nodes ({host: [pf]}), sriov_networks, sriov_resource_prefix.
    pins: CNI_BY_MINOR[minor]. Returns (objects, images used).
    """
    check_choice("smcp_cni", cfg["cni"], ("calico", "flannel"))
    registry = cfg.get("registry") or ""
    used = {}
    if cfg["cni"] == "calico":
        images = _mirror_all(pins["calico"]["images"], registry)
        objs = render_calico(cfg, images)
    else:
        images = _mirror_all(pins["flannel"]["images"], registry)
        objs = render_flannel(cfg, images)
    used.update(images)
    nodes = cfg.get("sriov_nodes") or {}
    if cfg.get("multus") or nodes:
        images = _mirror_all(pins["multus"]["images"], registry)
        objs += render_multus(images)
        used.update(images)
    if nodes:
        images = _mirror_all(dict(pins["sriov_cni"]["images"], **pins["sriov_device_plugin"]["images"]), registry)
        objs += render_sriov(
            nodes, cfg.get("sriov_networks") or [], cfg.get("sriov_resource_prefix") or "intel.com", images
        )
        used.update(images)
    elif cfg.get("sriov_networks"):
        raise CniError("cni_sriov_networks is set but no node has cni_sriov_pfs")
    return objs, used


def workloads(objs):
    """(kind, namespace, name) of the DaemonSets and Deployments to wait for."""
    return [
        (o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"])
        for o in objs
        if o["kind"] in ("DaemonSet", "Deployment")
    ]
