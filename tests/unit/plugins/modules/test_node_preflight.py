"""Module smcp.platform.node_preflight: argument handling, check mode, fail_on_problems (host faked)."""

from __future__ import annotations

import json

import pytest
import yaml
from ansible.module_utils.testing import patch_module_args
from ansible_collections.smcp.platform.plugins.module_utils.preflight import checks, data
from ansible_collections.smcp.platform.plugins.module_utils.preflight import problems as pf_problems
from ansible_collections.smcp.platform.plugins.modules import node_preflight

FACTS_OVERRIDE: dict = {}


def fake_run(view, settings):
    """run_preflight over facts of a host that passes every check except what FACTS_OVERRIDE changes."""
    facts = {
        "os": {"id": "debian", "version_id": "12", "pretty_name": "Debian 12", "supported": True, "tested": True},
        "arch": "x86_64",
        "cpus": 2,
        "memory_mb": 4096,
        "swap": {"total_mb": 0, "devices": []},
        "disk": {"/": {"free_mb": 50000, "dev": 1}},
        "cgroup": {"version": 2, "controllers": ["cpu", "cpuset", "memory", "pids"]},
        "kernel": {"overlay": True, "br_netfilter": True, "ip_forward": "1", "bridge_nf_call_iptables": "1"},
        "time_sync": {"state": "synchronized", "daemons": ["chronyd"]},
        "hostname": "n1",
        "addresses": ["10.0.0.1"],
        "networks": ["10.0.0.0/24"],
        "port_conflicts": {},
        "pkg_locks": {},
        "existing": {},
    }
    facts.update(FACTS_OVERRIDE)
    problems = checks.evaluate(facts, dict(settings, node_ip_addresses=[settings["node_ip"]]))
    failures, warnings = pf_problems.split(problems)
    return {"facts": facts, "failures": [p.as_dict() for p in failures], "warnings": [p.as_dict() for p in warnings]}


def run(monkeypatch, capsys, facts=None, **args) -> dict:
    FACTS_OVERRIDE.clear()
    FACTS_OVERRIDE.update(facts or {})
    monkeypatch.setattr(node_preflight, "run_preflight", fake_run)
    with (
        patch_module_args(dict({"node_ip": "10.0.0.1", "roles": ["control_plane"]}, **args)),
        pytest.raises(SystemExit),
    ):
        node_preflight.main()
    return json.loads(capsys.readouterr().out)


def test_ok_in_check_mode_and_never_changed(monkeypatch, capsys):
    result = run(monkeypatch, capsys, _ansible_check_mode=True)
    assert result["changed"] is False and not result.get("failed")
    assert result["msg"] == "node preflight: 0 failure(s), 0 warning(s)"


def test_failures_are_returned_not_raised_by_default(monkeypatch, capsys):
    result = run(monkeypatch, capsys, facts={"memory_mb": 512})
    assert not result.get("failed")
    assert [f["id"] for f in result["preflight"]["failures"]] == ["memory"]


def test_fail_on_problems_fails_with_every_failure(monkeypatch, capsys):
    result = run(monkeypatch, capsys, facts={"memory_mb": 512, "cpus": 1}, fail_on_problems=True)
    assert result["failed"] is True
    assert "[cpu] too few CPUs" in result["msg"] and "[memory] too little memory" in result["msg"]


def test_warn_only_and_minimum_overrides(monkeypatch, capsys):
    result = run(monkeypatch, capsys, facts={"memory_mb": 512}, warn_only=["memory"], fail_on_problems=True)
    assert not result.get("failed") and result["preflight"]["warnings"][0]["id"] == "memory"
    result = run(monkeypatch, capsys, facts={"memory_mb": 512}, min_memory_mb={"control_plane": "500"})
    assert result["preflight"]["failures"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"warn_only": ["swpa"]}, "warn_only: unknown check id(s) swpa"),
        ({"min_cpus": {"master": 2}}, "min_cpus: unknown role 'master'"),
        ({"min_memory_mb": {"worker": "lots"}}, "min_memory_mb[worker]: 'lots' is not an integer"),
        ({"roles": ["master"]}, "value of roles must be one or more of"),
        ({"kernel_modules": ["ip_vs; reboot"]}, "kernel_modules: 'ip_vs; reboot' is not a kernel module name; fix:"),
    ],
)
def test_bad_arguments_fail_naming_field_and_fix(monkeypatch, capsys, args, message):
    result = run(monkeypatch, capsys, **args)
    assert result["failed"] is True and message in result["msg"]


def test_real_run_preflight_on_this_machine(capsys):
    """main() against the real HostView: read-only, returns every check id."""
    with (
        patch_module_args({"node_ip": "127.0.0.1", "roles": ["worker"], "_ansible_check_mode": True}),
        pytest.raises(SystemExit),
    ):
        node_preflight.main()
    result = json.loads(capsys.readouterr().out)
    assert result["changed"] is False
    assert set(result["preflight"]["checks"]) == set(data.NODE_CHECK_IDS)


def test_documentation_is_yaml_and_matches_the_argument_spec():
    doc = yaml.safe_load(node_preflight.DOCUMENTATION)
    yaml.safe_load(node_preflight.EXAMPLES)
    yaml.safe_load(node_preflight.RETURN)
    assert set(doc["options"]) == set(node_preflight.ARGUMENT_SPEC)
    assert doc["attributes"]["check_mode"]["support"] == "full"


def test_returns_the_distribution_facts_setup_would(monkeypatch, capsys):
    # The roles after preflight skip their fact gathering when these are known: they must be setup's own.
    from ansible.module_utils.facts.system.distribution import DistributionFactCollector

    result = run(monkeypatch, capsys)
    facts = result["ansible_facts"]
    with patch_module_args({}):
        from ansible.module_utils.basic import AnsibleModule

        expected = DistributionFactCollector().collect(module=AnsibleModule(argument_spec={}))
    assert expected["distribution"] and expected["os_family"]
    assert facts == {"ansible_" + key: value for key, value in expected.items()}
