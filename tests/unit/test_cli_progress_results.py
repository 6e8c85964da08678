"""smcpctl's progress view: what each per-host result event does to the host's counters and the failure lines."""

from __future__ import annotations

from typing import Any

from smcp_api import client as api
from smcp_api.cli.progress import JobProgress


def feed(progress: JobProgress, name: str, host: str, **data: Any) -> list[str]:
    return progress.feed(api.Event(1, name, {"event": name, "host": host, "task": "t1", "data": data}))


def counts(progress: JobProgress, host: str) -> tuple[int, int, int, int, int]:
    row = progress.hosts[host]
    return (row.ok, row.changed, row.failed, row.unreachable, row.skipped)


def test_each_host_result_counts_once_and_failures_are_printed_and_kept() -> None:
    progress = JobProgress(job_id="j1", operation="prepare_hosts")
    progress.row("h1").current = "t1"
    assert feed(progress, "runner_on_ok", "h1", res={"changed": True}) == []
    assert progress.hosts["h1"].current == ""
    assert feed(progress, "runner_on_ok", "h1", res={"changed": False}) == []
    assert feed(progress, "runner_on_skipped", "h1") == []
    assert feed(progress, "runner_on_failed", "h1", ignore_errors=True, res={"msg": "ignored"}) == []
    assert counts(progress, "h1") == (3, 1, 0, 0, 1)

    assert feed(progress, "runner_on_failed", "h2", res={"msg": "no apt"}) == ["FAILED h2: [t1] no apt"]
    assert feed(progress, "runner_on_unreachable", "h3", res={"msg": "refused"}) == ["UNREACHABLE h3: [t1] refused"]
    assert counts(progress, "h2") == (0, 0, 1, 0, 0)
    assert counts(progress, "h3") == (0, 0, 0, 1, 0)
    assert progress.failures == ["FAILED h2: [t1] no apt", "UNREACHABLE h3: [t1] refused"]
