"""smcpctl login / user / project / audit / --project against the real service (`smcpctl up` on a free port)."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from smcp_api.cli import common
from smcp_api.cli.main import cli

from tests.api.test_cli_e2e import Env

ALICE_PASSWORD = "alice-long-passphrase-7"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    e = Env(tmp_path_factory.mktemp("smcpctl-people"))
    started = e.sub("up", "--port", str(e.port))
    try:
        assert started.returncode == 0, started.stdout + started.stderr
        yield e
    finally:
        stopped = e.sub("down")
        assert stopped.returncode == 0, stopped.stderr


def as_alice(env: Env, *args: str, stdin: str | None = None) -> Any:
    """smcpctl with alice's own config file (the admin's stays in env.config)."""
    return CliRunner().invoke(
        cli,
        ["--config", str(env.root / "alice.yaml"), "--url", env.url, *args],
        input=stdin,
        env={"SMCP_TOKEN": None, "SMCP_URL": None, "SMCP_PROJECT": None},
    )


def as_admin(env: Env, *args: str, stdin: str | None = None) -> Any:
    return CliRunner().invoke(
        cli, ["--config", str(env.config), *args], input=stdin, env={"SMCP_TOKEN": None, "SMCP_URL": None}
    )


@pytest.fixture(scope="module")
def alice(env: Env) -> None:
    made = as_admin(env, "user", "create", "alice", "--password-stdin", stdin=ALICE_PASSWORD + "\n")
    assert made.exit_code == 0, made.output
    assert as_admin(env, "project", "create", "team-a", "--description", "the A team").exit_code == 0
    added = as_admin(env, "project", "add-member", "team-a", "alice", "--role", "operator")
    assert added.exit_code == 0, added.output


def test_users_and_projects(env: Env, alice: None) -> None:
    users = env.json("user", "list")
    assert [b["project"] for u in users if u["username"] == "alice" for b in u["bindings"]] == ["team-a"]
    assert "team-a" in [p["name"] for p in env.json("project", "list")]
    members = env.json("project", "members", "team-a")
    assert [(m["username"], m["role"]) for m in members] == [("alice", "operator")]
    short = as_admin(env, "user", "create", "bob", "--password-stdin", stdin="short\n")
    assert short.exit_code == common.EXIT_USAGE and "at least 12" in short.output


def test_login_asks_without_echo_and_stores_the_token_0600(env: Env, alice: None) -> None:
    wrong = as_alice(env, "login", "-u", "alice", stdin="not-her-password\n")
    assert wrong.exit_code == common.EXIT_API and "401" in wrong.output
    logged = as_alice(env, "--project", "team-a", "login", "-u", "alice", stdin=ALICE_PASSWORD + "\n")
    assert logged.exit_code == 0, logged.output
    assert ALICE_PASSWORD not in logged.output  # prompted with hide_input: never echoed
    path = env.root / "alice.yaml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    stored = yaml.safe_load(path.read_text())
    admin = yaml.safe_load(env.config.read_text())["token"]
    assert stored["token"].startswith("smcp_") and stored["token"] != admin
    assert (stored["user"], stored["project"]) == ("alice", "team-a")
    me = json.loads(as_alice(env, "whoami", "-o", "json").output)
    assert (me["user"]["username"], me["project"], me["role"]) == ("alice", "team-a", "operator")


def test_password_stdin_and_project_flag(env: Env, alice: None) -> None:
    logged = as_alice(env, "login", "--username", "alice", "--password-stdin", stdin=ALICE_PASSWORD + "\n")
    assert logged.exit_code == 0, logged.output
    assert as_alice(env, "--project", "team-a", "host", "list").exit_code == 0
    other = as_alice(env, "--project", "default", "host", "list")
    assert other.exit_code == common.EXIT_NOT_FOUND, other.output
    empty = as_alice(env, "login", "-u", "alice", "--password-stdin", stdin="")
    assert empty.exit_code == common.EXIT_USAGE and "stdin is empty" in empty.output


def test_audit_list_for_admins_only(env: Env, alice: None) -> None:
    assert as_alice(env, "login", "-u", "alice", "--password-stdin", stdin=ALICE_PASSWORD + "\n").exit_code == 0
    entries = env.json("audit", "list", "--user", "alice", "--since", "1h")
    logins = [e for e in entries if e["action"] == "POST /api/v1/auth/login"]
    assert logins and {e["status"] for e in logins} <= {201, 401}
    assert all(ALICE_PASSWORD not in json.dumps(e) for e in env.json("audit", "list", "--limit", "1000"))
    table = env.run("audit", "list", "--limit", "3")
    assert table.exit_code == 0 and table.output.splitlines()[0].split()[:4] == ["AT", "ACTOR", "PROJECT", "ACTION"]
    refused = as_alice(env, "audit", "list")
    assert refused.exit_code == common.EXIT_API and "403" in refused.output
    assert env.run("audit", "list", "--since", "yesterday-ish").exit_code == common.EXIT_USAGE


def test_logout_revokes_the_stored_token(env: Env, alice: None) -> None:
    assert as_alice(env, "login", "-u", "alice", "--password-stdin", stdin=ALICE_PASSWORD + "\n").exit_code == 0
    token = yaml.safe_load((env.root / "alice.yaml").read_text())["token"]
    assert as_alice(env, "logout").exit_code == 0
    assert not yaml.safe_load((env.root / "alice.yaml").read_text()).get("token")
    revoked = CliRunner().invoke(cli, ["--url", env.url, "--token", token, "whoami"], env={"SMCP_TOKEN": None})
    assert revoked.exit_code == common.EXIT_API and "401" in revoked.output
