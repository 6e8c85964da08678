# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""The rules for host names, addresses and cluster networks: one copy for the playbooks and the API.

Preflight (``preflight/``, ``preflight_cluster.py``) and the management API
(``smcp_api.schemas``, loaded through ``smcp_api.collection.module_utils("netrules")``) both call
these functions, so a value one of them accepts the other accepts too.

Every check returns ``Finding`` objects (an empty list when the value is good). A finding names
the field, the value, what is wrong, what is needed and the fix; ``message()`` renders it as one
sentence for an API answer, preflight turns it into a ``Problem`` with its own check id.

The limits are kubeadm's (cmd/kubeadm/app/constants and apis/kubeadm/validation):

* service subnet: at most 20 bits of host space (``MaximumBitsForServiceSubnet``: /12 for IPv4,
  /108 for IPv6) and at least 10 addresses (``MinimumAddressesInServiceSubnet``: /28, /124);
* pod subnet: no smaller than one node's range (the node mask, kube-controller-manager's
  ``--node-cidr-mask-size``: /24 for IPv4 and /64 for IPv6 by default) and at most 16 bits larger
  (``PodSubnetNodeMaskMaxDiff``); here also large enough for one node range per node.

Standard library only; importable on the controller and on targets.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

# kube-controller-manager --node-cidr-mask-size defaults (kubeadm passes them on)
NODE_MASK = {4: 24, 6: 64}
# kubeadm: MaximumBitsForServiceSubnet, MinimumAddressesInServiceSubnet, PodSubnetNodeMaskMaxDiff
SERVICE_MAX_HOST_BITS = 20
SERVICE_MIN_ADDRESSES = 10
POD_NODE_MASK_MAX_DIFF = 16
# Linux HOST_NAME_MAX: host_prep makes the node name the host's name.
HOSTNAME_MAX = 64

EXAMPLE = {
    "pod_cidr": {4: "10.244.0.0/16", 6: "fd00:10:244::/56"},
    "service_cidr": {4: "10.96.0.0/12", 6: "fd00:10:96::/112"},
}
# Networks a pod or service range must stay out of: what they are, and the ranges.
RESERVED = (
    ("unspecified ('this network')", ("0.0.0.0/8", "::/128")),
    ("loopback", ("127.0.0.0/8", "::1/128")),
    ("link-local", ("169.254.0.0/16", "fe80::/10")),
    ("multicast", ("224.0.0.0/4", "ff00::/8")),
    ("reserved (class E and broadcast)", ("240.0.0.0/4",)),
)

_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_DNS_LABEL_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")


class Finding(object):
    """One thing wrong with one value: field, value, what is wrong, what is needed, the fix."""

    __slots__ = ("field", "fix", "need", "rule", "value", "what")

    def __init__(self, rule: str, field: str, value: Any, what: str, need: str, fix: str) -> None:
        self.rule = rule
        self.field = field
        self.value = value
        self.what = what
        self.need = need
        self.fix = fix

    def detail(self) -> str:
        """The sentence without the field name (for an answer that names the field already)."""
        return "%s %s (need %s); %s" % (_shown(self.value), self.what, self.need, self.fix)

    def message(self) -> str:
        """``<field>: <value> <what> (need <need>); <fix>``."""
        return "%s: %s" % (self.field, self.detail())

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "field": self.field,
            "value": self.value,
            "what": self.what,
            "need": self.need,
            "fix": self.fix,
        }

    def __repr__(self) -> str:
        return "Finding(%r)" % self.message()


def _shown(value: Any) -> str:
    text = value if isinstance(value, str) else str(value)
    if len(text) > 80:
        text = text[:77] + "..."
    return repr(text)


# ------------------------------------------------------------------ names and addresses


def hostname_reasons(name: Any) -> list[str]:
    """Why ``name`` is not a Kubernetes node name (lower-case RFC 1123 subdomain) that Linux can carry."""
    if not isinstance(name, str) or not name:
        return ["empty"]
    reasons = []
    if len(name) > HOSTNAME_MAX:
        reasons.append("longer than %d characters (the Linux host name limit)" % HOSTNAME_MAX)
    if name != name.lower():
        reasons.append("contains upper-case letters")
    for label in name.lower().split("."):
        if not _LABEL_RE.match(label):
            reasons.append(
                "label %r is not an RFC 1123 label (a-z, 0-9, '-', 1-63 chars, no leading/trailing '-')" % label
            )
    return reasons


