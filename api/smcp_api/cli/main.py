"""smcpctl entry point: assembles the command groups."""

from __future__ import annotations

from pathlib import Path

import click

from smcp_api import __version__
from smcp_api.cli import audit, common, jobs, local, people, resources


@click.group(cls=common.SmcpGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smcpctl")
@click.option("--url", envvar="SMCP_URL", help="API base URL [env SMCP_URL; config; http://127.0.0.1:8780].")
@click.option("--token", envvar="SMCP_TOKEN", help="API bearer token [env SMCP_TOKEN; config file].")
@click.option(
    "--config",
    "config_file",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="SMCP_CONFIG",
    help="Config file [env SMCP_CONFIG; ~/.config/smcp/config.yaml].",
)
@click.option(
    "--project",
    envvar="SMCP_PROJECT",
    help="Project every request acts in (name or id) [env SMCP_PROJECT; config; the token's or your only project].",
)
@click.pass_context
def cli(ctx: click.Context, url: str | None, token: str | None, config_file: Path | None, project: str | None) -> None:
    """Drive smcp: sandbox hosts on this machine, and (with the API) clusters, hosts and jobs.

    \b
    Exit codes: 0 ok, 1 job failed/canceled, 2 usage or validation error, 3 API unreachable,
    auth refused or server error, 4 not found, 5 conflict/busy, 130 interrupted.
    """
    obj = ctx.ensure_object(common.State)
    obj.url, obj.token, obj.config_file = url or obj.url, token or obj.token, config_file or obj.config_file
    obj.project = project or obj.project


def _register() -> None:
    if "job" in cli.commands:
        return
    for command in (
        resources.cluster,
        resources.host,
        resources.credential,
        resources.token,
        resources.config_group,
        jobs.job,
        local.up,
        local.down,
        people.login,
        people.logout,
        people.whoami,
        people.project,
        people.user,
        audit.audit,
    ):
        cli.add_command(command)
    try:
        from smcp_api.cli import sandbox as sandbox_cmds
    except ModuleNotFoundError as exc:  # the sandbox helper's module is not in this build
        if exc.name != "smcp_api.cli.sandbox":
            raise
    else:
        cli.add_command(sandbox_cmds.sandbox)


_register()


def main() -> None:
    cli(prog_name="smcpctl")


if __name__ == "__main__":
    main()
