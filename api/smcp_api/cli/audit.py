"""`smcpctl audit list`: who changed what, and every login (admins)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from smcp_api.cli import common

AUDIT_COLUMNS: list[common.Column] = [
    ("AT", "at"),
    ("ACTOR", "actor"),
    ("PROJECT", "project"),
    ("ACTION", "action"),
    ("TARGET", "target"),
    ("STATUS", "status"),
    ("SOURCE", "source"),
]
RELATIVE = re.compile(r"^(\d{1,6})([smhd])$")
UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}
PAGE = 1000  # the API's largest page


def when(value: str | None) -> str | None:
    """A time filter: `30m`, `2h`, `7d` (that long ago), or an ISO 8601 time handed to the API as it is."""
    if value is None:
        return None
    found = RELATIVE.match(value.strip())
    if found is None:
        return value
    ago = timedelta(**{UNITS[found.group(2)]: int(found.group(1))})
    return (datetime.now(UTC) - ago).isoformat()


@click.group("audit")
def audit() -> None:
    """The audit log: every change and every login (platform admins: all; project admins: their project)."""


@audit.command("list")
@click.option("--user", help="User name or id.")
@click.option("--target", help="Id of the record acted on.")
@click.option("--since", help="From this time: ISO 8601, or 30m / 2h / 7d ago.")
@click.option("--until", help="Before this time: ISO 8601, or 30m / 2h / 7d ago.")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True, help="Entries shown.")
@common.output_option
def audit_list(
    user: str | None, target: str | None, since: str | None, until: str | None, limit: int, output: str
) -> None:
    """Entries newest first; with --project (or a stored project) only that project's."""
    c = common.client()
    project = common.state().settings().project
    filters: dict[str, Any] = {
        "user": user,
        "project": project,
        "target": target,
        "since": when(since),
        "until": when(until),
    }
    items: list[dict[str, Any]] = []
    before = None
    while len(items) < limit:
        page = c.list_audit(**filters, before=before, limit=min(PAGE, limit - len(items)))
        items.extend(page["items"])
        before = page.get("next_before")
        if before is None:
            break
    common.emit(items, output, AUDIT_COLUMNS)
