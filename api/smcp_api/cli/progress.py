"""Live job progress from the event stream: a rich table on a terminal, plain lines otherwise (CI logs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from smcp_api.client import Event

COUNTERS = ("ok", "changed", "failed", "unreachable", "skipped")
HOST_RESULTS = ("runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped")


@dataclass
class HostRow:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    current: str = ""

    @property
    def done(self) -> int:
        return self.ok + self.failed + self.unreachable + self.skipped


def _changed(data: dict[str, Any]) -> bool:
    if "changed" in data:
        return bool(data["changed"])
    res = data.get("res")
    return bool(res.get("changed")) if isinstance(res, dict) else False


def _failure_message(data: dict[str, Any]) -> str:
    res = data.get("res") if isinstance(data.get("res"), dict) else data
    for key in ("msg", "stderr", "reason", "message"):
        value = res.get(key) if isinstance(res, dict) else None
        if value:
            return " ".join(str(value).split())[:300]
    return ""


@dataclass
class JobProgress:
    """What the stream told us so far: per-host counters, the current task, failures in order."""

    job_id: str
    operation: str = ""
    hosts: dict[str, HostRow] = field(default_factory=dict)
    tasks: int = 0
    task: str = ""
    play: str = ""
    failures: list[str] = field(default_factory=list)
    final_status: str | None = None
    # The preflight role checks each host, then fails once (run_once, on whichever host comes first) when the
    # combined report has failures: that failure is the report's, not its host's. The report names the hosts.
    preflight_blamed: set[str] | None = None
    report_failures: dict[str, int] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)

    def row(self, host: str) -> HostRow:
        return self.hosts.setdefault(host, HostRow())

    def feed(self, ev: Event) -> list[str]:
        """Apply one event; returns lines worth printing on their own (new task, failures)."""
        data = ev.data
        name = ev.event
        host = ev.host
        lines: list[str] = []
        if name == "playbook_on_play_start":
            self.play = ev.record.get("play") or data.get("play", "") or self.play
        elif name == "playbook_on_task_start":
            self.tasks += 1
            self.task = ev.task or data.get("task", "") or ""
            lines.append(f"TASK [{self.task}]")
        elif name == "runner_on_start" and host:
            self.row(host).current = ev.task or data.get("task", "") or self.task
        elif name in HOST_RESULTS and host:
            self._host_result(name, host, ev, lines)
        elif name == "playbook_on_stats":
            self._apply_stats(data)
        elif name == "end":
            self.final_status = str(data.get("status") or ev.record.get("status") or "") or None
        return lines

    def _host_result(self, name: str, host: str, ev: Event, lines: list[str]) -> None:
        """A task's result on one host: its counters, and a failure line to print and keep for the summary."""
        data = ev.data
        row = self.row(host)
        row.current = ""
        failure = ""
        if name == "runner_on_ok":
            row.ok += 1
            row.changed += int(_changed(data))
            self._note_preflight_report(data)
        elif name == "runner_on_skipped":
            row.skipped += 1
        elif name == "runner_on_unreachable":
            row.unreachable += 1
            failure = f"UNREACHABLE {host}: [{ev.task or self.task}]"
        elif data.get("ignore_errors"):  # runner_on_failed of a task whose failure the play ignores
            row.ok += 1
        elif self._is_preflight_report(data):
            row.failed += 1
            self.report_failures[host] = self.report_failures.get(host, 0) + 1
            failure = f"FAILED preflight report (run once, on {host}):"
        else:
            row.failed += 1
            failure = f"FAILED {host}: [{ev.task or self.task}]"
        if failure:
            msg = f"{failure} {_failure_message(data)}".rstrip()
            self.failures.append(msg)
            lines.append(msg)

    def _note_preflight_report(self, data: dict[str, Any]) -> None:
        """Remember the hosts the preflight role's combined report finds failing (the `_preflight_report` fact)."""
        res = data.get("res")
        facts = res.get("ansible_facts") if isinstance(res, dict) else None
        report = facts.get("_preflight_report") if isinstance(facts, dict) else None
        if not isinstance(report, dict):
            return
        problems = [p for p in report.get("problems") or [] if isinstance(p, dict)]
        blamed = {str(p.get("host")) for p in problems if p.get("severity", "failure") == "failure"}
        self.preflight_blamed = (self.preflight_blamed or set()) | (blamed - {"cluster", "None"})

    def _is_preflight_report(self, data: dict[str, Any]) -> bool:
        """The preflight role's run-once `fail` over the combined report (after the report fact was seen)."""
        action = str(data.get("task_action") or "")
        return self.preflight_blamed is not None and data.get("role") == "preflight" and action.endswith("fail")

    def _apply_stats(self, data: dict[str, Any]) -> None:
        """Ansible's recap is authoritative: ok/changed/failures/dark/skipped per host."""
        keys = {
            "ok": "ok",
            "changed": "changed",
            "failures": "failed",
            "dark": "unreachable",
            "skipped": "skipped",
            "rescued": "rescued",
        }
        tables = {dst: data[src] for src, dst in keys.items() if isinstance(data.get(src), dict)}
        hosts = set(self.hosts).union(*(t.keys() for t in tables.values()))
        for host in hosts:
            row = self.row(host)
            row.current = ""
            for dst, per_host in tables.items():
                setattr(row, dst, int(per_host.get(host, 0)))

    def apply_summary(self, summary: dict[str, dict[str, int]] | None) -> None:
        """The job's host_summary from the API (final numbers)."""
        for host, counts in (summary or {}).items():
            row = self.row(host)
            for key in COUNTERS:
                if key in counts:
                    setattr(row, key, int(counts[key]))
            row.current = ""

    def failed_hosts(self) -> list[str]:
        """Hosts that ended failed or unreachable by Ansible's recap (rescued failures do not count).

        The preflight report's run-once failure counts against the hosts the report names, not the host it ran on.
        """
        blamed = self.preflight_blamed or set()
        return sorted(
            h
            for h, row in self.hosts.items()
            if row.unreachable > 0 or row.failed > self.report_failures.get(h, 0) or h in blamed
        )

    def unreachable_hosts(self) -> list[str]:
        return sorted(h for h, row in self.hosts.items() if row.unreachable > 0)

    def elapsed(self) -> str:
        secs = int(time.monotonic() - self.started)
        return f"{secs // 60:02d}:{secs % 60:02d}"

    def recap_lines(self) -> list[str]:
        width = max((len(h) for h in self.hosts), default=4)
        return [
            f"{host:<{width}}  "
            + "  ".join(f"{k}={getattr(row, k)}" for k in COUNTERS)
            + (f"  rescued={row.rescued}" if row.rescued else "")
            for host, row in sorted(self.hosts.items())
        ]

    def table(self, status: str = "running") -> Group:
        title = Text.assemble(
            ("job ", "bold"),
            (self.job_id, "bold cyan"),
            f"  {self.operation}  ",
            (status, "yellow" if status in ("pending", "running") else "bold"),
            f"  hosts: {len(self.hosts)}  tasks started: {self.tasks}  elapsed: {self.elapsed()}",
            (f"  hosts failing: {len(self.failed_hosts())}", "bold red") if self.failed_hosts() else "",
        )
        table = Table(box=None, pad_edge=False, header_style="bold")
        table.add_column("HOST")
        for key in COUNTERS:
            table.add_column(key.upper(), justify="right")
        table.add_column("DONE", justify="right")
        table.add_column("CURRENT TASK", overflow="ellipsis", no_wrap=True)
        for host, row in sorted(self.hosts.items()):
            table.add_row(
                host,
                str(row.ok),
                Text(str(row.changed), style="yellow" if row.changed else ""),
                Text(str(row.failed), style="bold red" if row.failed else ""),
                Text(str(row.unreachable), style="bold red" if row.unreachable else ""),
                str(row.skipped),
                str(row.done),
                row.current or "",
            )
        parts: list[Any] = [title]
        if self.task and status in ("pending", "running"):
            parts.append(Text(f"task: {self.task}", style="dim"))
        parts.append(table)
        return Group(*parts)


