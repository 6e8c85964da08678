"""The ansible-runner bridge: one job = one collection playbook run in a private, removed-after data dir."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ansible_runner
from sqlalchemy import delete, insert, select, update

from smcp_api.db import session_scope
from smcp_api.jobs import inventory, sanitize
from smcp_api.jobs.service import collection_dir, playbook_for, record_outcome
from smcp_api.models import Host, Job, JobEvent, Lock, utcnow

if TYPE_CHECKING:
    from smcp_api.services import Services

log = logging.getLogger(__name__)
TASK_EVENTS = frozenset({"playbook_on_task_start"})
RUNNER_WAKE_SECONDS = 0.2


def _created(event: dict[str, Any]) -> datetime:
    try:
        return datetime.fromisoformat(event["created"]).replace(tzinfo=UTC)
    except (KeyError, TypeError, ValueError):
        return utcnow()


class EventSink:
    """Buffers runner events and persists them in batches (one INSERT per batch)."""

    def __init__(self, services: Services, job_id: str, fragments: list[str]) -> None:
        self.services = services
        self.job_id = job_id
        self.fragments = fragments
        self.buffer: list[dict[str, Any]] = []
        self.last_flush = time.monotonic()
        self.lock = threading.Lock()
        self.events = 0
        self.tasks = 0
        self.stats: dict[str, Any] | None = None
        self.failures: dict[str, list[dict[str, Any]]] = {}
        self.warnings: dict[str, list[Any]] = {}
        self.preflight: dict[str, dict[str, list[Any]]] = {}

    def __call__(self, event: dict[str, Any]) -> bool:
        data = sanitize.event_data(event, self.fragments)
        name = str(event.get("event", "unknown"))
        host = data.get("host")
        if name == "playbook_on_stats":
            self.stats = data
        elif name in ("runner_on_failed", "runner_on_unreachable") and host and not data.get("ignore_errors"):
            res = data["res"] if isinstance(data.get("res"), dict) else {}
            self.failures.setdefault(host, []).append({"task": data.get("task"), "msg": res.get("msg")})
        res = data.get("res")
        if host and isinstance(res, dict):
            if res.get("warnings"):
                self.warnings.setdefault(host, []).extend(res["warnings"])
            report = res.get("preflight")  # smcp.platform.node_preflight's structured result
            if isinstance(report, dict) and isinstance(report.get("failures"), list):
                self.preflight[host] = {
                    "failures": list(report.get("failures") or []),
                    "warnings": list(report.get("warnings") or []),
                }
        row = {
            "job_id": self.job_id,
            "counter": int(event.get("counter", 0)),
            "event": name[:64],
            "host": host,
            "task": data.get("task"),
            "play": data.get("play"),
            "stdout": sanitize.redact(str(event.get("stdout") or ""), self.fragments),
            "data": data,
            "created_at": _created(event),
        }
        with self.lock:
            self.buffer.append(row)
            self.events += 1
            self.tasks += name in TASK_EVENTS
            due = len(self.buffer) >= self.services.settings.event_batch
        if due:
            self.flush()
        return False  # the store keeps the events; ansible-runner need not write them to the artifacts dir

    def flush_if_stale(self) -> None:
        if self.buffer and time.monotonic() - self.last_flush >= self.services.settings.event_flush_seconds:
            self.flush()

    def flush(self) -> None:
        with self.lock:
            rows, self.buffer = self.buffer, []
            events, tasks = self.events, self.tasks
            self.last_flush = time.monotonic()
        if not rows:
            return
        with session_scope(self.services.sessions) as session:
            session.execute(insert(JobEvent), rows)
            session.execute(update(Job).where(Job.id == self.job_id).values(event_count=events, task_count=tasks))
        self.services.metrics.add_events(len(rows))

    def host_summary(self) -> dict[str, dict[str, int]]:
        if not self.stats:
            return {}
        keys = {"ok": "ok", "changed": "changed", "failed": "failures", "unreachable": "dark", "skipped": "skipped"}
        hosts: set[str] = set()
        for src in keys.values():
            hosts |= set(self.stats.get(src) or {})
        return {h: {k: int((self.stats.get(src) or {}).get(h, 0)) for k, src in keys.items()} for h in sorted(hosts)}


class CancelCheck:
    """ansible-runner's cancel_callback: an in-process flag, the DB flag every second, and event flushing."""

    def __init__(self, services: Services, job_id: str, flag: threading.Event, sink: EventSink) -> None:
        self.services, self.job_id, self.flag, self.sink = services, job_id, flag, sink
        self.next_db_check = 0.0

    def __call__(self) -> bool:
        self.sink.flush_if_stale()
        if self.flag.is_set():
            return True
        now = time.monotonic()
        if now >= self.next_db_check:
            self.next_db_check = now + 1.0
            with self.services.sessions() as session:
                if session.scalar(select(Job.cancel_requested).where(Job.id == self.job_id)):
                    self.flag.set()
        return self.flag.is_set()


