"""smcpctl entry point: assembles the command groups."""

from __future__ import annotations

import click

from smcp_api import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="smcpctl")
def cli() -> None:
    """Drive smcp: sandbox hosts on this machine, and (with the API) clusters, hosts and jobs."""


def _register() -> None:
    from smcp_api.cli import sandbox as sandbox_cmds

    cli.add_command(sandbox_cmds.sandbox)


def main() -> None:
    _register()
    cli()


if __name__ == "__main__":
    main()