def follow(
    progress: JobProgress,
    events: Iterable[Event],
    *,
    tty: bool,
    out: TextIO,
    on_line: Callable[[str], None] | None = None,
) -> JobProgress:
    """Consume events until `end`, rendering live (tty) or as plain lines; returns the progress state."""
    if not tty:
        for ev in events:
            for line in progress.feed(ev):
                out.write(line + "\n")
                out.flush()
                if on_line:
                    on_line(line)
        return progress
    console = Console(file=out, highlight=False)
    with Live(progress.table(), console=console, refresh_per_second=4, transient=False) as live:
        for ev in events:
            for line in progress.feed(ev):
                if not line.startswith("TASK ["):
                    live.console.print(Text(line, style="bold red"))
            live.update(progress.table(progress.final_status or "running"))
    return progress


def event_line(ev: Event) -> str | None:
    """The event's own output when the API sends it, else an ansible-playbook-like line made from it."""
    if ev.has_stdout:
        return ev.stdout or None
    data, host, task = ev.data, ev.host, ev.task or ev.data.get("task") or ""
    name = ev.event
    if name == "playbook_on_play_start":
        return f"\nPLAY [{ev.record.get('play') or data.get('play') or ''}]"
    if name == "playbook_on_task_start":
        return f"\nTASK [{task}]"
    if name == "runner_on_ok" and host:
        return f"{'changed' if _changed(data) else 'ok'}: [{host}]"
    if name == "runner_on_skipped" and host:
        return f"skipping: [{host}]"
    if name == "runner_on_failed" and host:
        suffix = " (ignored)" if data.get("ignore_errors") else ""
        return f"fatal: [{host}]: FAILED! {_failure_message(data)}{suffix}".rstrip()
    if name == "runner_on_unreachable" and host:
        return f"fatal: [{host}]: UNREACHABLE! {_failure_message(data)}".rstrip()
    if name == "playbook_on_stats":
        progress = JobProgress(job_id="")
        progress.feed(ev)
        return "\nPLAY RECAP\n" + "\n".join(progress.recap_lines())
    return None
