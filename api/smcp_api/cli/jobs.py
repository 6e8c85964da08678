"""`smcpctl job ...`: list, show, logs [-f], cancel, run OPERATION [--wait], wait."""

from __future__ import annotations

import sys
from typing import Any

import click

from smcp_api import client as api
from smcp_api.cli import common
from smcp_api.cli.progress import JobProgress, event_line, follow
from smcp_api.operations import OPERATIONS as PLAYBOOKS

OPERATIONS = tuple(PLAYBOOKS)  # the API's operations, in its order

JOB_COLUMNS: list[common.Column] = [
    ("ID", "id"),
    ("OPERATION", "operation"),
    ("STATUS", "status"),
    ("CLUSTER", "cluster_id"),
    ("HOSTS", lambda j: len(j.get("host_ids") or [])),
    ("CREATED", "created_at"),
    ("FINISHED", "finished_at"),
    ("RC", "rc"),
]

JOB_DETAIL: list[common.Column] = [
    ("id", "id"),
    ("operation", "operation"),
    ("status", "status"),
    ("reason", "status_reason"),
    ("cluster", "cluster_id"),
    ("hosts", "host_ids"),
    ("params", "params"),
    ("created", "created_at"),
    ("started", "started_at"),
    ("finished", "finished_at"),
    ("rc", "rc"),
    ("events", lambda j: (j.get("counters") or {}).get("events")),
    ("tasks", lambda j: (j.get("counters") or {}).get("tasks")),
]


def job_exit_code(status: str | None) -> int:
    return common.EXIT_OK if status == "successful" else common.EXIT_JOB_FAILED


def wait_for_job(job: dict[str, Any], fmt: str = "table", *, quiet: bool = False) -> int:
    """Follow a job to its end with the progress view; print the result; return the exit code."""
    c = common.client()
    job_id = str(job["id"])
    progress = JobProgress(job_id=job_id, operation=str(job.get("operation", "")))
    for name in _target_names(c, job):
        progress.row(name)
    stream = sys.stderr if fmt != "table" or quiet else sys.stdout
    tty = stream.isatty()
    if not tty and fmt == "table" and not quiet:
        stream.write(f"job {job_id} {progress.operation}: following events (Ctrl-C stops watching, not the job)\n")
        stream.flush()
    try:
        follow(progress, c.stream_events(job_id), tty=tty, out=stream)
    except KeyboardInterrupt:
        click.echo(
            f"\nsmcpctl: stopped watching; job {job_id} keeps running (smcpctl job cancel {job_id} stops it)",
            err=True,
        )
        raise click.exceptions.Exit(common.EXIT_INTERRUPTED) from None
    final = c.get_job(job_id)
    progress.apply_summary(final.get("host_summary"))
    status = str(final.get("status"))
    if fmt != "table":
        common.emit(final, fmt)
    else:
        if not tty:
            for line in progress.recap_lines():
                stream.write(f"recap: {line}\n")
        reason = f" ({final['status_reason']})" if final.get("status_reason") else ""
        stream.write(
            f"job {job_id} {progress.operation}: {status}{reason}, rc={final.get('rc')}, "
            f"{_failed_text(progress)}, {progress.elapsed()} elapsed\n"
        )
        stream.flush()
    return job_exit_code(status)


def _failed_text(progress: JobProgress) -> str:
    unreachable = progress.unreachable_hosts()
    failed = [h for h in progress.failed_hosts() if h not in unreachable]
    parts = [f"failed hosts: {', '.join(failed)}"] if failed else []
    parts += [f"unreachable hosts: {', '.join(unreachable)}"] if unreachable else []
    return ", ".join(parts) or "no failed hosts"


def _target_names(c: api.SmcpClient, job: dict[str, Any]) -> list[str]:
    """Names of the job's hosts, so the progress table has a row per host from the start (best effort)."""
    try:
        hosts = c.list_hosts()
    except api.ApiError:
        return []
    ids = set(job.get("host_ids") or [])
    cluster_id = job.get("cluster_id")
    return [h["name"] for h in hosts if h["id"] in ids or (cluster_id and h.get("cluster_id") == cluster_id)]


def start_and_maybe_wait(job: dict[str, Any], fmt: str, wait: bool) -> None:
    if not wait:
        common.emit(job, fmt, JOB_DETAIL)
        return
    if fmt == "table":
        click.echo(f"job {job['id']} {job.get('operation', '')} created ({job.get('status', 'pending')})")
    raise click.exceptions.Exit(wait_for_job(job, fmt))


@click.group("job")
def job() -> None:
    """Jobs: Ansible runs of an operation on hosts or a cluster."""


@job.command("list")
@click.option("--status", type=click.Choice(["pending", "running", "successful", "failed", "canceled", "error"]))
@click.option("--cluster", "cluster_ref", help="Cluster name or id.")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@common.output_option
def job_list(status: str | None, cluster_ref: str | None, limit: int, output: str) -> None:
    """List recent jobs (newest first)."""
    cluster_id = common.find_cluster(cluster_ref)["id"] if cluster_ref else None
    common.emit(common.client().list_jobs(status=status, cluster_id=cluster_id, limit=limit), output, JOB_COLUMNS)


@common.show_command(job, "job", common.find_job)
def job_show(data: dict[str, Any]) -> None:
    """Show a job with its per-host recap."""
    common.emit(data, "table", JOB_DETAIL)
    summary = data.get("host_summary") or {}
    if summary:
        rows = [{"host": h, **v} for h, v in sorted(summary.items())]
        columns: list[common.Column] = [("HOST", "host"), *((k.upper(), k) for k in api_counters())]
        click.echo("")
        common.emit(rows, "table", columns)


