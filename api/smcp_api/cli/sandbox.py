"""`smcpctl sandbox up|status|down`: a thin shell over smcp_api.sandbox."""

from __future__ import annotations

import json
import sys
import time
from types import TracebackType
from typing import NoReturn

import click

from smcp_api import sandbox as sb


class PlainProgress:
    """One line per step on stderr (CI has no TTY)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.total = 0
        self.done = 0
        self.label = ""

    def _line(self, text: str) -> None:
        click.echo(f"[{time.monotonic() - self.t0:6.1f}s] {text}", err=True)

    def step(self, message: str) -> None:
        self._line(message)

    def start(self, label: str, total: int) -> None:
        self.label, self.total, self.done = label, total, 0
        self._line(f"{label} (0/{total})")

    def advance(self, label: str) -> None:
        self.done += 1
        self._line(f"{self.label}: {label} ({self.done}/{self.total})")

    def __enter__(self) -> PlainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class RichProgress:
    """A live progress bar on a TTY."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self.console = Console(stderr=True)
        self.bar = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=self.console,
            transient=False,
        )
        self.task: object | None = None

    def step(self, message: str) -> None:
        self._finish()
        self.task = self.bar.add_task(message, total=None)

    def start(self, label: str, total: int) -> None:
        self._finish()
        self.task = self.bar.add_task(label, total=total)

    def advance(self, label: str) -> None:
        if self.task is not None:
            self.bar.advance(self.task)  # type: ignore[arg-type]

    def _finish(self) -> None:
        if self.task is not None:
            task = self.bar.tasks[-1]
            self.bar.update(self.task, total=task.total or 1, completed=task.total or 1)  # type: ignore[arg-type]
            self.task = None

    def __enter__(self) -> RichProgress:
        self.bar.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if kind is None:
            self._finish()
        self.bar.stop()


def _progress(quiet: bool) -> PlainProgress | RichProgress | None:
    if quiet:
        return None
    return RichProgress() if sys.stderr.isatty() else PlainProgress()


def _fail(exc: Exception) -> NoReturn:
    click.echo(f"error: {exc}", err=True)
    sys.exit(2)


class _Quiet:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


@click.group()
def sandbox() -> None:
    """Sandbox hosts: real Debian 12 machines as podman containers on this machine."""


@sandbox.command("up")
@click.option("--hosts", "-n", "hosts", type=int, required=True, help="Number of hosts (1-64).")
@click.option("--name", default=sb.DEFAULT_NAME, show_default=True, help="Sandbox name (a-z, 0-9, '-').")
@click.option("--subnet", default=None, help="IPv4 subnet for the hosts (default: a free /24 of 10.213.0.0/16).")
@click.option("--json", "as_json", is_flag=True, help="Print the sandbox as JSON (hosts, key, known_hosts).")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def up_cmd(hosts: int, name: str, subnet: str | None, as_json: bool, quiet: bool) -> None:
    """Create (or recover) sandbox NAME with N hosts and write its Ansible inventory."""
    progress = _progress(quiet)
    try:
        with progress or _Quiet():
            info = sb.up(name, hosts, subnet=subnet, progress=progress)
    except sb.SandboxError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps(info.to_json(), indent=2))
        return
    if info.already_up:
        click.echo(f"sandbox {name!r} already up ({len(info.hosts)} hosts)", err=True)
    click.echo(str(info.inventory))


@sandbox.command("status")
@click.option("--name", default=None, help="Only this sandbox.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_cmd(name: str | None, as_json: bool) -> None:
    """List the sandboxes on this machine."""
    try:
        boxes = sb.status(name)
    except sb.SandboxError as exc:
        _fail(exc)
    if as_json:
        click.echo(json.dumps([b.to_json() for b in boxes], indent=2))
        return
    if not boxes:
        click.echo("no sandboxes" if name is None else f"no sandbox {name!r}")
        if name is not None:
            sys.exit(1)
        return
    for box in boxes:
        where = box.inventory if box.directory else "-"
        click.echo(f"{box.name}: {box.state}, {len(box.hosts)} hosts, {box.subnet or '-'}, {where}")
        for host in box.hosts:
            click.echo(f"  {host.name:<24} {host.ip:<16} {host.container}")


@sandbox.command("down")
@click.option("--name", default=sb.DEFAULT_NAME, show_default=True, help="Sandbox to remove.")
@click.option("--all", "all_", is_flag=True, help="Remove every sandbox on this machine.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
def down_cmd(name: str, all_: bool, quiet: bool) -> None:
    """Remove a sandbox: its containers, network, guard rules and files (image and apt cache are kept)."""
    progress = None if quiet else PlainProgress()
    try:
        if all_:
            removed = sb.down_all(progress=progress)
            click.echo(f"removed {len(removed)} sandboxes" + (f": {', '.join(removed)}" if removed else ""))
        elif sb.down(name, progress=progress):
            click.echo(f"sandbox {name!r} removed")
        else:
            click.echo(f"sandbox {name!r} not found: nothing to remove")
    except sb.SandboxError as exc:
        _fail(exc)