def job_processes(job_id: str) -> list[int]:
    """Processes that carry the job's SMCP_JOB_ID in their environment (ansible-playbook and every descendant)."""
    marker = f"SMCP_JOB_ID={job_id}".encode() + b"\0"
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def kill_leftovers(job_id: str) -> int:
    """SIGKILL what a canceled run left behind: ansible's workers run in their own process groups, so
    ansible-runner's killpg of the playbook's group does not reach them."""
    pids = job_processes(job_id)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    return len(pids)


def _envvars(services: Services, private_dir: Path, job_id: str) -> dict[str, str]:
    settings = services.settings
    env = {
        "SMCP_JOB_ID": job_id,
        "ANSIBLE_COLLECTIONS_PATH": str(settings.resolved_collections_path()),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(private_dir / "facts"),
        "ANSIBLE_LOCAL_TEMP": str(private_dir / "tmp"),
    }
    cfg = settings.resolved_ansible_config()
    if cfg:
        env["ANSIBLE_CONFIG"] = str(cfg)
    return env


def _preflight_results(
    services: Services, job: Job, files: inventory.JobFiles, sink: EventSink, summary: dict[str, dict[str, int]]
) -> None:
    now = utcnow()
    with session_scope(services.sessions) as session:
        for host_id, name in files.host_names.items():
            stats = summary.get(name)
            if stats is None:
                continue  # not targeted (limit) or never reached
            report = sink.preflight.get(name)
            if stats["unreachable"]:
                status = "unreachable"
            elif report is not None:  # the module's own verdict (the run-once report task may fail on any host)
                status = "failed" if report["failures"] else "passed"
            else:
                status = "failed" if stats["failed"] else "passed"
            host = session.get(Host, host_id)
            if host is not None:
                host.last_preflight = {
                    "status": status,
                    "at": now.isoformat(),
                    "job_id": job.id,
                    "failures": report["failures"] if report else sink.failures.get(name, []),
                    "warnings": report["warnings"] if report else sink.warnings.get(name, []),
                }


