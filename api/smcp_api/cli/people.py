"""`smcpctl login|logout|whoami`, `smcpctl project ...`, `smcpctl user ...`: people and their projects."""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from smcp_api import client as api
from smcp_api.cli import common, config

USER_COLUMNS: list[common.Column] = [
    ("USERNAME", "username"),
    ("SOURCE", "source"),
    ("PLATFORM ADMIN", "platform_admin"),
    ("DISABLED", "disabled"),
    ("PROJECTS", lambda u: [f"{b['project']}={b['role']}" for b in u.get("bindings") or []]),
    ("LAST LOGIN", "last_login_at"),
    ("ID", "id"),
]
PROJECT_COLUMNS: list[common.Column] = [
    ("NAME", "name"),
    ("DESCRIPTION", "description"),
    ("CREATED", "created_at"),
    ("ID", "id"),
]
MEMBER_COLUMNS: list[common.Column] = [("USERNAME", "username"), ("ROLE", "role"), ("USER ID", "user_id")]
ROLE_CHOICE = click.Choice(["viewer", "operator", "admin"])


def read_password(from_stdin: bool, prompt: str = "Password", confirm: bool = False) -> str:
    """A password from the first line of stdin, or asked on the terminal without echo."""
    if from_stdin:
        line = sys.stdin.readline().rstrip("\r\n")
        if not line:
            raise click.UsageError("--password-stdin: stdin is empty; pipe the password in, e.g. from a file")
        return line
    return str(click.prompt(prompt, hide_input=True, confirmation_prompt=confirm))


# -------------------------------------------------------------------------------------------- login
@click.command("login")
@click.option("-u", "--username", help="Your user name (asked when not given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (else asked, not echoed).")
@click.option(
    "--expires-in",
    type=click.IntRange(60, 2_592_000),
    help="Seconds the token lives (the API's default: 12 h).",
)
def login(username: str | None, password_stdin: bool, expires_in: int | None) -> None:
    """Log in with a user name and password: store the user's new token in the config file (mode 0600).

    With --project, that project is stored too and becomes the default of later commands.
    """
    st = common.state()
    s = st.settings()
    username = username or str(click.prompt("Username"))
    password = read_password(password_stdin)
    with api.SmcpClient(s.url, None, transport=st.transport) as c:
        out = c.login(username, password, expires_in=expires_in)
    updates: dict[str, Any] = {"url": s.url, "token": out["token"], "user": out["user"]["username"]}
    if st.project:
        updates["project"] = st.project
    config.save_file(s.path, updates)
    click.echo(f"logged in as {out['user']['username']} until {str(out['expires_at'])[:19].replace('T', ' ')} UTC")
    click.echo(f"token stored in {s.path} (0600)")
    if os.environ.get("SMCP_TOKEN"):
        click.echo("note: SMCP_TOKEN is set in this shell and takes precedence; unset it to use this login", err=True)


@click.command("logout")
def logout() -> None:
    """Revoke the stored token at the API and remove it from the config file."""
    s = common.state().settings()
    common.client().logout()
    if s.auth_source == str(s.path):
        config.save_file(s.path, {"token": None})
    click.echo("logged out")


@click.command("whoami")
@common.output_option
def whoami(output: str) -> None:
    """The user, the project requests act in and the role there."""
    me = common.client().me()
    if output != "table":
        common.emit(me, output)
        return
    user = me["user"]
    common.emit(
        {
            "user": user["username"],
            "project": me["project"],
            "role": me["role"],
            "platform admin": me["platform_admin"],
            "projects": [f"{b['project']}={b['role']}" for b in user.get("bindings") or []],
        },
        output,
    )


# ------------------------------------------------------------------------------------------ project
@click.group("project")
def project() -> None:
    """Projects: every cluster, host, credential, job and token belongs to one."""


@project.command("list")
@common.output_option
def project_list(output: str) -> None:
    """Projects you are a member of (a platform admin: all)."""
    common.emit(common.client().list_projects(), output, PROJECT_COLUMNS)


@project.command("create")
@click.argument("name")
@click.option("--description")
@common.output_option
def project_create(name: str, description: str | None, output: str) -> None:
    """Create a project (platform admin)."""
    common.emit(common.client().create_project(name, description), output, PROJECT_COLUMNS)


@project.command("delete")
@click.argument("name")
def project_delete(name: str) -> None:
    """Delete an empty project (platform admin; exit 5 while it holds anything)."""
    common.client().delete_project(name)
    click.echo(f"project {name} deleted")


