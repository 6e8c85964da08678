"""The README's main flow on real sandbox hosts: `smcpctl up --sandbox 2`, a prepare_hosts job through the API
to success, a second run that changes nothing, then `smcpctl down --sandbox`. Sandbox name: cli2."""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.sandbox

SANDBOX = "cli2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smcpctl(env: dict[str, str], *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "smcp_api.cli.main", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    if shutil.which("podman") is None or os.geteuid() != 0:
        pytest.fail("the sandbox tests need root and podman (run `make setup`)")
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_")}
    environ.update(SMCP_API_DIR=str(tmp_path / "api"), SMCP_CONFIG=str(tmp_path / "config.yaml"))
    return environ


def summary(env: dict[str, str], job_id: str) -> dict[str, dict[str, int]]:
    shown = smcpctl(env, "job", "show", job_id, "-o", "json")
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.stdout)["host_summary"]


def test_up_sandbox_prepare_hosts_twice_then_down(env: dict[str, str], tmp_path: Path) -> None:
    port = str(free_port())
    try:
        up = smcpctl(env, "up", "--port", port, "--sandbox", "2", "--sandbox-name", SANDBOX)
        assert up.returncode == 0, up.stdout + up.stderr
        assert stat.S_IMODE((tmp_path / "config.yaml").stat().st_mode) == 0o600

        listed = smcpctl(env, "host", "list", "-l", f"sandbox={SANDBOX}", "-o", "json")
        hosts = {h["name"]: h for h in json.loads(listed.stdout)}
        assert sorted(hosts) == [f"{SANDBOX}-1", f"{SANDBOX}-2"]
        first = hosts[f"{SANDBOX}-1"]
        assert first["roles"] == ["etcd", "control_plane"] and hosts[f"{SANDBOX}-2"]["roles"] == ["workers"]
        assert first["vars"]["smcp_sandbox"] is True
        # The host key is pinned in the record (not smuggled in as an SSH option: the API refuses those).
        assert "ansible_ssh_common_args" not in first["vars"]
        assert first["known_hosts"] and first["host_key_fingerprints"][0].startswith("SHA256:")

        job = smcpctl(env, "job", "run", "prepare_hosts", "-l", f"sandbox={SANDBOX}", "--wait")
        assert job.returncode == 0, job.stdout[-3000:] + job.stderr
        lines = job.stdout.splitlines()
        assert any(line.startswith("TASK [") for line in lines)  # progress while it ran
        assert lines[-1].split()[3:5] == ["successful,", "rc=0,"]
        stats = summary(env, lines[0].split()[1])
        assert sorted(stats) == sorted(hosts) and all(s["failed"] == s["unreachable"] == 0 for s in stats.values())

        # Idempotent: `up` again reuses everything (same host records), the second run changes nothing.
        again = smcpctl(env, "up", "--port", port, "--sandbox", "2", "--sandbox-name", SANDBOX)
        assert again.returncode == 0, again.stderr
        assert "already running" in again.stdout
        relisted = smcpctl(env, "host", "list", "-l", f"sandbox={SANDBOX}", "-o", "yaml")
        assert {h["name"]: h["id"] for h in yaml.safe_load(relisted.stdout)} == {n: h["id"] for n, h in hosts.items()}
        rerun = smcpctl(env, "job", "run", "prepare_hosts", "-l", f"sandbox={SANDBOX}", "--wait")
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr
        restats = summary(env, rerun.stdout.splitlines()[0].split()[1])
        assert {h: s["changed"] for h, s in restats.items()} == dict.fromkeys(hosts, 0)
    finally:
        down = smcpctl(env, "down", "--sandbox", "--sandbox-name", SANDBOX)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "smcp-api stopped" in down.stdout
    status = smcpctl(env, "sandbox", "status", "--json")
    assert SANDBOX not in [s["name"] for s in json.loads(status.stdout or "[]")]