def backup_dir(services: Services, cluster_name: str) -> Path:
    """Where etcd_backup jobs put a cluster's snapshots (0700), unless extra_vars.etcd_backup_dir says otherwise."""
    path = services.settings.data_dir / "backups" / "etcd" / cluster_name
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def run_job(services: Services, job_id: str, flag: threading.Event, stopping: threading.Event | None = None) -> None:
    """Run a claimed (status running) job to its end and record the outcome; never raises.

    `flag` cancels the run; when `stopping` is set too (service shutdown) the job ends failed, "interrupted".
    """
    parent = services.settings.jobs_tmp_dir
    if parent:
        parent.mkdir(parents=True, exist_ok=True)
    private_dir = Path(tempfile.mkdtemp(prefix=f"smcp-job-{job_id}-", dir=parent))  # mode 0700
    status, reason, rc = "error", None, None
    sink: EventSink | None = None
    files: inventory.JobFiles | None = None
    job: Job | None = None
    try:
        with session_scope(services.sessions) as session:
            job = session.get(Job, job_id)
            if job is None:
                return
            session.expunge(job)
            files = inventory.build(session, job, services.vault, private_dir)
        sink = EventSink(services, job_id, sanitize.secret_fragments(files.secrets))
        for sub in ("facts", "tmp"):
            (private_dir / sub).mkdir(mode=0o700, exist_ok=True)
        if job.operation == "etcd_backup" and "etcd_backup_dir" not in files.extravars:
            # snapshots outlive the job's private dir: keep them in the service's state, one dir per cluster
            name = files.inventory["all"]["vars"].get("smcp_cluster_name", "hosts")
            files.extravars["etcd_backup_dir"] = str(backup_dir(services, name))
        if not (collection_dir(services.settings) / "playbooks").is_dir():
            raise RuntimeError(
                f"collection not found at {collection_dir(services.settings)}; set SMCP_COLLECTIONS_PATH"
            )
        result = ansible_runner.run(
            private_data_dir=str(private_dir),
            playbook=playbook_for(job.operation),
            inventory=str(files.inventory_path),
            envvars=_envvars(services, private_dir, job_id),
            extravars=files.extravars or None,
            forks=int((job.params or {}).get("forks", 20)),
            limit=files.limit,
            event_handler=sink,
            cancel_callback=CancelCheck(services, job_id, flag, sink),
            quiet=True,
            suppress_env_files=True,
            # the runner loop wakes this often (default 5 s): cancel checks and stale-event flushes follow it
            settings={"pexpect_timeout": RUNNER_WAKE_SECONDS},
            rotate_artifacts=1,
        )
        rc = result.rc
        status = {"successful": "successful", "failed": "failed", "canceled": "canceled"}.get(result.status, "error")
        if result.status == "timeout":
            reason = "timed out"
        elif status == "canceled" and stopping is not None and stopping.is_set():
            status, reason = "failed", "interrupted: the API service stopped while the job ran (events are kept)"
        elif status == "canceled":
            reason = "canceled on request"
        elif status == "failed":
            reason = f"ansible-playbook exited with rc {rc}"
    except Exception as exc:
        log.exception("job %s failed to run", job_id)
        status, reason = "error", f"{type(exc).__name__}: {exc}"
        if files is not None:
            reason = sanitize.redact(reason, sanitize.secret_fragments(files.secrets))
    finally:
        summary: dict[str, dict[str, int]] = {}
        try:
            if sink is not None:
                sink.flush()
                summary = sink.host_summary()
            if job is not None and files is not None and sink is not None and job.operation == "preflight":
                _preflight_results(services, job, files, sink, summary)
        except Exception:
            log.exception("job %s: saving events failed", job_id)
            status, reason = "error", "saving events failed (see the service log)"
        finally:
            if status != "successful":
                kill_leftovers(job_id)
            shutil.rmtree(private_dir, ignore_errors=True)  # the key is gone before anyone sees the job end
            finish(services, job_id, status, reason, rc, summary)


def finish(
    services: Services,
    job_id: str,
    status: str,
    reason: str | None,
    rc: int | None,
    summary: dict[str, dict[str, int]] | None = None,
) -> None:
    """Final status + release of the job's locks, in one transaction."""
    with session_scope(services.sessions) as session:
        values: dict[str, Any] = {"status": status, "status_reason": reason, "rc": rc, "finished_at": utcnow()}
        if summary:
            values["host_summary"] = summary
        session.execute(update(Job).where(Job.id == job_id).values(**values))
        if status == "successful" and (job := session.get(Job, job_id)) is not None:
            record_outcome(session, job)
        session.execute(delete(Lock).where(Lock.job_id == job_id))


def private_dir_is_private(path: Path) -> bool:
    """True when only the owner can enter `path` (used by tests)."""
    return (os.stat(path).st_mode & 0o077) == 0
