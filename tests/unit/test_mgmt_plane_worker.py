"""The mgmt_plane role's scale-out options on the controller: mgmt_plane_broker_url and mgmt_plane_worker.

The role's own checks run for real (the role with the tag mgmt_plane_preflight on localhost: nothing is
installed); the environment files and the smcp-worker unit are rendered from the role's templates with the
role's defaults and vars (a template lookup, written into the test's temp dir). The one-host layout stays the
default: without a broker nothing changes in smcp-api's environment.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.ansible_run import local_inventory, run_play

ROOT = Path(__file__).resolve().parents[2]
ROLE = ROOT / "roles" / "mgmt_plane"
BROKER = "amqp://smcp:s3cret-broker-pw@mq1:5672/smcp"
# What smcp-worker.service must share with smcp-api.service: who it runs as, the hardening, the capabilities.
SHARED = (
    "User=",
    "Group=",
    "WorkingDirectory=",
    "KillMode=",
    "AmbientCapabilities=",
    "CapabilityBoundingSet=",
    "NoNewPrivileges=",
    "PrivateTmp=",
    "ProtectSystem=",
    "ProtectHome=",
    "ReadWritePaths=",
)


def _playbook(tmp_path: Path, play: list[dict], *args: str, **extra: object) -> subprocess.CompletedProcess[str]:
    return run_play(tmp_path, play, *args, inventory=local_inventory("m1"), extra_vars=extra)


def _preflight(tmp_path: Path, **extra: object) -> subprocess.CompletedProcess[str]:
    play = [{"hosts": "all", "gather_facts": False, "roles": ["smcp.platform.mgmt_plane"]}]
    return _playbook(tmp_path, play, "--tags", "mgmt_plane_preflight", **extra)


def _render(tmp_path: Path, **extra: object) -> dict[str, str]:
    """api.env, worker.env and both units as the role writes them, and the role's job users."""
    out = tmp_path / "out"
    out.mkdir()
    names = ["api.env.j2", "worker.env.j2", "smcp-api.service.j2", "smcp-worker.service.j2"]
    tasks = [
        {
            "ansible.builtin.copy": {
                "content": "{{ lookup('ansible.builtin.template', '%s') }}" % (ROLE / "templates" / name),
                "dest": str(out / name.removesuffix(".j2")),
                "mode": "0600",
            }
        }
        for name in names
    ]
    tasks.append(
        {"ansible.builtin.copy": {"content": "{{ _mgmt_plane_job_users | to_json }}", "dest": str(out / "users")}}
    )
    play = [
        {
            "hosts": "all",
            "gather_facts": False,
            "vars_files": [str(ROLE / "defaults" / "main.yml"), str(ROLE / "vars" / "main.yml")],
            "tasks": tasks,
        }
    ]
    result = _playbook(tmp_path, play, mgmt_plane_api_source=str(ROOT), **extra)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return {p.name: p.read_text() for p in out.iterdir()}


def _env(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_default_layout_has_no_broker_and_the_api_runs_jobs(tmp_path: Path) -> None:
    files = _render(tmp_path)
    api = _env(files["api.env"])
    assert "SMCP_BROKER_URL" not in api
    assert api["SMCP_WORKERS"] == "4"
    assert json.loads(files["users"]) == ["smcp-job1", "smcp-job2", "smcp-job3", "smcp-job4"]
    assert _preflight(tmp_path).returncode == 0


def test_worker_unit_shares_the_api_s_user_hardening_and_capabilities(tmp_path: Path) -> None:
    files = _render(tmp_path, mgmt_plane_broker_url=BROKER, mgmt_plane_worker=True, mgmt_plane_worker_slots=6)
    api, worker = _env(files["api.env"]), _env(files["worker.env"])
    assert api["SMCP_BROKER_URL"] == worker["SMCP_BROKER_URL"] == BROKER
    assert worker["SMCP_WORKERS"] == "6"
    assert {k: v for k, v in worker.items() if k != "SMCP_WORKERS"} == {
        k: v for k, v in api.items() if k != "SMCP_WORKERS"
    }
    assert json.loads(files["users"]) == [f"smcp-job{n}" for n in range(1, 7)]
    api_unit, worker_unit = files["smcp-api.service"].splitlines(), files["smcp-worker.service"].splitlines()
    for key in SHARED:
        ours = [line for line in worker_unit if line.startswith(key)]
        assert ours and ours == [line for line in api_unit if line.startswith(key)], key
    assert "ExecStart=/opt/smcp/venv/bin/smcp-worker" in worker_unit
    assert "EnvironmentFile=/etc/smcp/worker.env" in worker_unit
    assert _preflight(tmp_path, mgmt_plane_broker_url=BROKER, mgmt_plane_worker=True).returncode == 0


def test_a_worker_without_a_broker_is_refused_naming_the_fix(tmp_path: Path) -> None:
    result = _preflight(tmp_path, mgmt_plane_worker=True)
    assert result.returncode != 0
    assert "mgmt_plane_worker=True needs mgmt_plane_broker_url" in result.stdout


def test_a_bad_broker_url_is_refused_without_showing_it(tmp_path: Path) -> None:
    bad = "http://smcp:s3cret-broker-pw@mq1:5672/smcp"
    result = _preflight(tmp_path, mgmt_plane_broker_url=bad)
    assert result.returncode != 0
    assert "mgmt_plane_broker_url (not shown: it holds a password) is not an AMQP URL" in result.stdout
    assert "s3cret-broker-pw" not in result.stdout + result.stderr


def test_worker_slots_are_bounded(tmp_path: Path) -> None:
    result = _preflight(tmp_path, mgmt_plane_broker_url=BROKER, mgmt_plane_worker=True, mgmt_plane_worker_slots=65)
    assert result.returncode != 0
    assert "mgmt_plane_worker_slots=65 is out of range; use 1 to 64" in result.stdout
