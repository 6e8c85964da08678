# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Flannel: namespace, RBAC, net-conf and CNI config, the kube-flannel DaemonSet."""

from __future__ import annotations

import json

from ansible_collections.smcp.platform.plugins.module_utils.cni import (
    CniError,
    flannel_conflist,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.objects import (
    api_object,
    cluster_role_binding,
    daemonset,
    env_var,
    host_path_volume,
    policy_rule,
    volume_mount,
)


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
        api_object(
            "v1", "Namespace", ns, labels={"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"}
        ),
        api_object(
            "rbac.authorization.k8s.io/v1",
            "ClusterRole",
            "flannel",
            rules=[
                policy_rule([""], ["pods"], ["get"]),
                policy_rule([""], ["nodes"], ["get", "list", "watch"]),
                policy_rule([""], ["nodes/status"], ["patch"]),
            ],
        ),
        cluster_role_binding("flannel", "flannel", "flannel", ns),
        api_object("v1", "ServiceAccount", "flannel", ns),
        api_object(
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
        volume_mount("run", "/run/flannel"),
        volume_mount("flannel-cfg", "/etc/kube-flannel/"),
        volume_mount("xtables-lock", "/run/xtables.lock"),
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
                "volumeMounts": [volume_mount("cni-plugin", "/opt/cni/bin")],
            },
            {
                "name": "install-cni",
                "image": images["flannel"],
                "command": ["cp"],
                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                "volumeMounts": [
                    volume_mount("cni", "/etc/cni/net.d"),
                    volume_mount("flannel-cfg", "/etc/kube-flannel/"),
                ],
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
                    env_var("POD_NAME", field="metadata.name"),
                    env_var("POD_NAMESPACE", field="metadata.namespace"),
                    env_var("EVENT_QUEUE_DEPTH", "5000"),
                    env_var("CONT_WHEN_CACHE_NOT_READY", "false"),
                ],
                "volumeMounts": run_mounts,
            }
        ],
        "volumes": [
            host_path_volume("run", "/run/flannel"),
            host_path_volume("cni-plugin", "/opt/cni/bin"),
            host_path_volume("cni", "/etc/cni/net.d"),
            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
            host_path_volume("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
        ],
    }
    objs.append(daemonset("kube-flannel-ds", ns, labels, pod))
    return objs
