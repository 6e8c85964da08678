"""Shared smcpctl plumbing: exit codes, the API client from settings, output (table/json/yaml), name lookup."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml
from rich.console import Console
from rich.table import Table

from smcp_api import client as api
from smcp_api.cli import config

# Exit codes scripts can rely on (documented in docs/cli.md).
EXIT_OK = 0
EXIT_JOB_FAILED = 1
EXIT_USAGE = 2
EXIT_API = 3
EXIT_NOT_FOUND = 4
EXIT_CONFLICT = 5
EXIT_INTERRUPTED = 130

F = TypeVar("F", bound=Callable[..., Any])


def exit_code_for(exc: BaseException) -> int:
    """The documented exit code of an error raised while running a command."""
    if isinstance(exc, KeyboardInterrupt):
        return EXIT_INTERRUPTED
    if isinstance(exc, api.NotFound):
        return EXIT_NOT_FOUND
    if isinstance(exc, api.Conflict):
        return EXIT_CONFLICT
    if isinstance(exc, (api.Invalid, config.ConfigError)):
        return EXIT_USAGE
    if isinstance(exc, api.ApiError):  # unreachable, 401/403, 5xx, anything unexpected from the API
        return EXIT_API
    return EXIT_API


class SmcpGroup(click.Group):
    """Root group: turns API errors and Ctrl-C into one stderr line and the documented exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (api.ApiError, config.ConfigError) as exc:
            click.echo(f"smcpctl: error: {exc}", err=True)
            raise click.exceptions.Exit(exit_code_for(exc)) from exc
        except (KeyboardInterrupt, click.exceptions.Abort) as exc:
            click.echo("\nsmcpctl: interrupted", err=True)
            raise click.exceptions.Exit(EXIT_INTERRUPTED) from exc


@dataclass
class State:
    """Per-invocation state kept in click's ctx.obj."""

    url: str | None = None
    token: str | None = None
    config_file: Path | None = None
    project: str | None = None
    transport: Any = None  # tests inject an httpx transport here
    _client: api.SmcpClient | None = field(default=None, repr=False)

    def settings(self) -> config.Settings:
        return config.resolve(self.url, self.token, self.config_file, self.project)

    def client(self) -> api.SmcpClient:
        if self._client is None:
            s = self.settings()
            self._client = api.SmcpClient(s.url, s.token, transport=self.transport, project=s.project)
        return self._client

    def reset_client(self) -> None:
        if self._client is not None:
            self._client.close()
        self._client = None


def state() -> State:
    ctx = click.get_current_context()
    obj = ctx.find_object(State)
    if obj is None:
        obj = ctx.ensure_object(State)
    return obj


def client() -> api.SmcpClient:
    return state().client()


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json", "yaml"]),
        default="table",
        show_default=True,
        help="Output format: human table, or json/yaml for scripts.",
    )(func)


def print_table(table: Table) -> None:
    """A table on stdout: rich on a terminal; elsewhere plain, wide (no cut at 80 columns), no trailing blanks."""
    if sys.stdout.isatty():
        Console(highlight=False).print(table)
        return
    buf = io.StringIO()
    Console(file=buf, width=250, highlight=False, no_color=True, color_system=None).print(table)
    click.echo("\n".join(line.rstrip() for line in buf.getvalue().splitlines()))


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value) or "-"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) or "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    if len(text) >= 19 and text[4:5] == "-" and text[10:11] == "T":  # ISO timestamp: drop sub-seconds/zone
        return text[:19].replace("T", " ")
    return text


Column = tuple[str, str | Callable[[dict[str, Any]], Any]]


