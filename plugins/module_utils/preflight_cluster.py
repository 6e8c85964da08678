# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""Cross-host preflight checks and the combined report.

Input: the ``preflight`` results of ``smcp.platform.node_preflight`` for every host
(None for a host without a result) plus the inventory groups and cluster settings.
Output: one report listing every host's problems, node checks and cluster checks
alike, in the message format of ``Problem.message``. Standard library only.
"""

from __future__ import annotations

import ipaddress

from ansible_collections.smcp.platform.plugins.module_utils.preflight import (
    FAILURE,
    WARNING,
    Problem,
    apply_warn_only,
)

CLUSTER = "cluster"

# kube-controller-manager --node-cidr-mask-size defaults
NODE_MASK_V4 = 24
NODE_MASK_V6 = 64
# Largest service ranges the API server accepts (20 bits of addresses), smallest useful (16 addresses)
SERVICE_MIN_PREFIX = {4: 12, 6: 108}
SERVICE_MAX_PREFIX = {4: 28, 6: 124}


def parse_cidrs(value, check, var):
    # type: (object, str, str) -> tuple
    """Parse a comma-separated CIDR list (one per IP family). Returns (networks, problems)."""
    text = ",".join(value) if isinstance(value, (list, tuple)) else str(value or "")
    items = [item.strip() for item in text.split(",") if item.strip()]
    problems = []
    networks = []
    if not items:
        problems.append(
            Problem(
                check, "%s is empty" % var, found=repr(value), need="a CIDR such as 10.244.0.0/16", fix="set %s" % var
            )
        )
    for item in items:
        try:
            net = ipaddress.ip_network(item, strict=True)
        except ValueError:
            try:
                loose = ipaddress.ip_network(item, strict=False)
            except ValueError:
                problems.append(
                    Problem(
                        check,
                        "%s is not a valid CIDR" % var,
                        found=repr(item),
                        need="address/prefix, e.g. 10.244.0.0/16",
                        fix="correct %s" % var,
                    )
                )
                continue
            problems.append(
                Problem(
                    check,
                    "%s has host bits set" % var,
                    found=item,
                    need="a network address",
                    fix="use %s" % loose,
                )
            )
            continue
        networks.append(net)
    versions = [net.version for net in networks]
    if len(versions) != len(set(versions)) or len(networks) > 2:
        problems.append(
            Problem(
                check,
                "%s lists more than one network of an IP family" % var,
                found=", ".join(str(n) for n in networks),
                need="one IPv4 and/or one IPv6 network (dual-stack)",
                fix="keep one network per family in %s" % var,
            )
        )
    return networks, problems


def _pod_size_problems(pods, kubelet_nodes, node_mask_v4, node_mask_v6):
    problems = []
    for net in pods:
        mask = node_mask_v4 if net.version == 4 else node_mask_v6
        if net.prefixlen > mask:
            problems.append(
                Problem(
                    "pod_cidr",
                    "smcp_pod_cidr is smaller than one node's pod range",
                    found=str(net),
                    need="a prefix of /%d or shorter (each node gets a /%d)" % (mask, mask),
                    fix="use a larger network, e.g. 10.244.0.0/16",
                )
            )
            continue
        capacity = 2 ** (mask - net.prefixlen)
        if kubelet_nodes > capacity:
            problems.append(
                Problem(
                    "pod_cidr",
                    "smcp_pod_cidr has room for %d node ranges (/%d each)" % (capacity, mask),
                    found="%s for %d nodes" % (net, kubelet_nodes),
                    need="at least %d node ranges" % kubelet_nodes,
                    fix="use a larger network (shorter prefix)",
                )
            )
    return problems


def _service_size_problems(services, pods):
    problems = []
    for net in services:
        low, high = SERVICE_MIN_PREFIX[net.version], SERVICE_MAX_PREFIX[net.version]
        if not low <= net.prefixlen <= high:
            problems.append(
                Problem(
                    "service_cidr",
                    "smcp_service_cidr size out of range",
                    found=str(net),
                    need="a prefix between /%d and /%d" % (low, high),
                    fix="use e.g. 10.96.0.0/12" if net.version == 4 else "use e.g. fd00:10:96::/112",
                )
            )
    if pods and services and set(n.version for n in pods) != set(n.version for n in services):
        problems.append(
            Problem(
                "service_cidr",
                "smcp_service_cidr and smcp_pod_cidr cover different IP families",
                found="pods %s, services %s" % (", ".join(map(str, pods)), ", ".join(map(str, services))),
                need="the same families (both IPv4, both IPv6, or both dual-stack)",
                fix="add or remove the missing family in one of them",
            )
        )
    return problems


def _overlap_problems(pods, services, node_networks, node_ips):
    """node_networks: {cidr: [hosts]}, node_ips: {ip: [hosts]}."""
    problems = []
    for pod in pods:
        for svc in services:
            if pod.overlaps(svc):
                problems.append(
                    Problem(
                        "cidr_overlap",
                        "smcp_pod_cidr overlaps smcp_service_cidr",
                        found="%s and %s" % (pod, svc),
                        need="disjoint networks",
                        fix="change one of them (defaults: 10.244.0.0/16 and 10.96.0.0/12)",
                    )
                )
    for var, nets in (("smcp_pod_cidr", pods), ("smcp_service_cidr", services)):
        for net in nets:
            for cidr in sorted(node_networks):
                node_net = ipaddress.ip_network(cidr, strict=False)
                if node_net.version == net.version and node_net.overlaps(net):
                    problems.append(
                        Problem(
                            "cidr_overlap",
                            "%s overlaps a node network" % var,
                            found="%s and %s (on %s)" % (net, node_net, ", ".join(node_networks[cidr])),
                            need="disjoint networks",
                            fix="choose a %s outside every node network" % var,
                        )
                    )
            for ip in sorted(node_ips):
                try:
                    addr = ipaddress.ip_address(ip)
                except ValueError:
                    continue
                in_node_net = any(
                    addr in ipaddress.ip_network(c, strict=False)
                    for c in node_networks
                    if ipaddress.ip_network(c, strict=False).version == addr.version
                )
                if addr.version == net.version and addr in net and not in_node_net:
                    problems.append(
                        Problem(
                            "cidr_overlap",
                            "%s contains a node IP" % var,
                            found="%s in %s (%s)" % (ip, net, ", ".join(node_ips[ip])),
                            need="node IPs outside the pod and service networks",
                            fix="choose a %s that does not contain node addresses" % var,
                        )
                    )
    return problems


def _duplicates(values, check, what, fix):
    """values: [(host, value)] -> Problems for values shared by several hosts (one per value)."""
    seen = {}
    for host, value in values:
        if value:
            seen.setdefault(value, []).append(host)
    problems = []
    for value in sorted(seen):
        hosts = seen[value]
        if len(hosts) > 1:
            problems.append(
                Problem(
                    check,
                    "%s %s is used by several hosts" % (what, value),
                    found=", ".join(hosts),
                    need="one host",
                    fix=fix,
                )
            )
    return problems


def cluster_problems(results, groups, settings):
    # type: (dict, dict, dict) -> list
    """Cross-host checks. Returns [(host, Problem)]; host is CLUSTER for cluster-wide ones.

    ``results``: host -> node_preflight ``preflight`` dict (or None).
    ``settings``: pod_cidr, service_cidr, etcd_group, control_plane_group, workers_group,
    node_mask_v4, node_mask_v6.
    """
    found = []
    present = [(host, res) for host, res in results.items() if res]

    for problem in _duplicates(
        [(h, (r.get("node_name") or "").lower()) for h, r in present],
        "duplicate_hostname",
        "node name",
        "give every host its own name (inventory name / hostname)",
    ):
        found.append((CLUSTER, problem))
    for problem in _duplicates(
        [(h, r.get("node_ip")) for h, r in present],
        "duplicate_ip",
        "node IP",
        "set a distinct smcp_node_ip (or ansible_host) per host",
    ):
        found.append((CLUSTER, problem))

    etcd_group = settings.get("etcd_group") or "etcd"
    cp_group = settings.get("control_plane_group") or "control_plane"
    workers_group = settings.get("workers_group") or "workers"
    etcd = list(groups.get(etcd_group) or ())
    if not etcd or len(etcd) % 2 == 0:
        found.append(
            (
                CLUSTER,
                Problem(
                    "etcd_count",
                    "etcd needs an odd number of members to keep quorum through failures",
                    found="%d in group %s%s" % (len(etcd), etcd_group, (" (" + ", ".join(etcd) + ")") if etcd else ""),
                    need="1, 3, 5 or 7",
                    fix="add or remove hosts in the %s group" % etcd_group,
                ),
            )
        )
    control_planes = list(groups.get(cp_group) or ())
    if not control_planes:
        found.append(
            (
                CLUSTER,
                Problem(
                    "control_plane_present",
                    "no control-plane node",
                    found="group %s empty or missing" % cp_group,
                    need="at least 1",
                    fix="put at least one host in the %s group" % cp_group,
                ),
            )
        )

    pods, pod_problems = parse_cidrs(settings.get("pod_cidr"), "pod_cidr", "smcp_pod_cidr")
    services, svc_problems = parse_cidrs(settings.get("service_cidr"), "service_cidr", "smcp_service_cidr")
    kubelet_nodes = len(set(control_planes) | set(groups.get(workers_group) or ()))
    pod_problems += _pod_size_problems(
        pods,
        kubelet_nodes,
        int(settings.get("node_mask_v4") or NODE_MASK_V4),
        int(settings.get("node_mask_v6") or NODE_MASK_V6),
    )
    svc_problems += _service_size_problems(services, pods)

    node_networks = {}
    node_ips = {}
    for host, res in present:
        for cidr in (res.get("facts") or {}).get("networks") or ():
            node_networks.setdefault(cidr, []).append(host)
        if res.get("node_ip"):
            node_ips.setdefault(res["node_ip"], []).append(host)
    overlap = _overlap_problems(pods, services, node_networks, node_ips)
    found.extend((CLUSTER, p) for p in pod_problems + svc_problems + overlap)
    return found


def build_report(results, groups, settings, warn_only=()):
    # type: (dict, dict, dict, object) -> dict
    """Combine every host's node problems and the cluster problems into one report."""
    entries = []  # (host, Problem)
    for host, res in results.items():
        if not res:
            entries.append(
                (
                    host,
                    Problem(
                        "unreachable",
                        "no preflight result for this host",
                        found="host unreachable or node_preflight failed",
                        need="a result from every host",
                        fix="see this host's error above (SSH access, python3 on the host)",
                    ),
                )
            )
            continue
        for item in list(res.get("failures") or ()) + list(res.get("warnings") or ()):
            entries.append(
                (
                    host,
                    Problem(
                        item.get("id", "unknown"),
                        item.get("what", ""),
                        item.get("found", ""),
                        item.get("need", ""),
                        item.get("fix", ""),
                        item.get("severity", FAILURE),
                    ),
                )
            )
    entries.extend(cluster_problems(results, groups, settings))
    apply_warn_only([problem for _host, problem in entries], warn_only)

    failures = [p.message(h) for h, p in entries if p.severity == FAILURE]
    warnings = [p.message(h) for h, p in entries if p.severity == WARNING]
    failed_hosts = sorted(set(h for h, p in entries if p.severity == FAILURE))
    lines = [
        "preflight %s: %d failure(s)%s, %d warning(s); no host was changed"
        % (
            "failed" if failures else "passed",
            len(failures),
            " (on %s)" % ", ".join(failed_hosts) if failed_hosts else "",
            len(warnings),
        )
    ]
    if failures:
        lines.append("FAILURES:")
        lines.extend(failures)
    if warnings:
        lines.append("WARNINGS:")
        lines.extend(warnings)
    if failures:
        lines.append(
            "To accept a failing check as a warning, list its id in preflight_warn_only (e.g. [swap, memory])."
        )
    return {
        "failed": bool(failures),
        "failures": failures,
        "warnings": warnings,
        "problems": [dict(p.as_dict(h), host=h) for h, p in entries],
        "summary": "\n".join(lines),
    }
