"""The ansible-runner bridge: one job = one collection playbook run in a private, removed-after data dir."""

from __future__ import annotations

import json
import logging
import os
import shlex
import stat
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ansible_runner
from sqlalchemy import insert, select, update

from smcp_api import artifacts, hostkey_service, hostkeys
from smcp_api import events as events_hub
from smcp_api.db import session_scope
from smcp_api.jobs import inventory, isolation, leases, sanitize
from smcp_api.jobs.launch import SPAWNED_FILE
from smcp_api.jobs.service import collection_dir, playbook_for
from smcp_api.jobstates import CANCELED_ON_REQUEST, INTERRUPTED, TIMED_OUT
from smcp_api.models import Host, Job, JobEvent, utcnow
from smcp_api.security import write_private_file

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
    """Buffers runner events and persists them in batches (one INSERT per batch).

    A batch is committed when it holds `event_batch` events or when its first event is `event_flush_seconds`
    old (a timer: the runner may call nothing for a while after a burst), whichever comes first; one commit at a
    time, in order (a stream reading "counter > N" never skips an event). After the commit the job's SSE streams
    wake (events.py: the PostgreSQL trigger notifies every replica; on SQLite this process's streams).
    """

    def __init__(self, services: Services, job_id: str, fragments: list[str]) -> None:
        self.services = services
        self.job_id = job_id
        self.fragments = fragments
        self.buffer: list[dict[str, Any]] = []
        self.first_buffered = 0.0  # monotonic time of the oldest unsaved event
        self.lock = threading.Lock()
        self.flush_lock = threading.Lock()  # one commit at a time, in event order
        self.timer: threading.Timer | None = None
        self.events = 0
        self.tasks = 0
        self.stats: dict[str, Any] | None = None
        self.failures: dict[str, list[dict[str, Any]]] = {}
        self.warnings: dict[str, list[Any]] = {}
        self.preflight: dict[str, dict[str, list[Any]]] = {}
        self.playbook_started: datetime | None = None  # the first playbook_on_start's `created`

    def __call__(self, event: dict[str, Any]) -> bool:
        data = sanitize.event_data(event, self.fragments)
        name = str(event.get("event", "unknown"))
        host = data.get("host")
        if name == "playbook_on_stats":
            self.stats = data
        elif name == "playbook_on_start" and self.playbook_started is None:
            self.playbook_started = _created(event)
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
            if not self.buffer:
                self.first_buffered = time.monotonic()
                self._arm_timer()
            self.buffer.append(row)
            self.events += 1
            self.tasks += name in TASK_EVENTS
            due = len(self.buffer) >= self.services.settings.event_batch
        if due:
            self.flush()
        return False  # the store keeps the events; ansible-runner need not write them to the artifacts dir

    def _arm_timer(self) -> None:
        """(Under self.lock, the buffer just became non-empty.) Flush when its first event is due."""
        self.timer = threading.Timer(self.services.settings.event_flush_seconds, self._timed_flush)
        self.timer.daemon = True
        self.timer.start()

    def _timed_flush(self) -> None:
        try:
            self.flush()
        except Exception:  # the events stay buffered: the next flush (at the latest the job's last) retries
            log.exception("job %s: saving events failed; retried with the next batch", self.job_id)

    def flush_if_stale(self) -> None:
        """The runner's periodic call: a safety net beside the timer."""
        stale = time.monotonic() - self.first_buffered >= self.services.settings.event_flush_seconds
        if self.buffer and stale:
            self.flush()

    def flush(self) -> None:
        with self.flush_lock:
            with self.lock:
                rows, self.buffer = self.buffer, []
                events, tasks = self.events, self.tasks
                if self.timer is not None:
                    self.timer.cancel()
                    self.timer = None
            if not rows:
                return
            try:
                with session_scope(self.services.sessions) as session:
                    session.execute(insert(JobEvent), rows)
                    session.execute(
                        update(Job).where(Job.id == self.job_id).values(event_count=events, task_count=tasks)
                    )
            except BaseException:
                with self.lock:  # keep them, in order, for the next flush (the runner's next call, the last one)
                    self.buffer[:0] = rows
                raise
        events_hub.job_changed(self.services, self.job_id)
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


