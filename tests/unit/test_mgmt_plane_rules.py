"""The management plane's job and worker alert rules (roles/mgmt_plane/files/rules/mgmt_plane.yml) under
`promtool test rules`: series that must fire and series that must not, as two API replicas report them (every
replica reports the whole fleet from the shared store, metrics.py). promtool comes with Debian's prometheus
package (scripts/setup.sh installs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "roles" / "mgmt_plane" / "files" / "rules" / "mgmt_plane.yml"
JOB_ALERTS = ("SmcpNoLiveWorker", "SmcpJobQueueGrowing", "SmcpJobLeaseExpired", "SmcpJobRunningLong")
REPLICAS = ("api-a:8780", "api-b:8780")

pytestmark = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus)")


def _series(name: str, values: str, **labels: str) -> list[dict[str, str]]:
    """The same series as every API replica exposes it."""
    out = []
    for instance in REPLICAS:
        pairs = {**labels, "instance": instance, "job": "smcp-api"}
        text = ",".join(f'{k}="{v}"' for k, v in sorted(pairs.items()))
        out.append({"series": f"{name}{{{text}}}", "values": values})
    return out


def _fleet(worker_age: str, slots: str = "2", pending: str = "0x30", ttl: str = "30x30") -> list[dict[str, str]]:
    """One smcp-worker (slots > 0) and an API replica's own worker row (slots 0, always fresh)."""
    return [
        *_series("smcp_worker_heartbeat_age_seconds", worker_age, worker="w1", host="m1"),
        *_series("smcp_worker_slots", f"{slots}x30", worker="w1"),
        *_series("smcp_worker_heartbeat_age_seconds", "3x30", worker="api-a", host="m2"),
        *_series("smcp_worker_slots", "0x30", worker="api-a"),
        *_series("smcp_jobs", pending, status="pending"),
        *_series("smcp_lease_ttl_seconds", ttl),
    ]


def _fired(alert: str, at: str, severity: str, **labels: str) -> dict[str, Any]:
    return {"eval_time": at, "alertname": alert, "exp_alerts": [{"exp_labels": {"severity": severity, **labels}}]}


def _quiet(at: str, *alerts: str) -> list[dict[str, Any]]:
    return [{"eval_time": at, "alertname": a, "exp_alerts": []} for a in alerts]


def _cases() -> list[dict[str, Any]]:
    return [
        {  # healthy: a fresh worker, a short queue, leases renewed, a job running for an hour
            "input_series": [
                *_fleet("5x30", pending="3x30"),
                *_series("smcp_jobs_pending_oldest_age_seconds", "30x30"),
                *_series("smcp_jobs_running_lease_expired", "0x30"),
                *_series("smcp_jobs_running_oldest_age_seconds", "3600x30", operation="upgrade"),
            ],
            "alert_rule_test": _quiet("20m", *JOB_ALERTS),
        },
        {  # the worker stops renewing (age + 60 s a minute): > 3 leases (90 s) from 2m, for 2m -> fires at 4m;
            # the API replica's fresh row (slots 0) does not hide it
            "input_series": _fleet("10+60x30"),
            "alert_rule_test": [
                *_quiet("3m", "SmcpNoLiveWorker"),
                _fired("SmcpNoLiveWorker", "5m", "critical"),
            ],
        },
        {  # a longer lease (120 s): the same heartbeat ages are no alarm before 6m + 2m
            "input_series": _fleet("10+60x30", ttl="120x30"),
            "alert_rule_test": [*_quiet("7m", "SmcpNoLiveWorker"), _fired("SmcpNoLiveWorker", "9m", "critical")],
        },
        {  # no worker row at all (only API replicas, slots 0): jobs waiting fire, an empty queue does not
            "input_series": [
                *_series("smcp_worker_heartbeat_age_seconds", "3x30", worker="api-a", host="m2"),
                *_series("smcp_worker_slots", "0x30", worker="api-a"),
                *_series("smcp_lease_ttl_seconds", "30x30"),
                *_series("smcp_jobs", "0 0 0 0 0 0 2x20", status="pending"),
            ],
            "alert_rule_test": [*_quiet("5m", "SmcpNoLiveWorker"), _fired("SmcpNoLiveWorker", "9m", "critical")],
        },
        {  # the oldest pending job ages 60 s a minute: > 600 s from 11m, for 5m -> fires at 16m
            "input_series": _series("smcp_jobs_pending_oldest_age_seconds", "0+60x30"),
            "alert_rule_test": [
                *_quiet("15m", "SmcpJobQueueGrowing"),
                _fired("SmcpJobQueueGrowing", "17m", "warning"),
            ],
        },
        {  # a lease expired for 2 minutes (recovery ends it) is no alarm; one left for 5 minutes is
            "input_series": [
                *_series("smcp_jobs_running_lease_expired", "0 1 1 0 0 0 0 0 0 0 1x20"),
            ],
            "alert_rule_test": [
                *_quiet("9m", "SmcpJobLeaseExpired"),
                _fired("SmcpJobLeaseExpired", "16m", "warning"),
            ],
        },
        {  # 7 hours of upgrade fires (labelled with the operation), 1 hour of a backup does not
            "input_series": [
                *_series("smcp_jobs_running_oldest_age_seconds", "25200x5", operation="upgrade"),
                *_series("smcp_jobs_running_oldest_age_seconds", "3600x5", operation="etcd_backup"),
            ],
            "alert_rule_test": [_fired("SmcpJobRunningLong", "2m", "warning", operation="upgrade")],
        },
    ]


def _promtool(rules: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """The cases against these rules without their annotations (promtool compares them; they are prose)."""
    doc = yaml.safe_load(rules.read_text())
    for group in doc["groups"]:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    bare = tmp_path / f"bare-{rules.name}"
    bare.write_text(yaml.safe_dump(doc))
    tests = {
        "rule_files": [str(bare)],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", **case} for case in _cases()],
    }
    spec = tmp_path / "tests.yml"
    spec.write_text(yaml.safe_dump(tests, sort_keys=False))
    return subprocess.run(
        ["promtool", "test", "rules", str(spec)], capture_output=True, text=True, timeout=120, check=False
    )


def test_rules_pass_promtool_check() -> None:
    check = subprocess.run(
        ["promtool", "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


def test_job_alerts_fire_when_they_should_and_only_then(tmp_path: Path) -> None:
    result = _promtool(RULES, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("alert", "broken"),
    [
        # without the slots filter the API replica's own fresh row hides a dead worker
        (
            "SmcpNoLiveWorker",
            lambda e: e.replace(
                "smcp_worker_heartbeat_age_seconds and on (worker) (smcp_worker_slots > 0)",
                "smcp_worker_heartbeat_age_seconds",
            ),
        ),
        # summing over replicas doubles the count and the age: the 'must not fire' cases fire
        ("SmcpJobQueueGrowing", lambda e: e.replace("max(", "sum(")),
    ],
)
def test_the_cases_catch_a_broken_rule(alert: str, broken: Any, tmp_path: Path) -> None:
    doc = yaml.safe_load(RULES.read_text())
    rule = next(r for g in doc["groups"] for r in g["rules"] if r.get("alert") == alert)
    changed = broken(rule["expr"])
    assert changed != rule["expr"]
    rule["expr"] = changed
    mutated = tmp_path / "broken.yml"
    mutated.write_text(yaml.safe_dump(doc))
    result = _promtool(mutated, tmp_path)
    assert result.returncode != 0, result.stdout
    assert alert in result.stdout + result.stderr
