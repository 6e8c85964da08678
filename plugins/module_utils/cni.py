# Copyright: smcp developers
# Apache License 2.0 (see LICENSE)
"""Pod network logic of the cni role: MTU, pod CIDR checks, image mirroring, host CNI config.

Pure stdlib, importable by modules and unit tests. Manifests are built in cni_render/,
validated in cni_schema.py and applied in cni_kube.py.
"""

from __future__ import annotations

import ipaddress
import json

CNIS = ("calico", "flannel")
ENCAPSULATIONS = ("vxlan", "ipip", "none")
# Bytes each encapsulation adds to a packet on the wire (outer IPv4 + UDP + VXLAN headers,
# or the outer IPv4 header of IP-in-IP). Calico's own MTU table uses the same figures.
ENCAP_OVERHEAD = {"vxlan": 50, "ipip": 20, "none": 0}
# The smallest pod MTU accepted: 1280 is the IPv6 minimum link MTU (RFC 8200); below it a
# dual-stack pod network breaks and IPv4 fragments most traffic.
MIN_MTU = 1280
# Per-node pod subnet: kube-controller-manager's --node-cidr-mask-size default (flannel and
# host-local use it); Calico hands out /26 blocks by default.
NODE_MASK = {4: 24, 6: 64}
CALICO_BLOCK_SIZE = {4: 26, 6: 122}


class CniError(ValueError):
    """Bad input: the message names the field, the value and the fix."""


def check_choice(field, value, choices):
    if value not in choices:
        raise CniError("%s=%r is not supported; choose one of: %s" % (field, value, ", ".join(choices)))
    return value


def compute_mtu(interface_mtus, encapsulation, override=0):
    """Pod MTU = smallest node interface MTU - encapsulation overhead (or the override).

    interface_mtus: {host: mtu} of the interface carrying each node's IP.
    Returns {"mtu", "interface_mtu", "overhead", "host"}; raises CniError below MIN_MTU.
    """
    check_choice("cni_encapsulation", encapsulation, ENCAPSULATIONS)
    if not interface_mtus:
        raise CniError("no node interface MTU known: gather facts on every node (the interface holding smcp_node_ip)")
    bad = {h: m for h, m in interface_mtus.items() if not isinstance(m, int) or isinstance(m, bool) or m <= 0}
    if bad:
        raise CniError(
            "interface MTU unknown or invalid on %s" % ", ".join("%s (%r)" % kv for kv in sorted(bad.items()))
        )
    host = min(sorted(interface_mtus), key=lambda h: interface_mtus[h])
    smallest = interface_mtus[host]
    overhead = ENCAP_OVERHEAD[encapsulation]
    if override:
        mtu = int(override)
        if mtu + overhead > smallest:
            raise CniError(
                "cni_mtu=%d plus the %s overhead (%d) exceeds the interface MTU %d of %s; set cni_mtu <= %d or 0 (auto)"
                % (mtu, encapsulation, overhead, smallest, host, smallest - overhead)
            )
    else:
        mtu = smallest - overhead
    if mtu < MIN_MTU:
        raise CniError(
            "pod MTU %d (interface MTU %d on %s minus %s overhead %d) is below the minimum %d; raise the node "
            "interface MTU, or use cni_encapsulation=none when nodes share an L2 network"
            % (mtu, smallest, host, encapsulation, overhead, MIN_MTU)
        )
    return {"mtu": mtu, "interface_mtu": smallest, "overhead": overhead, "host": host}


def _network(field, text):
    try:
        return ipaddress.ip_network(str(text), strict=True)
    except ValueError as exc:
        raise CniError(
            "%s=%r is not a valid network in CIDR notation (%s); example: 10.244.0.0/16" % (field, text, exc)
        ) from None


def check_pod_cidr(pod_cidr, service_cidr="", node_networks=(), node_count=1, node_mask=0):
    """Validate the pod CIDR: valid, big enough for every node, no overlap.

    node_networks: networks (CIDR) of the nodes' interfaces; node_mask: per-node prefix length
    (0 = the default for the family). Returns {"network", "prefixlen", "node_mask", "capacity"}.
    """
    pod = _network("smcp_pod_cidr", pod_cidr)
    mask = node_mask or NODE_MASK[pod.version]
    if pod.prefixlen > mask:
        raise CniError(
            "smcp_pod_cidr=%s is too small: one node needs a /%d; use a prefix of /%d or shorter (e.g. 10.244.0.0/16)"
            % (pod, mask, mask)
        )
    capacity = 2 ** (mask - pod.prefixlen)
    if capacity < node_count:
        need = mask - (node_count - 1).bit_length()
        raise CniError(
            "smcp_pod_cidr=%s is too small: it holds %d node subnets of /%d but the cluster has %d nodes; use /%d "
            "or shorter" % (pod, capacity, mask, node_count, need)
        )
    others = []
    if service_cidr:
        others.append(("smcp_service_cidr", _network("smcp_service_cidr", service_cidr)))
    for net in node_networks:
        others.append(("node network", ipaddress.ip_network(str(net), strict=False)))
    for name, other in others:
        if other.version == pod.version and pod.overlaps(other):
            raise CniError(
                "smcp_pod_cidr=%s overlaps %s %s; choose a pod network that overlaps neither the services nor any "
                "node network" % (pod, name, other)
            )
    return {"network": str(pod), "prefixlen": pod.prefixlen, "node_mask": mask, "capacity": capacity}