@project.command("use")
@click.argument("name")
def project_use(name: str) -> None:
    """Make NAME the project of later commands (stored in the config file)."""
    st = common.state()
    s = st.settings()
    with api.SmcpClient(s.url, s.token, transport=st.transport, project=name) as c:
        c.me()  # 404 when it is not a project of yours
    config.save_file(s.path, {"project": name})
    click.echo(f"project {name} stored in {s.path}")


@project.command("members")
@click.argument("name")
@common.output_option
def project_members(name: str, output: str) -> None:
    """Members of a project and their roles."""
    common.emit(common.client().list_members(name), output, MEMBER_COLUMNS)


def _user_id(ref: str) -> str:
    """A user's id from a name or id (a project admin, who may not list users, gives an id)."""
    try:
        users = common.client().list_users()
    except api.AuthError:
        return ref
    items = [{**u, "name": u["username"]} for u in users]
    return str(common.resolve_ref("user", ref, items)["id"])


@project.command("add-member")
@click.argument("name")
@click.argument("user_ref", metavar="USER")
@click.option("--role", type=ROLE_CHOICE, required=True)
@common.output_option
def project_add_member(name: str, user_ref: str, role: str, output: str) -> None:
    """Give USER (name or id) ROLE in project NAME (project admin; sets the role of a member)."""
    common.emit(common.client().set_member(name, _user_id(user_ref), role), output, MEMBER_COLUMNS)


@project.command("remove-member")
@click.argument("name")
@click.argument("user_ref", metavar="USER")
def project_remove_member(name: str, user_ref: str) -> None:
    """Remove USER from project NAME (project admin)."""
    common.client().remove_member(name, _user_id(user_ref))
    click.echo(f"{user_ref} removed from project {name}")


# --------------------------------------------------------------------------------------------- user
@click.group("user")
def user() -> None:
    """Users (platform admin), and your own password."""


@user.command("list")
@common.output_option
def user_list(output: str) -> None:
    """Every user with their project roles."""
    common.emit(common.client().list_users(), output, USER_COLUMNS)


@user.command("create")
@click.argument("username")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin.")
@click.option(
    "--no-password",
    is_flag=True,
    help="No password yet (no login until one is set; LDAP users need no record: their first login makes it).",
)
@click.option("--platform-admin", is_flag=True, help="Admin of every project.")
@common.output_option
def user_create(username: str, password_stdin: bool, no_password: bool, platform_admin: bool, output: str) -> None:
    """Create a user (the password is asked twice unless --password-stdin or --no-password)."""
    password = None if no_password else read_password(password_stdin, f"Password for {username}", confirm=True)
    common.emit(common.client().create_user(username, password, platform_admin), output, USER_COLUMNS)


def _find_user(ref: str) -> dict[str, Any]:
    items = [{**u, "name": u["username"]} for u in common.client().list_users()]
    return common.resolve_ref("user", ref, items)


@user.command("disable")
@click.argument("user_ref", metavar="USER")
def user_disable(user_ref: str) -> None:
    """Disable a user: their logins and tokens are refused."""
    target = _find_user(user_ref)
    common.client().update_user(target["id"], {"disabled": True})
    click.echo(f"user {target['username']} disabled")


@user.command("enable")
@click.argument("user_ref", metavar="USER")
def user_enable(user_ref: str) -> None:
    """Enable a disabled user."""
    target = _find_user(user_ref)
    common.client().update_user(target["id"], {"disabled": False})
    click.echo(f"user {target['username']} enabled")


@user.command("set-password")
@click.argument("user_ref", metavar="USER")
@click.option("--password-stdin", is_flag=True, help="Read the new password from stdin.")
def user_set_password(user_ref: str, password_stdin: bool) -> None:
    """Set another user's password (platform admin)."""
    target = _find_user(user_ref)
    password = read_password(password_stdin, f"New password for {target['username']}", confirm=True)
    common.client().update_user(target["id"], {"password": password})
    click.echo(f"password of {target['username']} set")


@user.command("passwd")
def user_passwd() -> None:
    """Change your own password (asks the current one and the new one, twice)."""
    current = read_password(False, "Current password")
    new = read_password(False, "New password", confirm=True)
    common.client().change_password(current, new)
    click.echo("password changed")


@user.command("delete")
@click.argument("user_ref", metavar="USER")
def user_delete(user_ref: str) -> None:
    """Delete a user and their tokens."""
    target = _find_user(user_ref)
    common.client().delete_user(target["id"])
    click.echo(f"user {target['username']} deleted")
