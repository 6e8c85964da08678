# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Flannel: namespace, RBAC, net-conf and CNI config, the kube-flannel DaemonSet."""

from __future__ import annotations

import json

from ansible_collections.smcp.platform.plugins.module_utils.cni import (
    CniError,
    flannel_conflist,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render import objects as k8s


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
        k8s.api_object(
            "v1", "Namespace", ns, labels={"k8s-app": "flannel", "pod-security.kubernetes.io/enforce": "privileged"}
        ),
        *k8s.component_rbac(
            "flannel",
            ns,
            [
                k8s.policy_rule([""], ["pods"], ["get"]),
                k8s.policy_rule([""], ["nodes"], ["get", "list", "watch"]),
                k8s.policy_rule([""], ["nodes/status"], ["patch"]),
            ],
        ),
        k8s.api_object(
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
        k8s.volume_mount("run", "/run/flannel"),
        k8s.volume_mount("flannel-cfg", "/etc/kube-flannel/"),
        k8s.volume_mount("xtables-lock", "/run/xtables.lock"),
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
                "volumeMounts": [k8s.volume_mount("cni-plugin", "/opt/cni/bin")],
            },
            {
                "name": "install-cni",
                "image": images["flannel"],
                "command": ["cp"],
                "args": ["-f", "/etc/kube-flannel/cni-conf.json", "/etc/cni/net.d/10-flannel.conflist"],
                "volumeMounts": [
                    k8s.volume_mount("cni", "/etc/cni/net.d"),
                    k8s.volume_mount("flannel-cfg", "/etc/kube-flannel/"),
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
                    k8s.env_var("POD_NAME", field="metadata.name"),
                    k8s.env_var("POD_NAMESPACE", field="metadata.namespace"),
                    k8s.env_var("EVENT_QUEUE_DEPTH", "5000"),
                    k8s.env_var("CONT_WHEN_CACHE_NOT_READY", "false"),
                ],
                "volumeMounts": run_mounts,
            }
        ],
        "volumes": [
            k8s.host_path_volume("run", "/run/flannel"),
            k8s.host_path_volume("cni-plugin", "/opt/cni/bin"),
            k8s.host_path_volume("cni", "/etc/cni/net.d"),
            {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
            k8s.host_path_volume("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
        ],
    }
    objs.append(k8s.daemonset("kube-flannel-ds", ns, labels, pod))
    return objs
