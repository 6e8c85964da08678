# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""``run_preflight(view, settings)``: collect, evaluate, and the module result with every check's status."""

from __future__ import annotations

from ansible_collections.smcp.platform.plugins.module_utils.preflight.checks import evaluate, required_ports
from ansible_collections.smcp.platform.plugins.module_utils.preflight.data import (
    DEFAULT_DISK_PATHS,
    FAILURE,
    NODE_CHECK_IDS,
    WARNING,
)
from ansible_collections.smcp.platform.plugins.module_utils.preflight.facts import collect, resolve_node_ip
from ansible_collections.smcp.platform.plugins.module_utils.preflight.problems import split


def run_preflight(view, settings):
    # type: (HostView, dict) -> dict
    """Collect, evaluate and build the module result (``facts``, ``failures``, ``warnings``, ``checks``)."""
    roles = list(settings.get("roles") or ())
    disk_paths = settings.get("disk_paths") or DEFAULT_DISK_PATHS
    facts = collect(
        view, disk_paths, required_ports(roles, settings.get("extra_ports")), settings.get("kernel_modules") or ()
    )
    settings = dict(settings)
    settings["node_ip_addresses"] = resolve_node_ip(view, settings.get("node_ip") or "")
    problems = evaluate(facts, settings)
    failures, warnings = split(problems)
    status = dict((check, "ok") for check in NODE_CHECK_IDS)
    for problem in warnings:
        status[problem.check] = WARNING
    for problem in failures:
        status[problem.check] = FAILURE
    return {
        "node_ip": settings.get("node_ip"),
        "node_name": settings.get("expected_hostname") or facts.get("hostname"),
        "roles": roles,
        "sandbox": bool(settings.get("sandbox")),
        "facts": facts,
        "checks": status,
        "failures": [p.as_dict() for p in failures],
        "warnings": [p.as_dict() for p in warnings],
    }