def check_hostname(name: Any, field: str = "name") -> list[Finding]:
    """A host (node) name: lower-case RFC 1123, at most 64 characters; one finding listing every reason."""
    reasons = hostname_reasons(name)
    if not reasons:
        return []
    labels = [re.sub(r"[^a-z0-9-]+", "-", label).strip("-")[:63] for label in str(name or "").lower().split(".")]
    suggestion = ".".join(label for label in labels if label)[:HOSTNAME_MAX].strip(".-") or "node-1"
    return [
        Finding(
            "hostname",
            field,
            name,
            "is not a valid Kubernetes node name (%s)" % "; ".join(reasons),
            "a lower-case RFC 1123 name: a-z, 0-9, '-' and '.', at most %d characters" % HOSTNAME_MAX,
            "use e.g. %r" % suggestion,
        )
    ]


def is_ip(value: Any) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def address_reasons(value: Any) -> list[str]:
    """Why ``value`` is neither an IP literal nor a DNS name (empty when it is one of them)."""
    if not isinstance(value, str) or not value:
        return ["empty"]
    try:
        addr = ipaddress.ip_address(value)
    except ValueError:
        addr = None
    if addr is not None:
        if addr.is_unspecified or addr.is_multicast or str(addr) == "255.255.255.255":
            return ["%s is not the address of one machine (unspecified, broadcast or multicast)" % addr]
        return []
    if len(value) > 253:
        return ["longer than 253 characters"]
    labels = value.split(".")
    bad = [label for label in labels if not _DNS_LABEL_RE.match(label)]
    if bad:
        return ["%r is not a DNS label (letters, digits, '-', 1-63 chars, no leading/trailing '-')" % bad[0]]
    if labels[-1].isdigit():
        return ["it looks like an IPv4 address but is not one, and a DNS name cannot end in an all-numeric label"]
    return []


def check_address(value: Any, field: str = "address") -> list[Finding]:
    """An SSH/node address: an IP literal of one machine, or a DNS name whose last label is not all-numeric."""
    reasons = address_reasons(value)
    if not reasons:
        return []
    return [
        Finding(
            "address",
            field,
            value,
            "is neither an IP address nor a DNS name (%s)" % "; ".join(reasons),
            "an IP address or a DNS name",
            "use e.g. 192.0.2.10, 2001:db8::10 or node1.example.org",
        )
    ]


def address_key(value: str) -> str:
    """The form two addresses are compared in: a normalised IP literal, or a lower-case DNS name."""
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value.lower()


# ------------------------------------------------------------------ networks


def _example(field: str, version: int) -> str:
    return EXAMPLE.get(field, EXAMPLE["pod_cidr"])[version]


def parse_cidr(text: Any, field: str) -> tuple[Any, list[Finding]]:
    """One network: (network or None, findings) for syntax and host bits."""
    item = text.strip() if isinstance(text, str) else text
    try:
        return ipaddress.ip_network(item, strict=True), []
    except (ValueError, TypeError):
        pass
    try:
        loose = ipaddress.ip_network(item, strict=False)
    except (ValueError, TypeError):
        return None, [
            Finding(
                "not_a_cidr",
                field,
                text,
                "is not a CIDR",
                "address/prefix",
                "write it like %s" % _example(field, 4),
            )
        ]
    return None, [Finding("host_bits", field, text, "has host bits set", "a network address", "use %s" % loose)]


def parse_cidrs(value: Any, field: str) -> tuple[list[Any], list[Finding]]:
    """A comma-separated string (or list) of networks, at most one per IP family (dual-stack)."""
    text = ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else str(value or "")
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        return [], [
            Finding("empty", field, value, "is empty", "a CIDR", "set %s, e.g. %s" % (field, _example(field, 4)))
        ]
    networks = []
    findings = []
    for item in items:
        net, problems = parse_cidr(item, field)
        findings.extend(problems)
        if net is not None:
            networks.append(net)
    versions = [net.version for net in networks]
    if len(versions) != len(set(versions)) or len(networks) > 2:
        findings.append(
            Finding(
                "family_repeated",
                field,
                ", ".join(str(n) for n in networks),
                "lists more than one network of an IP family",
                "one IPv4 and/or one IPv6 network (dual-stack)",
                "keep one network per family in %s" % field,
            )
        )
    return networks, findings


def reserved_findings(networks: list[Any], field: str) -> list[Finding]:
    """Pod and service ranges must stay out of loopback, link-local, multicast and unspecified space."""
    findings = []
    for net in networks:
        for what, ranges in RESERVED:
            hit = [r for r in (ipaddress.ip_network(c) for c in ranges) if r.version == net.version and r.overlaps(net)]
            if hit:
                findings.append(
                    Finding(
                        "reserved",
                        field,
                        str(net),
                        "overlaps %s space %s" % (what, hit[0]),
                        "a private unicast range (RFC 1918 or IPv6 ULA)",
                        "use e.g. %s" % _example(field, net.version),
                    )
                )
                break
    return findings