def api_counters() -> tuple[str, ...]:
    return ("ok", "changed", "failed", "unreachable", "skipped")


@job.command("logs")
@click.argument("job_ref")
@click.option("-f", "--follow", "follow_", is_flag=True, help="Keep printing output until the job ends.")
def job_logs(job_ref: str, follow_: bool) -> None:
    """Print a job's Ansible output (with -f: stream it live; exit code follows the job's result)."""
    c = common.client()
    data = common.find_job(job_ref)
    job_id = str(data["id"])
    if not follow_:
        click.echo(c.job_stdout(job_id), nl=False)
        return
    try:
        for ev in c.stream_events(job_id):
            if ev.event == "end":
                break
            line = event_line(ev)
            if line is not None:
                click.echo(line)
    except KeyboardInterrupt:
        raise click.exceptions.Exit(common.EXIT_INTERRUPTED) from None
    final = c.get_job(job_id)
    click.echo(f"job {job_id}: {final.get('status')} (rc={final.get('rc')})", err=True)
    raise click.exceptions.Exit(job_exit_code(final.get("status")))


@job.command("cancel")
@click.argument("job_ref")
@common.output_option
def job_cancel(job_ref: str, output: str) -> None:
    """Cancel a pending or running job (exit 5 when it already finished)."""
    data = common.find_job(job_ref)
    result = common.client().cancel_job(str(data["id"]))
    if output != "table":
        common.emit(result or {"id": data["id"], "cancel": "requested"}, output)
    else:
        click.echo(f"job {data['id']}: cancel requested")


@job.command("wait")
@click.argument("job_ref")
@common.output_option
def job_wait(job_ref: str, output: str) -> None:
    """Follow a job with the live progress view until it ends (exit 0 successful, 1 otherwise)."""
    data = common.find_job(job_ref)
    raise click.exceptions.Exit(wait_for_job(data, output))


def select_hosts(host_refs: tuple[str, ...], all_hosts: bool, selectors: tuple[str, ...]) -> list[str]:
    """Host ids chosen by name/id, --all-hosts or label selectors (k=v, all must match)."""
    if not (host_refs or all_hosts or selectors):
        return []
    hosts = common.client().list_hosts()
    chosen: dict[str, dict[str, Any]] = {}
    for ref in host_refs:
        h = common.resolve_ref("host", ref, hosts)
        chosen[h["id"]] = h
    if all_hosts:
        chosen.update({h["id"]: h for h in hosts})
    if selectors:
        wanted = common.parse_pairs(selectors, "--selector")
        matched = [h for h in hosts if all(str((h.get("labels") or {}).get(k)) == str(v) for k, v in wanted.items())]
        if not matched:
            raise api.NotFound(f"no host has labels {wanted}", status=404)
        chosen.update({h["id"]: h for h in matched})
    if not chosen:
        raise api.NotFound("no hosts registered: add some with `smcpctl host add` or `smcpctl up --sandbox N`")
    return list(chosen)


@job.command("run")
@click.argument("operation", type=click.Choice(OPERATIONS))
@click.option("--host", "host_refs", multiple=True, help="Host name or id (repeat for several).")
@click.option("--all-hosts", is_flag=True, help="Every registered host.")
@click.option("-l", "--selector", "selectors", multiple=True, help="Hosts whose labels match KEY=VALUE.")
@click.option("--cluster", "cluster_ref", help="Cluster name or id.")
@click.option("--forks", type=click.IntRange(1, 200), help="Parallel hosts.")
@click.option("--limit", "limit_", help="Ansible --limit pattern inside the selection.")
@click.option("--batch-size", type=click.IntRange(1, 100), help="Hosts per batch (rolling operations).")
@click.option("-e", "--extra-var", "extra_vars", multiple=True, help="Extra variable KEY=VALUE (YAML value).")
@click.option("--idempotency-key", help="Retry-safe key: the same key returns the original job.")
@click.option("--wait", is_flag=True, help="Follow the job with the live progress view; exit 1 if it fails.")
@common.output_option
def job_run(
    operation: str,
    host_refs: tuple[str, ...],
    all_hosts: bool,
    selectors: tuple[str, ...],
    cluster_ref: str | None,
    forks: int | None,
    limit_: str | None,
    batch_size: int | None,
    extra_vars: tuple[str, ...],
    idempotency_key: str | None,
    wait: bool,
    output: str,
) -> None:
    """Start OPERATION (e.g. prepare_hosts) on hosts (--host/--all-hosts/-l) or a --cluster."""
    if not (host_refs or all_hosts or selectors or cluster_ref):
        raise click.UsageError("choose targets: --host NAME (repeatable), --all-hosts, -l KEY=VALUE or --cluster NAME")
    cluster_id = common.find_cluster(cluster_ref)["id"] if cluster_ref else None
    host_ids = select_hosts(host_refs, all_hosts, selectors)
    extra = common.parse_pairs(extra_vars, "--extra-var")
    params = api.present(forks=forks, limit=limit_, batch_size=batch_size, extra_vars=extra)
    created = common.client().create_job(
        operation,
        cluster_id=cluster_id,
        host_ids=host_ids or None,
        params=params or None,
        idempotency_key=idempotency_key,
    )
    start_and_maybe_wait(created, output, wait)