def emit(data: Any, fmt: str, columns: Sequence[Column] | None = None, title: str | None = None) -> None:
    """Print one record or a list of records as a table (columns = (header, key or getter)), json or yaml."""
    if fmt == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
        return
    if fmt == "yaml":
        click.echo(yaml.safe_dump(json.loads(json.dumps(data, default=str)), sort_keys=True).rstrip())
        return
    if isinstance(data, list):
        table = Table(box=None, pad_edge=False, header_style="bold", title=title)
        for header, _ in columns or []:
            table.add_column(header)
        for item in data:
            table.add_row(
                *(_cell(getter(item) if callable(getter) else item.get(getter)) for _, getter in columns or [])
            )
        print_table(table)
        if not data:
            click.echo("(none)")
        return
    # one record: key/value listing
    table = Table(box=None, pad_edge=False, show_header=False, title=title)
    table.add_column(style="bold")
    table.add_column()
    pairs = (
        [(h, getter(data) if callable(getter) else data.get(getter)) for h, getter in columns]
        if columns
        else list(data.items())
    )
    for key, value in pairs:
        table.add_row(str(key), _cell(value))
    print_table(table)


def _matches(item: dict[str, Any], ref: str) -> bool:
    return ref in (item.get("id"), item.get("name"))


def resolve_ref(kind: str, ref: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    """Find a record by id or name (an id prefix of 6+ characters also works); NotFound otherwise."""
    exact = [i for i in items if _matches(i, ref)]
    if len(exact) == 1:
        return exact[0]
    if not exact and len(ref) >= 6:
        prefixed = [i for i in items if str(i.get("id", "")).startswith(ref)]
        if len(prefixed) == 1:
            return prefixed[0]
        if len(prefixed) > 1:
            raise click.UsageError(f"{kind} id prefix {ref!r} is ambiguous: give more characters")
    if len(exact) > 1:
        raise click.UsageError(f"{kind} {ref!r} matches several records: use its id")
    known = ", ".join(sorted(str(i.get("name")) for i in items)[:10]) or "none"
    raise api.NotFound(f"no {kind} named or with id {ref!r} (known: {known})", status=404)


def find_host(ref: str) -> dict[str, Any]:
    return resolve_ref("host", ref, client().list_hosts())


def find_cluster(ref: str) -> dict[str, Any]:
    return resolve_ref("cluster", ref, client().list_clusters())


def find_credential(ref: str) -> dict[str, Any]:
    return resolve_ref("credential", ref, client().list_credentials())


def find_token(ref: str) -> dict[str, Any]:
    return resolve_ref("token", ref, client().list_tokens())


def find_job(ref: str) -> dict[str, Any]:
    """A job by id (or unique id prefix of 6+ characters among the latest jobs)."""
    c = client()
    try:
        return c.get_job(ref)
    except api.NotFound:
        if len(ref) < 6:
            raise
    return resolve_ref("job", ref, c.list_jobs(limit=500))


def parse_pairs(values: Sequence[str], what: str) -> dict[str, Any]:
    """`k=v` options into a dict; values are YAML scalars (true, 3, "x")."""
    out: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=what)
        try:
            out[key] = yaml.safe_load(raw) if raw else ""
        except yaml.YAMLError:
            out[key] = raw
    return out


Record = dict[str, Any]


def show_command(
    group: click.Group, kind: str, find: Callable[[str], Record]
) -> Callable[[Callable[[Record], None]], click.Command]:
    """Declare `<group> show <KIND>_REF [-o FORMAT]`: json and yaml print the record `find` returns as it is; the
    table view is the decorated function's, and its docstring is the command's help."""

    def declare(draw: Callable[[Record], None]) -> click.Command:
        @click.argument("ref", metavar=f"{kind.upper()}_REF")
        @output_option
        def show(ref: str, output: str) -> None:
            data = find(ref)
            if output != "table":
                emit(data, output)
                return
            draw(data)

        return group.command("show", help=draw.__doc__)(show)

    return declare


def delete_command(
    group: click.Group,
    kind: str,
    help: str,
    find: Callable[[str], Record],
    delete: Callable[[api.SmcpClient, str], Any],
) -> click.Command:
    """Declare `<group> delete <KIND>_REF`: find the record, delete it by id, say so."""

    @click.argument("ref", metavar=f"{kind.upper()}_REF")
    def remove(ref: str) -> None:
        target = find(ref)
        delete(client(), target["id"])
        click.echo(f"{kind} {target['name']} deleted")

    return group.command("delete", help=help)(remove)