def pod_size_findings(
    networks: list[Any],
    nodes: int,
    node_mask_v4: int = NODE_MASK[4],
    node_mask_v6: int = NODE_MASK[6],
    field: str = "pod_cidr",
) -> list[Finding]:
    """Each pod network holds at least one node range per node, within kubeadm's node-mask limits."""
    findings = []
    for net in networks:
        mask = int(node_mask_v4 if net.version == 4 else node_mask_v6)
        if net.prefixlen > mask:
            findings.append(
                Finding(
                    "pod_too_small",
                    field,
                    str(net),
                    "is smaller than one node's pod range",
                    "a prefix of /%d or shorter (each node gets a /%d)" % (mask, mask),
                    "use a larger network, e.g. %s" % _example(field, net.version),
                )
            )
            continue
        if mask - net.prefixlen > POD_NODE_MASK_MAX_DIFF:
            findings.append(
                Finding(
                    "pod_too_large",
                    field,
                    str(net),
                    "is more than %d bits larger than the node range /%d (kubeadm's limit)"
                    % (POD_NODE_MASK_MAX_DIFF, mask),
                    "a prefix between /%d and /%d" % (mask - POD_NODE_MASK_MAX_DIFF, mask),
                    "use e.g. %s" % _example(field, net.version),
                )
            )
            continue
        capacity = 2 ** (mask - net.prefixlen)
        if nodes > capacity:
            needed = mask - max(0, (int(nodes) - 1).bit_length())
            findings.append(
                Finding(
                    "pod_too_few_nodes",
                    field,
                    "%s for %d nodes" % (net, nodes),
                    "has room for %d node ranges (/%d each)" % (capacity, mask),
                    "at least %d node ranges" % nodes,
                    "use a larger network: a /%d or shorter prefix" % needed,
                )
            )
    return findings


def service_size_findings(networks: list[Any], field: str = "service_cidr") -> list[Finding]:
    """Each service network within kubeadm's limits: at most 20 host bits, at least 10 addresses."""
    findings = []
    for net in networks:
        low = net.max_prefixlen - SERVICE_MAX_HOST_BITS
        high = net.max_prefixlen - (SERVICE_MIN_ADDRESSES - 1).bit_length()
        if not low <= net.prefixlen <= high:
            findings.append(
                Finding(
                    "service_size",
                    field,
                    str(net),
                    "is too %s for kubeadm" % ("large" if net.prefixlen < low else "small"),
                    "a prefix between /%d and /%d" % (low, high),
                    "use e.g. %s" % _example(field, net.version),
                )
            )
    return findings


def family_findings(
    pods: list[Any], services: list[Any], pod_field: str = "pod_cidr", service_field: str = "service_cidr"
) -> list[Finding]:
    """Pods and services cover the same IP families (both IPv4, both IPv6, or both dual-stack)."""
    if not pods or not services:
        return []
    if set(n.version for n in pods) == set(n.version for n in services):
        return []
    return [
        Finding(
            "family",
            service_field,
            ", ".join(map(str, services)),
            "is not of the IP families of %s %s" % (pod_field, ", ".join(map(str, pods))),
            "the same families (both IPv4, both IPv6, or both dual-stack)",
            "add or remove the missing family in %s or %s" % (pod_field, service_field),
        )
    ]


def overlap_findings(
    pods: list[Any], services: list[Any], pod_field: str = "pod_cidr", service_field: str = "service_cidr"
) -> list[Finding]:
    """Pod and service networks are disjoint."""
    findings = []
    for pod in pods:
        for svc in services:
            if pod.version == svc.version and pod.overlaps(svc):
                findings.append(
                    Finding(
                        "overlap",
                        pod_field,
                        str(pod),
                        "overlaps %s %s" % (service_field, svc),
                        "disjoint networks",
                        "change one of them (defaults: 10.244.0.0/16 and 10.96.0.0/12)",
                    )
                )
    return findings


def check_networks(
    pod_cidr: Any,
    service_cidr: Any,
    nodes: int = 1,
    node_mask_v4: int = NODE_MASK[4],
    node_mask_v6: int = NODE_MASK[6],
    pod_field: str = "pod_cidr",
    service_field: str = "service_cidr",
) -> list[Finding]:
    """Every rule for a cluster's pod and service networks (comma-separated for dual-stack)."""
    pods, findings = parse_cidrs(pod_cidr, pod_field)
    services, svc_findings = parse_cidrs(service_cidr, service_field)
    findings += reserved_findings(pods, pod_field)
    findings += pod_size_findings(pods, nodes, node_mask_v4, node_mask_v6, pod_field)
    findings += svc_findings
    findings += reserved_findings(services, service_field)
    findings += service_size_findings(services, service_field)
    findings += family_findings(pods, services, pod_field, service_field)
    findings += overlap_findings(pods, services, pod_field, service_field)
    return findings