def _envvars(services: Services, private_dir: Path, job_id: str) -> dict[str, str]:
    """Ansible's settings for the job; the launcher keeps these and drops the rest of the service's environment."""
    settings = services.settings
    env = {
        "SMCP_JOB_ID": job_id,
        "ANSIBLE_COLLECTIONS_PATH": str(settings.resolved_collections_path()),
        "ANSIBLE_HOME": str(private_dir / ".ansible"),
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_RETRY_FILES_ENABLED": "0",
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(private_dir / "cp"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(private_dir / "facts"),
        "ANSIBLE_LOCAL_TEMP": str(private_dir / "tmp"),
    }
    cfg = settings.resolved_ansible_config()
    if cfg:
        env["ANSIBLE_CONFIG"] = str(cfg)
    return env


def _launch_spec(private_dir: Path, user: isolation.JobUser, fifos: list[Path]) -> dict[str, Any]:
    return {
        "uid": user.uid,
        "gid": user.gid,
        "home": str(private_dir),
        "agent_socket": str(private_dir / "agent.sock"),
        "key_fifos": [str(f) for f in fifos],
        "env": {
            "HOME": str(private_dir),
            "TMPDIR": str(private_dir / "tmp"),
            "USER": user.name,
            "LOGNAME": user.name,
            "PATH": f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin",
        },
    }


def _first_contact(services: Services, hosts: dict[str, tuple[str, str, int]], files: inventory.JobFiles) -> None:
    """Hosts without a pinned key: scan them now, pin what they offer (trust on first use), note failures."""
    todo = {hid: spec for hid, spec in hosts.items() if spec[0] not in files.pinned}
    if not todo:
        return

    def scan(item: tuple[str, tuple[str, str, int]]) -> tuple[str, list[str] | str]:
        host_id, (_, address, port) = item
        try:
            return host_id, hostkeys.scan(address, port, timeout=services.settings.host_key_scan_timeout)
        except (hostkeys.ScanError, hostkeys.HostKeyError) as exc:
            return host_id, str(exc)

    with ThreadPoolExecutor(max_workers=min(16, len(todo))) as pool:
        results = list(pool.map(scan, todo.items()))
    for host_id, found in results:
        name = todo[host_id][0]
        if isinstance(found, str):
            log.warning("job: first contact with %s failed: %s", name, found)
            continue
        with services.sessions() as session:
            hostkey_service.record_first_contact(session, host_id, found)
            pinned = session.scalar(select(Host.known_hosts).where(Host.id == host_id))
        if pinned:
            files.pinned[name] = pinned


def _key_changes(
    services: Services, files: inventory.JobFiles, sink: EventSink, hosts: dict[str, tuple[str, str, int]]
) -> list[str]:
    """Unreachable hosts whose offered key is not the pinned one: name both fingerprints and the fix."""
    messages = []
    for _, (name, address, port) in hosts.items():
        said = " ".join(str(f.get("msg") or "") for f in sink.failures.get(name, []))
        if "Host key verification failed" not in said and "IDENTIFICATION HAS CHANGED" not in said:
            continue
        try:
            scanned = hostkeys.scan(address, port, timeout=services.settings.host_key_scan_timeout)
            offered = hostkeys.fingerprints("\n".join(scanned))
        except (hostkeys.ScanError, hostkeys.HostKeyError):
            offered = []
        pinned = hostkeys.fingerprints(files.pinned.get(name))
        if offered and set(offered) == set(pinned):
            continue
        message = hostkeys.changed_message(name, pinned, offered)
        sink.failures.setdefault(name, []).append({"task": "SSH host key check", "msg": message})
        messages.append(message)
    return messages


def _no_host_reached(files: inventory.JobFiles, limit: str | None) -> str:
    names = sorted(files.host_names.values())
    why = []
    if files.roleless:
        why.append(
            f"{', '.join(sorted(files.roleless))} have no roles (the playbooks target the groups etcd, "
            "control_plane and workers: give each host its roles)"
        )
    if limit:
        why.append(f"the limit '{limit}' matched none of them")
    return f"the job reached no host: of {', '.join(names)}, " + ("; ".join(why) or "none was targeted by the playbook")


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


SNAPSHOT_OPERATIONS = ("etcd_backup", "upgrade")
"""Operations whose playbook fetches an etcd snapshot to the controller (etcd_backup_dir, refused from users;
the role's default, under the working directory, is not the job's to write)."""


def legacy_cluster_dir(services: Services, cluster_name: str) -> Path:
    """Where a cluster's admin kubeconfig and CA were kept before the store held them (read once, then stored)."""
    return services.settings.data_dir / "clusters" / cluster_name


CLUSTER_FILES = ("admin.conf", "ca.crt")
"""What the control_plane role writes next to the operator kubeconfig and later jobs read (ca.crt: the
cluster CA the node role's API checks verify with)."""


def _seed(services: Services, private_dir_: Path, cluster_name: str | None) -> None:
    """Give the job its cluster's admin kubeconfig and CA where the roles look for them (~/.smcp/clusters/NAME).

    They come from the store (artifacts.py: any replica's jobs made them; sha256 checked, decrypted); a copy left
    in the data dir by an older version is moved into the store on first use.
    """
    if not cluster_name:
        return
    for name in CLUSTER_FILES:
        row = artifacts.find(services, cluster_name, artifacts.CLUSTER_FILE, name)
        if row is None:
            legacy = legacy_cluster_dir(services, cluster_name) / name
            if not legacy.is_file() or legacy.is_symlink():
                continue
            artifacts.store_file(services, legacy, cluster=cluster_name, kind=artifacts.CLUSTER_FILE)
            row = artifacts.find(services, cluster_name, artifacts.CLUSTER_FILE, name)
            assert row is not None
        dest = private_dir_ / ".smcp" / "clusters" / cluster_name / name
        dest.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_private_file(dest, artifacts.read_bytes(services, row))


def _harvest(
    services: Services, private_dir_: Path, cluster_name: str | None, backups: Path | None, job_id: str | None = None
) -> None:
    """Keep what outlives the job in the store, where every replica reads it: the cluster's admin kubeconfig and
    CA (encrypted) and etcd snapshots (with their .sha256 files). Raises ArtifactTooLarge above the limit."""
    if not cluster_name:
        return
    for name in CLUSTER_FILES:
        made = private_dir_ / ".smcp" / "clusters" / cluster_name / name
        if made.is_file() and not made.is_symlink():
            artifacts.store_file(services, made, cluster=cluster_name, kind=artifacts.CLUSTER_FILE, job_id=job_id)
    if backups is not None and backups.is_dir():
        for item in sorted(backups.iterdir()):
            if item.is_file() and not item.is_symlink():
                artifacts.store_file(services, item, cluster=cluster_name, kind=artifacts.ETCD_SNAPSHOT, job_id=job_id)


def _observe_start(services: Services, job: Job, job_dir: Path, sink: EventSink) -> None:
    """smcp_job_start_seconds: the job's creation until its ansible-playbook was spawned (the launcher's mark in
    the job directory, written by a job-user process: read bounded, and only a plausible time counts) and until
    Ansible's playbook_on_start."""
    created = job.created_at
    now = utcnow()
    try:  # a regular file only (not a symlink, not a FIFO that would block this thread), 32 bytes at most
        fd = os.open(job_dir / SPAWNED_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise ValueError("not a regular file")
            mark = float(os.read(fd, 32).decode("ascii"))
        finally:
            os.close(fd)
        spawned = datetime.fromtimestamp(mark, UTC)
    except (OSError, ValueError, OverflowError):
        spawned = None
    for until, at in (("playbook_spawned", spawned), ("playbook_on_start", sink.playbook_started)):
        if at is not None and created - timedelta(seconds=60) <= at <= now:
            services.metrics.observe_job_start(until, (at - created).total_seconds())


def run_job(
    services: Services,
    job_id: str,
    flag: threading.Event,
    stopping: threading.Event | None = None,
    owner: str | None = None,
) -> None:
    """Run a job claimed by `owner` (default: this process's worker id) to its end and record the outcome
    (only while `owner` still holds its lease); never raises.

    The playbook runs as a job user of its own in a private directory (jobs/isolation.py), started by
    jobs/launch.py. `flag` cancels the run; when `stopping` is set too (service shutdown) the job ends failed.
    """
    status, reason, rc = "error", None, None
    sink: EventSink | None = None
    files: inventory.JobFiles | None = None
    job: Job | None = None
    user: isolation.JobUser | None = None
    job_dir: Path | None = None
    cluster_name: str | None = None
    backups: Path | None = None
    hosts: dict[str, tuple[str, str, int]] = {}
    try:
        jobs = services.isolation()
        user = jobs.pool.acquire()
        job_dir = isolation.make_job_dir(jobs.root, job_id, user)
        with session_scope(services.sessions) as session:
            job = session.get(Job, job_id)
            if job is None:
                return
            session.expunge(job)
            files = inventory.build(session, job, services.vault, job_dir, collection_dir(services.settings))
            hosts = {
                h.id: (h.name, h.address, h.ssh_port)
                for h in (session.get(Host, i) for i in files.host_names)
                if h is not None
            }
        sink = EventSink(services, job_id, sanitize.secret_fragments(files.secrets))
        if not (collection_dir(services.settings) / "playbooks").is_dir():
            raise RuntimeError(
                f"collection not found at {collection_dir(services.settings)}; set SMCP_COLLECTIONS_PATH"
            )
        _first_contact(services, hosts, files)
        inventory.write_known_hosts(job_dir, files.pinned)
        if job.cluster_id:
            cluster_name = str(files.inventory["all"]["vars"].get("smcp_cluster_name") or "") or None
            _seed(services, job_dir, cluster_name)
        if job.operation in SNAPSHOT_OPERATIONS and "etcd_backup_dir" not in files.extravars:
            backups = job_dir / "out" / "backups"  # kept by _harvest in the service's backup dir
            backups.mkdir(mode=0o700, parents=True)
            files.extravars["etcd_backup_dir"] = str(backups)
        extravars = job_dir / "inventory" / "extravars.yml"
        extravars.write_text(inventory.dump_unsafe(files.extravars))
        fifos = [job_dir / "keys" / f"{cred}.key" for cred in files.keys]
        spec = job_dir / "launch.json"
        spec.write_text(json.dumps(_launch_spec(job_dir, user, fifos)))
        command = [sys.executable, "-m", "smcp_api.jobs.launch", "run", str(spec), "--"]
        command += [str(Path(sys.executable).parent / "ansible-playbook"), "-i", str(files.inventory_path)]
        command += ["-e", f"@{extravars}", "--forks", str(int((job.params or {}).get("forks", 20)))]
        if files.limit:
            command += ["--limit", files.limit]
        command.append(playbook_for(job.operation))
        (job_dir / "args").write_text(shlex.join(command))
        isolation.give(job_dir, user)
        for fifo, key in zip(fifos, files.keys.values(), strict=True):
            isolation.feed_fifo(fifo, key.encode(), user)
        result = ansible_runner.run(
            private_data_dir=str(job_dir),
            ident=job_id,
            envvars=_envvars(services, job_dir, job_id),
            event_handler=sink,
            cancel_callback=CancelCheck(services, job_id, flag, sink),
            quiet=True,
            suppress_env_files=True,
            # the runner loop wakes this often (default 5 s): cancel checks and stale-event flushes follow it
            settings={"pexpect_timeout": RUNNER_WAKE_SECONDS},
        )
        rc = result.rc
        _observe_start(services, job, job_dir, sink)
        status = {"successful": "successful", "failed": "failed", "canceled": "canceled"}.get(result.status, "error")
        if result.status == "timeout":
            reason = TIMED_OUT
        elif status == "canceled" and stopping is not None and stopping.is_set():
            status, reason = "failed", INTERRUPTED
        elif status == "canceled":
            reason = CANCELED_ON_REQUEST
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
                changed_keys = _key_changes(services, files, sink, hosts) if files is not None else []
                sink.flush()
                summary = sink.host_summary()
                if changed_keys:
                    reason = "; ".join(changed_keys)
                elif status == "successful" and files is not None and not summary:
                    status, reason = "failed", _no_host_reached(files, files.limit)
            if job is not None and files is not None and sink is not None and job.operation == "preflight":
                _preflight_results(services, job, files, sink, summary)
            if status == "successful" and job_dir is not None:
                try:
                    _harvest(services, job_dir, cluster_name, backups, job_id)
                except artifacts.ArtifactTooLarge as exc:
                    status, reason = "failed", str(exc)
        except Exception:
            log.exception("job %s: saving events failed", job_id)
            status, reason = "error", "saving events failed (see the service log)"
        finally:
            if user is not None:
                isolation.kill_user_processes({user.uid})
            if job_dir is not None:
                isolation.remove_job_dir(job_dir)  # no key material outlives the job (the keys never were files)
            if user is not None:
                services.isolation().pool.release(user)
            leases.finish(services, job_id, status, reason, rc, summary, owner=owner or services.worker_id)