def check_cidr_consistency(pod_cidr, cni_cidr, kubeadm_pod_subnet=None, node_pod_cidrs=None):
    """Pod CIDR must agree between smcp_pod_cidr, the CNI config, kubeadm and the nodes.

    kubeadm_pod_subnet: networking.podSubnet of the kubeadm ClusterConfiguration (None = unknown);
    node_pod_cidrs: {node: [podCIDR, ...]} from the Node objects. Returns a list of problems.
    """
    problems = []
    pod = _network("smcp_pod_cidr", pod_cidr)
    if ipaddress.ip_network(cni_cidr) != pod:
        problems.append("CNI pod network %s differs from smcp_pod_cidr %s" % (cni_cidr, pod))
    if kubeadm_pod_subnet is not None:
        subnets = [s.strip() for s in str(kubeadm_pod_subnet).split(",") if s.strip()]
        same = [s for s in subnets if ipaddress.ip_network(s, strict=False).version == pod.version]
        if not same or ipaddress.ip_network(same[0], strict=False) != pod:
            problems.append(
                "kubeadm ClusterConfiguration networking.podSubnet %r differs from smcp_pod_cidr %s (kube-system/"
                "kubeadm-config); the cluster was created with another pod network" % (kubeadm_pod_subnet, pod)
            )
    for node, cidrs in sorted((node_pod_cidrs or {}).items()):
        for cidr in cidrs or ():
            net = ipaddress.ip_network(cidr, strict=False)
            if net.version == pod.version and not net.subnet_of(pod):
                problems.append("Node %s spec.podCIDR %s is outside smcp_pod_cidr %s" % (node, cidr, pod))
    return problems


def mirror_image(ref, registry):
    """Rewrite an image reference through a registry mirror: docker.io/calico/node:v1 -> <mirror>/calico/node:v1.

    The first path element is dropped when it is a registry host (contains a dot or colon,
    or is localhost), as with registry.k8s.io/X -> <mirror>/X for the Kubernetes images.
    """
    if not registry:
        return ref
    first, sep, rest = ref.partition("/")
    if sep and rest and ("." in first or ":" in first or first == "localhost"):
        ref = rest
    return registry.rstrip("/") + "/" + ref


def flannel_conflist(mtu, name="cbr0"):
    """The CNI config flannel's install-cni puts on every node (/etc/cni/net.d/10-flannel.conflist).

    The role writes the same file on the hosts so a node has it before the DaemonSet runs.
    The delegate carries the computed MTU so pods never exceed the encapsulated path.
    """
    return {
        "name": name,
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": True, "isDefaultGateway": True, "mtu": mtu}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def parse_subnet_env(text):
    """Parse /run/flannel/subnet.env (KEY=VALUE lines written by flanneld)."""
    env = {}
    for line in text.splitlines():
        key, sep, value = line.strip().partition("=")
        if sep and key and not key.startswith("#"):
            env[key] = value
    return env


def flannel_delegate(conflist, subnet_env):
    """The bridge config the flannel CNI plugin hands to its delegate for this node.

    Mirrors flannel-io/cni-plugin (flannel_linux.go doCmdAdd): delegate type bridge, ipMasq
    off when flanneld masquerades, mtu from FLANNEL_MTU unless set, host-local IPAM on the
    node subnet FLANNEL_SUBNET with a route to the whole FLANNEL_NETWORK.
    """
    flannel = next((p for p in conflist["plugins"] if p.get("type") == "flannel"), None)
    if flannel is None:
        raise CniError("the conflist %r has no flannel plugin" % conflist.get("name"))
    env = parse_subnet_env(subnet_env) if isinstance(subnet_env, str) else dict(subnet_env)
    for key in ("FLANNEL_NETWORK", "FLANNEL_SUBNET"):
        if key not in env:
            raise CniError("subnet.env lacks %s (written by flanneld once it has a lease)" % key)
    delegate = dict(flannel.get("delegate") or {})
    delegate.setdefault("type", "bridge")
    delegate.setdefault("name", conflist["name"])
    delegate.setdefault("ipMasq", env.get("FLANNEL_IPMASQ", "false") != "true")
    if "mtu" not in delegate and "FLANNEL_MTU" in env:
        delegate["mtu"] = int(env["FLANNEL_MTU"])
    if delegate["type"] == "bridge":
        delegate.setdefault("isGateway", True)
    subnet = ipaddress.ip_network(env["FLANNEL_SUBNET"], strict=False)
    delegate["ipam"] = {
        "type": "host-local",
        "ranges": [[{"subnet": str(subnet)}]],
        "routes": [{"dst": env["FLANNEL_NETWORK"]}],
    }
    delegate["cniVersion"] = conflist.get("cniVersion", "0.3.1")
    return delegate


def to_json(data):
    return json.dumps(data, indent=2, sort_keys=True)
