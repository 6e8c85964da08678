# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Multus (thick plugin): the NetworkAttachmentDefinition CRD, RBAC, daemon config, DaemonSet."""

from __future__ import annotations

import json

from ansible_collections.smcp.platform.plugins.module_utils.cni_render.data import (
    NAD_GROUP,
    NAD_SPEC,
    NS,
    TOLERATE_ALL,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render import objects as k8s


def nad_crd():
    return k8s.crd(
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
        "tolerations": list(TOLERATE_ALL),
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
                "volumeMounts": [k8s.volume_mount("cnibin", "/host/opt/cni/bin", propagation="Bidirectional")],
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
                "env": [k8s.env_var("MULTUS_NODE_NAME", field="spec.nodeName")],
                "volumeMounts": [
                    k8s.volume_mount("cni", "/host/etc/cni/net.d"),
                    k8s.volume_mount("cnibin", "/opt/cni/bin"),
                    k8s.volume_mount("host-run", "/host/run"),
                    k8s.volume_mount("host-var-lib-cni-multus", "/var/lib/cni/multus"),
                    k8s.volume_mount("host-var-lib-kubelet", "/var/lib/kubelet", propagation="HostToContainer"),
                    k8s.volume_mount("host-run-k8s-cni-cncf-io", "/run/k8s.cni.cncf.io"),
                    k8s.volume_mount("host-run-netns", "/run/netns", propagation="HostToContainer"),
                    k8s.volume_mount("multus-daemon-config", "/etc/cni/net.d/multus.d", read_only=True),
                    k8s.volume_mount("hostroot", "/hostroot", propagation="HostToContainer"),
                    k8s.volume_mount("multus-conf-dir", "/etc/cni/multus/net.d"),
                ],
            }
        ],
        "volumes": [
            k8s.host_path_volume("cni", "/etc/cni/net.d"),
            k8s.host_path_volume("cnibin", "/opt/cni/bin"),
            k8s.host_path_volume("hostroot", "/"),
            {
                "name": "multus-daemon-config",
                "configMap": {
                    "name": "multus-daemon-config",
                    "items": [{"key": "daemon-config.json", "path": "daemon-config.json"}],
                },
            },
            k8s.host_path_volume("host-run", "/run"),
            k8s.host_path_volume("host-var-lib-cni-multus", "/var/lib/cni/multus"),
            k8s.host_path_volume("host-var-lib-kubelet", "/var/lib/kubelet"),
            k8s.host_path_volume("host-run-k8s-cni-cncf-io", "/run/k8s.cni.cncf.io"),
            k8s.host_path_volume("host-run-netns", "/run/netns/"),
            k8s.host_path_volume("multus-conf-dir", "/etc/cni/multus/net.d"),
        ],
    }
    return [
        nad_crd(),
        *k8s.component_rbac(
            "multus",
            NS,
            [
                k8s.policy_rule([NAD_GROUP], ["*"], ["*"]),
                k8s.policy_rule([""], ["pods", "pods/status"], ["get", "list", "update", "watch"]),
                k8s.policy_rule(
                    ["resource.k8s.io"], ["resourceclaims", "resourceclaims/status", "resourceslices"], ["get", "list"]
                ),
                k8s.policy_rule(["", "events.k8s.io"], ["events"], ["create", "patch", "update"]),
            ],
        ),
        k8s.api_object(
            "v1",
            "ConfigMap",
            "multus-daemon-config",
            NS,
            {"app": "multus", "tier": "node"},
            data={"daemon-config.json": json.dumps(daemon_config, indent=2)},
        ),
        k8s.daemonset("kube-multus-ds", NS, labels, pod),
    ]
