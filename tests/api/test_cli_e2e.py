"""smcpctl against the real service: `smcpctl up` starts smcp-api on a free port (SQLite in a temp state dir),
then every command group runs over HTTP; `smcpctl down` stops it."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from smcp_api.cli import common
from smcp_api.cli.main import cli


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.config = root / "config.yaml"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("SMCP_URL", "SMCP_TOKEN", "SMCP_DB_URL")}
        env.update(SMCP_STATE_DIR=str(self.state), SMCP_CONFIG=str(self.config))
        return env

    def sub(self, *args: str) -> subprocess.CompletedProcess[str]:
        """smcpctl as its own process (needed for up/down: the service outlives the command)."""
        cmd = [sys.executable, "-m", "smcp_api.cli.main", *args]
        return subprocess.run(cmd, env=self.environ(), capture_output=True, text=True, timeout=180, check=False)

    def run(self, *args: str, token: str | None = None) -> Any:
        """smcpctl in-process (fast), reading url/token from the config file `up` wrote."""
        extra = ["--token", token] if token else []
        return CliRunner().invoke(
            cli, ["--config", str(self.config), *extra, *args], env={"SMCP_TOKEN": None, "SMCP_URL": None}
        )

    def json(self, *args: str) -> Any:
        result = self.run(*args, "-o", "json")
        assert result.exit_code == 0, result.output
        return json.loads(result.output)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("smcpctl"))
    started = e.sub("up", "--port", str(e.port))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        assert f"smcp-api started: {e.url}" in started.stdout
        yield e
    finally:
        stopped = e.sub("down")
        assert stopped.returncode == 0, stopped.stderr


def test_up_is_idempotent_and_stores_token_0600(env: Env) -> None:
    pid = (env.state / "api" / "smcp-api.pid").read_text().strip()
    again = env.sub("up", "--port", str(env.port))
    assert again.returncode == 0, again.stderr
    assert "already running" in again.stdout
    assert (env.state / "api" / "smcp-api.pid").read_text().strip() == pid
    assert stat.S_IMODE(env.config.stat().st_mode) == 0o600
    assert stat.S_IMODE((env.state / "api" / "smcp-api.log").stat().st_mode) == 0o600
    conf = yaml.safe_load(env.config.read_text())
    assert conf["url"] == env.url and conf["token"].startswith("smcp_")
    assert [t["role"] for t in env.json("token", "list")] == ["admin"]


def test_hosts_clusters_and_conflicts(env: Env, tmp_path: Path) -> None:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    cred = env.json("credential", "add", "--name", "e2e-key", "--key-file", str(key), "--username", "smcp")
    assert cred["fingerprint"].startswith("SHA256:") and "private_key" not in cred
    for name, role in (("e2e-1", "control_plane"), ("e2e-2", "workers")):
        added = env.run(
            "host", "add", name, "--address", f"127.0.0.{name[-1]}", "--port", "1", "--credential", "e2e-key",
            "--role", role, *(["--role", "etcd"] if role == "control_plane" else []), "--label", "suite=e2e",
        )  # fmt: skip
        assert added.exit_code == 0, added.output
    listed = env.run("host", "list", "-l", "suite=e2e")
    assert [line.split()[0] for line in listed.output.splitlines()[1:]] == ["e2e-1", "e2e-2"]
    dup = env.run("host", "add", "e2e-1", "--address", "127.0.0.1", "--credential", "e2e-key")
    assert dup.exit_code == common.EXIT_CONFLICT, dup.output

    spec = tmp_path / "cluster.yaml"
    spec.write_text(
        "name: e2e\nkubernetes_version: 1.34.4\ncni: calico\n"
        "hosts:\n  - name: e2e-1\n    roles: [etcd, control_plane]\n  - e2e-2\n"
    )
    created = env.run("cluster", "create", "-f", str(spec), "-o", "json")
    assert created.exit_code == 0, created.output
    cluster = json.loads(created.output)
    hosts = {h["name"]: h["id"] for h in env.json("host", "list")}
    assert cluster["hosts"] == [
        {"host_id": hosts["e2e-1"], "roles": ["etcd", "control_plane"]},
        {"host_id": hosts["e2e-2"], "roles": ["workers"]},
    ]
    shown = env.run("cluster", "show", "e2e")
    assert shown.exit_code == 0 and "e2e-1" in shown.output and "etcd,control_plane" in shown.output
    assert env.run("cluster", "create", "-f", str(spec)).exit_code == common.EXIT_CONFLICT

    bad = tmp_path / "bad.yaml"
    bad.write_text(spec.read_text().replace("name: e2e\n", "name: e2e-bad\n").replace("1.34.4", "1.20.0"))
    refused = env.run("cluster", "create", "-f", str(bad))
    assert refused.exit_code == common.EXIT_USAGE
    assert "not supported" in refused.output

    assert env.run("cluster", "delete", "e2e", "--yes").exit_code == 0
    assert env.run("cluster", "show", "e2e").exit_code == common.EXIT_NOT_FOUND


def test_job_wait_shows_failures_and_exit_codes(env: Env, tmp_path: Path) -> None:
    key = tmp_path / "k"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    assert env.run("credential", "add", "--name", "e2e-dead", "--key-file", str(key)).exit_code == 0
    added = env.run(
        "host", "add", "dead-1", "--address", "127.0.0.3", "--port", "1",
        "--credential", "e2e-dead", "--role", "workers",
    )  # fmt: skip
    assert added.exit_code == 0, added.output

    waited = env.run("job", "run", "preflight", "--host", "dead-1", "--wait")
    assert waited.exit_code == common.EXIT_JOB_FAILED, waited.output
    out = waited.output
    assert "UNREACHABLE dead-1:" in out and "Connection refused" in out
    assert "recap: dead-1" in out and "unreachable=1" in out
    job_id = out.split()[1]
    assert f"job {job_id} preflight: failed" in out

    shown = env.json("job", "show", job_id)
    assert shown["status"] == "failed" and shown["host_summary"]["dead-1"]["unreachable"] == 1
    logs = env.run("job", "logs", job_id)
    assert logs.exit_code == 0 and "UNREACHABLE" in logs.output
    follow = env.run("job", "logs", "-f", job_id)
    assert follow.exit_code == common.EXIT_JOB_FAILED and "fatal: [dead-1]: UNREACHABLE!" in follow.output
    assert env.run("job", "cancel", job_id).exit_code == common.EXIT_CONFLICT
    assert job_id in [j["id"] for j in env.json("job", "list", "--status", "failed")]

    checked = env.run("host", "check", "dead-1", "--wait")
    assert checked.exit_code == common.EXIT_JOB_FAILED
    assert "dead-1: preflight unreachable" in checked.output


def test_auth_and_reachability_exit_codes(env: Env, tmp_path: Path) -> None:
    created = env.json("token", "create", "--name", "e2e-viewer", "--role", "viewer")
    viewer = created["token"]
    assert env.run("host", "list", token=viewer).exit_code == 0
    key = tmp_path / "key"
    key.write_text("not checked: the role is\n")
    refused = env.run("credential", "add", "--name", "v", "--key-file", str(key), token=viewer)
    assert refused.exit_code == common.EXIT_API
    assert "403" in refused.output
    assert env.run("host", "list", token="smcp_wrong").exit_code == common.EXIT_API
    assert env.run("job", "show", "0" * 32).exit_code == common.EXIT_NOT_FOUND
    elsewhere = CliRunner().invoke(cli, ["--url", f"http://127.0.0.1:{free_port()}", "host", "list"])
    assert elsewhere.exit_code == common.EXIT_API and "cannot reach" in elsewhere.output


def test_down_then_up_restarts_with_the_same_token(env: Env) -> None:
    token = yaml.safe_load(env.config.read_text())["token"]
    assert env.sub("down").returncode == 0
    assert env.run("host", "list").exit_code == common.EXIT_API
    restarted = env.sub("up", "--port", str(env.port))
    assert restarted.returncode == 0, restarted.stderr
    assert "started" in restarted.stdout
    assert yaml.safe_load(env.config.read_text())["token"] == token
    assert env.run("host", "list").exit_code == 0
