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

from ansible_collections.smcp.platform.plugins.module_utils import netrules
from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import FAILURE, WARNING
from ansible_collections.smcp.platform.plugins.module_utils.preflight.problems import Problem, apply_warn_only

CLUSTER = "cluster"

NODE_MASK_V4 = netrules.NODE_MASK[4]
NODE_MASK_V6 = netrules.NODE_MASK[6]
# the inventory variable behind each field of the shared network rules
_VARS = {"pod_cidr": "smcp_pod_cidr", "service_cidr": "smcp_service_cidr"}


def _as_problem(finding):
    # type: (netrules.Finding) -> Problem
    """A shared-rule finding as a preflight Problem (check ids pod_cidr, service_cidr, cidr_overlap)."""
    field = [k for k, v in _VARS.items() if v == finding.field]
    check = "cidr_overlap" if finding.rule == "overlap" else (field[0] if field else finding.field)
    return Problem(
        check, "%s %s" % (finding.field, finding.what), found=str(finding.value), need=finding.need, fix=finding.fix
    )


def parse_cidrs(value, check, var):
    # type: (object, str, str) -> tuple
    """Parse a comma-separated CIDR list (one per IP family). Returns (networks, problems)."""
    networks, findings = netrules.parse_cidrs(value, var)
    problems = [_as_problem(f) for f in findings]
    for problem in problems:
        problem.check = check
    return networks, problems


# What overlaps a pod or service network: kind -> (what, need, fix), each naming the variable.
_OVERLAPS = {
    "network": ("%s overlaps a node network", "disjoint networks", "choose a %s outside every node network"),
    "address": (
        "%s contains a node IP",
        "node IPs outside the pod and service networks",
        "choose a %s that does not contain node addresses",
    ),
}


def _overlap_problems(pods, services, node_networks, node_ips):
    """node_networks: {cidr: [hosts]}, node_ips: {ip: [hosts]}."""
    hits = []  # (kind, var, found)
    for var, nets in (("smcp_pod_cidr", pods), ("smcp_service_cidr", services)):
        for net in nets:
            for cidr in sorted(node_networks):
                node_net = ipaddress.ip_network(cidr, strict=False)
                if node_net.version == net.version and node_net.overlaps(net):
                    hits.append(("network", var, "%s and %s (on %s)" % (net, node_net, ", ".join(node_networks[cidr]))))
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
                    hits.append(("address", var, "%s in %s (%s)" % (ip, net, ", ".join(node_ips[ip]))))
    problems = []
    for kind, var, found in hits:
        what, need, fix = _OVERLAPS[kind]
        problems.append(Problem("cidr_overlap", what % var, found=found, need=need, fix=fix % var))
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

    kubelet_nodes = len(set(control_planes) | set(groups.get(workers_group) or ()))
    findings = netrules.check_networks(
        settings.get("pod_cidr"),
        settings.get("service_cidr"),
        nodes=kubelet_nodes,
        node_mask_v4=int(settings.get("node_mask_v4") or NODE_MASK_V4),
        node_mask_v6=int(settings.get("node_mask_v6") or NODE_MASK_V6),
        pod_field=_VARS["pod_cidr"],
        service_field=_VARS["service_cidr"],
    )
    pods, _ignored = netrules.parse_cidrs(settings.get("pod_cidr"), _VARS["pod_cidr"])
    services, _ignored = netrules.parse_cidrs(settings.get("service_cidr"), _VARS["service_cidr"])

    node_networks = {}
    node_ips = {}
    for host, res in present:
        for cidr in (res.get("facts") or {}).get("networks") or ():
            node_networks.setdefault(cidr, []).append(host)
        if res.get("node_ip"):
            node_ips.setdefault(res["node_ip"], []).append(host)
    overlap = _overlap_problems(pods, services, node_networks, node_ips)
    found.extend((CLUSTER, _as_problem(f)) for f in findings)
    found.extend((CLUSTER, p) for p in overlap)
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
