# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""SR-IOV: node PF settings checked, the device plugin's config, sriov-cni and device plugin, NADs."""

from __future__ import annotations

import json

from ansible_collections.smcp.platform.plugins.module_utils.cni import (
    CniError,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render.data import (
    NAD_GROUP,
    NS,
    TOLERATE_ALL,
)
from ansible_collections.smcp.platform.plugins.module_utils.cni_render import objects as k8s


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
            k8s.api_object(
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
        "tolerations": list(TOLERATE_ALL),
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
                "volumeMounts": [k8s.volume_mount("cnibin", "/host/opt/cni/bin")],
            }
        ],
        "volumes": [k8s.host_path_volume("cnibin", "/opt/cni/bin")],
    }
    dp_pod = {
        "hostNetwork": True,
        "affinity": affinity,
        "tolerations": list(TOLERATE_ALL),
        "serviceAccountName": "sriov-device-plugin",
        "containers": [
            {
                "name": "kube-sriovdp",
                "image": images["device_plugin"],
                "args": ["--log-dir=sriovdp", "--log-level=10"],
                "securityContext": {"privileged": True},
                "resources": {"requests": {"cpu": "250m", "memory": "40Mi"}, "limits": {"cpu": "1", "memory": "200Mi"}},
                "volumeMounts": [
                    k8s.volume_mount("devicesock", "/var/lib/kubelet/"),
                    k8s.volume_mount("log", "/var/log"),
                    k8s.volume_mount("config-volume", "/etc/pcidp"),
                    k8s.volume_mount("device-info", "/var/run/k8s.cni.cncf.io/devinfo/dp"),
                ],
            }
        ],
        "volumes": [
            k8s.host_path_volume("devicesock", "/var/lib/kubelet/"),
            k8s.host_path_volume("log", "/var/log"),
            k8s.host_path_volume("device-info", "/var/run/k8s.cni.cncf.io/devinfo/dp", "DirectoryOrCreate"),
            {
                "name": "config-volume",
                "configMap": {"name": "sriovdp-config", "items": [{"key": "config.json", "path": "config.json"}]},
            },
        ],
    }
    return [
        k8s.api_object("v1", "ServiceAccount", "sriov-device-plugin", NS),
        k8s.api_object(
            "v1",
            "ConfigMap",
            "sriovdp-config",
            NS,
            data={"config.json": json.dumps(sriov_device_plugin_config(nodes, resource_prefix), indent=2)},
        ),
        k8s.daemonset("kube-sriov-cni-ds", NS, {"app": "sriov-cni", "name": "sriov-cni", "tier": "node"}, cni_pod),
        k8s.daemonset(
            "kube-sriov-device-plugin", NS, {"app": "sriovdp", "name": "sriov-device-plugin", "tier": "node"}, dp_pod
        ),
        *render_nads(networks, nodes, resource_prefix),
    ]
