"""Filter smcp.platform.cluster_checks: reads registered results from hostvars, validates warn_only."""

from __future__ import annotations

import pytest
from ansible.errors import AnsibleFilterError
from ansible_collections.smcp.platform.plugins.filter.preflight import FilterModule, cluster_checks


def registered(name: str, ip: str, failures=()) -> dict:
    return {
        "changed": False,
        "preflight": {
            "node_name": name,
            "node_ip": ip,
            "facts": {"networks": ["10.0.0.0/24"]},
            "failures": list(failures),
            "warnings": [],
        },
    }


GROUPS = {"etcd": ["a"], "control_plane": ["a"], "workers": ["b", "c"]}


def test_filter_is_registered():
    assert FilterModule().filters()["cluster_checks"] is cluster_checks


def test_reads_each_hosts_result_and_reports_missing_ones():
    hostvars = {
        "a": {"_preflight_node": registered("a", "10.0.0.1")},
        "b": {"_preflight_node": registered("b", "10.0.0.1")},
        "c": {"ansible_host": "10.0.0.3"},  # never ran the module
    }
    report = cluster_checks(hostvars, ["a", "b", "c"], GROUPS)
    assert report["failed"] is True
    assert [f.split(" ", 2)[:2] for f in report["failures"]] == [
        ["c:", "[unreachable]"],
        ["cluster:", "[duplicate_ip]"],
    ]


def test_passes_settings_through():
    hostvars = {h: {"res": registered(h, f"10.0.0.{i}")} for i, h in enumerate("abc", 1)}
    ok = cluster_checks(hostvars, ["a", "b", "c"], GROUPS, result_var="res")
    assert ok["failed"] is False
    bad = cluster_checks(hostvars, ["a", "b", "c"], GROUPS, result_var="res", pod_cidr="10.0.0.0/16")
    assert [p["id"] for p in bad["problems"]] == ["cidr_overlap"]
    assert (
        cluster_checks(hostvars, ["a"], GROUPS, result_var="res", pod_cidr="10.0.0.0/16", warn_only=["cidr_overlap"])[
            "failed"
        ]
        is False
    )


def test_rejects_unknown_warn_only_ids_and_bad_input():
    with pytest.raises(AnsibleFilterError, match=r"unknown check id.*swpa"):
        cluster_checks({}, [], GROUPS, warn_only=["swpa"])
    with pytest.raises(AnsibleFilterError, match="must be hostvars"):
        cluster_checks(["a"], ["a"], GROUPS)
