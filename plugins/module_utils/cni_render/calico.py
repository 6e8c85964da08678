# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Calico (manifest install, Kubernetes datastore): CRDs, config, RBAC, calico-node, kube-controllers, IPPool."""

from __future__ import annotations

import json

from ansible_collections.smcp.platform.plugins.module_utils.cni import (
    CALICO_BLOCK_SIZE,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.data import (
    CALICO_GROUP,
    CALICO_KINDS,
    IPPOOL_SPEC,
    LINUX_NODES,
    NS,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render import objects as k8s

_COMPONENTS = ("calico-node", "calico-cni-plugin", "calico-kube-controllers")
_CALICO_ALL = [CALICO_GROUP]


def calico_backend(encapsulation):
    """(calico_backend, ipipMode, vxlanMode): VXLAN needs no BGP; IP-in-IP and none route with BIRD."""
    return {
        "vxlan": ("vxlan", "Never", "Always"),
        "ipip": ("bird", "Always", "Never"),
        "none": ("bird", "Never", "Never"),
    }[encapsulation]


def _cni_network_config():
    """The CNI config install-cni writes on each node (it fills in the placeholders there)."""
    return {
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


def _config_map(backend, mtu):
    """calico-config: the backend, the veth MTU and the CNI network config."""
    return k8s.api_object(
        "v1",
        "ConfigMap",
        "calico-config",
        NS,
        data={
            "typha_service_name": "none",
            "calico_backend": backend,
            "veth_mtu": str(mtu),
            "cni_network_config": json.dumps(_cni_network_config(), indent=2),
        },
    )


def _node_role():
    """The ClusterRole of calico-node."""
    return k8s.cluster_role(
        "calico-node",
        [
            k8s.policy_rule([""], ["pods", "nodes", "namespaces"], ["get"]),
            k8s.policy_rule(["discovery.k8s.io"], ["endpointslices"], ["watch", "list"]),
            k8s.policy_rule([""], ["endpoints", "services"], ["watch", "list", "get"]),
            k8s.policy_rule([""], ["configmaps"], ["get"]),
            k8s.policy_rule([""], ["nodes/status"], ["patch", "update"]),
            k8s.policy_rule(["networking.k8s.io"], ["networkpolicies"], ["watch", "list"]),
            k8s.policy_rule(
                ["policy.networking.k8s.io"],
                ["adminnetworkpolicies", "baselineadminnetworkpolicies"],
                ["watch", "list"],
            ),
            k8s.policy_rule([""], ["pods", "namespaces", "serviceaccounts"], ["list", "watch"]),
            k8s.policy_rule([""], ["pods/status"], ["patch"]),
            k8s.policy_rule(_CALICO_ALL, [info[0] for info in CALICO_KINDS.values()], ["get", "list", "watch"]),
            k8s.policy_rule(
                _CALICO_ALL, ["ippools", "felixconfigurations", "clusterinformations"], ["create", "update"]
            ),
            k8s.policy_rule(_CALICO_ALL, ["caliconodestatuses"], ["update"]),
            k8s.policy_rule([""], ["nodes"], ["get", "list", "watch"]),
            k8s.policy_rule(
                _CALICO_ALL,
                ["blockaffinities", "ipamblocks", "ipamhandles"],
                ["get", "list", "create", "update", "delete"],
            ),
            k8s.policy_rule(_CALICO_ALL, ["ipamconfigs"], ["get", "create"]),
            k8s.policy_rule(["apps"], ["daemonsets"], ["get"]),
        ],
    )


def _cni_plugin_role():
    """The ClusterRole of calico-cni-plugin."""
    return k8s.cluster_role(
        "calico-cni-plugin",
        [
            k8s.policy_rule([""], ["pods", "nodes", "namespaces"], ["get"]),
            k8s.policy_rule([""], ["pods/status"], ["patch"]),
            k8s.policy_rule(
                _CALICO_ALL,
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


def _kube_controllers_role():
    """The ClusterRole of calico-kube-controllers."""
    return k8s.cluster_role(
        "calico-kube-controllers",
        [
            k8s.policy_rule([""], ["nodes"], ["watch", "list", "get"]),
            k8s.policy_rule([""], ["pods"], ["get", "list", "watch"]),
            k8s.policy_rule(_CALICO_ALL, ["ipreservations"], ["list"]),
            k8s.policy_rule(
                _CALICO_ALL,
                ["blockaffinities", "ipamblocks", "ipamhandles", "tiers"],
                ["get", "list", "create", "update", "delete", "watch"],
            ),
            k8s.policy_rule(_CALICO_ALL, ["ippools"], ["list", "watch"]),
            k8s.policy_rule(_CALICO_ALL, ["hostendpoints"], ["get", "list", "create", "update", "delete"]),
            k8s.policy_rule(_CALICO_ALL, ["clusterinformations"], ["get", "list", "create", "update", "watch"]),
            k8s.policy_rule(
                _CALICO_ALL, ["kubecontrollersconfigurations"], ["get", "create", "list", "update", "watch"]
            ),
            k8s.policy_rule(["networking.k8s.io"], ["networkpolicies"], ["get", "list", "watch"]),
        ],
    )


def _rbac():
    """ServiceAccounts, ClusterRoles and ClusterRoleBindings of the three Calico components."""
    objs = [k8s.api_object("v1", "ServiceAccount", sa, NS) for sa in _COMPONENTS]
    objs += [_node_role(), _cni_plugin_role(), _kube_controllers_role()]
    objs += [k8s.cluster_role_binding(name, name, name, NS) for name in _COMPONENTS]
    return objs


def _cni_env():
    """Environment of install-cni."""
    return [
        k8s.env_var("CNI_NETWORK_CONFIG", cm=("calico-config", "cni_network_config")),
        k8s.env_var("KUBERNETES_NODE_NAME", field="spec.nodeName"),
        k8s.env_var("CNI_MTU", cm=("calico-config", "veth_mtu")),
        k8s.env_var("CNI_CONF_NAME", "10-calico.conflist"),
        k8s.env_var("SLEEP", "false"),
    ]


def _node_env(backend, pod_cidr, block, ipip, vxlan):
    """Environment of calico-node: datastore, backend, the IPv4 pool and Felix settings."""
    return [
        k8s.env_var("DATASTORE_TYPE", "kubernetes"),
        k8s.env_var("WAIT_FOR_DATASTORE", "true"),
        k8s.env_var("NODENAME", field="spec.nodeName"),
        k8s.env_var("CALICO_NETWORKING_BACKEND", cm=("calico-config", "calico_backend")),
        k8s.env_var("CLUSTER_TYPE", "k8s,bgp" if backend == "bird" else "k8s"),
        k8s.env_var("IP", "autodetect"),
        k8s.env_var("CALICO_IPV4POOL_CIDR", pod_cidr),
        k8s.env_var("CALICO_IPV4POOL_BLOCK_SIZE", block),
        k8s.env_var("CALICO_IPV4POOL_IPIP", ipip),
        k8s.env_var("CALICO_IPV4POOL_VXLAN", vxlan),
        k8s.env_var("CALICO_IPV6POOL_VXLAN", "Never"),
        k8s.env_var("FELIX_IPINIPMTU", cm=("calico-config", "veth_mtu")),
        k8s.env_var("FELIX_VXLANMTU", cm=("calico-config", "veth_mtu")),
        k8s.env_var("FELIX_WIREGUARDMTU", cm=("calico-config", "veth_mtu")),
        k8s.env_var("CALICO_DISABLE_FILE_LOGGING", "true"),
        k8s.env_var("FELIX_DEFAULTENDPOINTTOHOSTACTION", "ACCEPT"),
        k8s.env_var("FELIX_IPV6SUPPORT", "false"),
        k8s.env_var("FELIX_HEALTHENABLED", "true"),
    ]


def _node_init_containers(node_image, cni_image):
    """upgrade-ipam, install-cni and mount-bpffs."""
    common_volume_mounts = [
        k8s.volume_mount("cni-bin-dir", "/host/opt/cni/bin"),
        k8s.volume_mount("cni-net-dir", "/host/etc/cni/net.d"),
    ]
    return [
        {
            "name": "upgrade-ipam",
            "image": cni_image,
            "command": ["/opt/cni/bin/calico-ipam", "-upgrade"],
            "env": [
                k8s.env_var("KUBERNETES_NODE_NAME", field="spec.nodeName"),
                k8s.env_var("CALICO_NETWORKING_BACKEND", cm=("calico-config", "calico_backend")),
            ],
            "volumeMounts": [
                k8s.volume_mount("host-local-net-dir", "/var/lib/cni/networks"),
                k8s.volume_mount("cni-bin-dir", "/host/opt/cni/bin"),
            ],
            "securityContext": {"privileged": True},
        },
        {
            "name": "install-cni",
            "image": cni_image,
            "command": ["/opt/cni/bin/install"],
            "env": _cni_env(),
            "volumeMounts": common_volume_mounts,
            "securityContext": {"privileged": True},
        },
        {
            "name": "mount-bpffs",
            "image": node_image,
            "command": ["calico-node", "-init", "-best-effort"],
            "volumeMounts": [
                k8s.volume_mount("sys-fs", "/sys/fs", propagation="Bidirectional"),
                k8s.volume_mount("bpffs", "/sys/fs/bpf", propagation="Bidirectional"),
                k8s.volume_mount("nodeproc", "/nodeproc", read_only=True),
            ],
            "securityContext": {"privileged": True},
        },
    ]


def _node_container(node_image, backend, node_env):
    """The calico-node container with its health probes (BIRD's too when it routes)."""
    live = ["/bin/calico-node", "-felix-live"] + (["-bird-live"] if backend == "bird" else [])
    ready = ["/bin/calico-node", "-felix-ready"] + (["-bird-ready"] if backend == "bird" else [])
    return {
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
            k8s.volume_mount("cni-net-dir", "/host/etc/cni/net.d"),
            k8s.volume_mount("lib-modules", "/lib/modules", read_only=True),
            k8s.volume_mount("xtables-lock", "/run/xtables.lock"),
            k8s.volume_mount("var-run-calico", "/var/run/calico"),
            k8s.volume_mount("var-lib-calico", "/var/lib/calico"),
            k8s.volume_mount("policysync", "/var/run/nodeagent"),
            k8s.volume_mount("bpffs", "/sys/fs/bpf"),
            k8s.volume_mount("cni-log-dir", "/var/log/calico/cni", read_only=True),
        ],
    }


def _node_volumes():
    """Host paths calico-node and its init containers use."""
    return [
        k8s.host_path_volume("lib-modules", "/lib/modules"),
        k8s.host_path_volume("var-run-calico", "/var/run/calico", "DirectoryOrCreate"),
        k8s.host_path_volume("var-lib-calico", "/var/lib/calico", "DirectoryOrCreate"),
        k8s.host_path_volume("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
        k8s.host_path_volume("sys-fs", "/sys/fs/", "DirectoryOrCreate"),
        k8s.host_path_volume("bpffs", "/sys/fs/bpf", "Directory"),
        k8s.host_path_volume("nodeproc", "/proc"),
        k8s.host_path_volume("cni-bin-dir", "/opt/cni/bin", "DirectoryOrCreate"),
        k8s.host_path_volume("cni-net-dir", "/etc/cni/net.d"),
        k8s.host_path_volume("cni-log-dir", "/var/log/calico/cni"),
        k8s.host_path_volume("host-local-net-dir", "/var/lib/cni/networks"),
        k8s.host_path_volume("policysync", "/var/run/nodeagent", "DirectoryOrCreate"),
    ]


def _node_daemonset(images, backend, node_env):
    """The calico-node DaemonSet."""
    pod = {
        "nodeSelector": dict(LINUX_NODES),
        "hostNetwork": True,
        "tolerations": [
            {"effect": "NoSchedule", "operator": "Exists"},
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists"},
        ],
        "serviceAccountName": "calico-node",
        "terminationGracePeriodSeconds": 0,
        "priorityClassName": "system-node-critical",
        "initContainers": _node_init_containers(images["node"], images["cni"]),
        "containers": [_node_container(images["node"], backend, node_env)],
        "volumes": _node_volumes(),
    }
    return k8s.daemonset("calico-node", NS, {"k8s-app": "calico-node"}, pod)


def _kube_controllers(image):
    """The calico-kube-controllers Deployment."""
    kc_labels = {"k8s-app": "calico-kube-controllers"}
    return k8s.api_object(
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
                    "nodeSelector": dict(LINUX_NODES),
                    "tolerations": [
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                    ],
                    "serviceAccountName": "calico-kube-controllers",
                    "priorityClassName": "system-cluster-critical",
                    "containers": [
                        {
                            "name": "calico-kube-controllers",
                            "image": image,
                            "env": [
                                k8s.env_var("ENABLED_CONTROLLERS", "node,loadbalancer"),
                                k8s.env_var("DATASTORE_TYPE", "kubernetes"),
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


def _ip_pool(pod_cidr, block, ipip, vxlan):
    """The default IPv4 IPPool."""
    return k8s.api_object(
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


def render_calico(cfg, images):
    """Every Calico object in apply order: CRDs, config, RBAC, calico-node, kube-controllers, the default IPPool."""
    pod_cidr = cfg["pod_cidr"]
    block = int(cfg.get("calico_block_size") or CALICO_BLOCK_SIZE[4 if ":" not in pod_cidr else 6])
    backend, ipip, vxlan = calico_backend(cfg["encapsulation"])
    objs = [
        k8s.crd(CALICO_GROUP, k, p, n, IPPOOL_SPEC if k == "IPPool" else None) for k, (p, n) in CALICO_KINDS.items()
    ]
    objs.append(_config_map(backend, cfg["mtu"]))
    objs += _rbac()
    objs.append(_node_daemonset(images, backend, _node_env(backend, pod_cidr, block, ipip, vxlan)))
    objs.append(_kube_controllers(images["kube_controllers"]))
    objs.append(_ip_pool(pod_cidr, block, ipip, vxlan))
    return objs
