"""Benchmark of job dispatch: the embedded default against RabbitMQ + smcp-worker processes.

Every configuration runs real processes on one database (SQLite by default, --pg for a throwaway PostgreSQL):
- `embedded-N`: one `smcp-api` with N in-process slots (SMCP_WORKERS=N), no broker;
- `broker-PxS`: one `smcp-api` with SMCP_BROKER_URL (runs no job) and P `smcp-worker` processes of S slots,
  on a RabbitMQ node of its own (tests/api/rabbitmq.py: Debian's rabbitmq-server in a temp dir).
The jobs are the local stand-in playbook of the API tests (`preflight`, three tasks on localhost), so the
figures measure dispatch and the job machinery, not managed hosts.

Per configuration:
1. burst: --jobs jobs created at once (one client); jobs per minute from the first creation to the last
   finish, and dispatch latency (created_at -> started_at, from the store) p50/p95 (includes waiting for a
   free slot);
2. idle: --idle jobs one after another, each created when every slot is free; dispatch latency p50/p95
   (created_at -> started_at, the claim); created_at -> ansible-playbook spawned (the launcher's mark:
   smcp's whole part, from the processes' smcp_job_start_seconds{until="playbook_spawned"} histograms, so
   p50/p95 are interpolated within buckets like PromQL's histogram_quantile) and created_at -> the
   playbook_on_start event (Ansible's clock: ansible-playbook's own start-up included).

Run as root (jobs run as job users):  .venv/bin/python tests/bench/dispatch_bench.py [--jobs 24] [--idle 10] [--pg]
Results: tests/bench/results/dispatch.json and a table on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import pwd
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from smcp_api.jobs import isolation

REPO = Path(__file__).resolve().parents[2]
from benchlib import hist_quantile, histogram, pct, postgres  # noqa: E402  (this folder is on sys.path when run as a script)

sys.path.insert(0, str(REPO))
from tests.api.conftest import PLAYBOOKS  # noqa: E402
from tests.api.rabbitmq import free_port, rabbitmq_node  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
BIN = Path(sys.executable).parent
USERS = f"smcpb{os.getpid() % 100000}-"
FINISHED = ("successful", "failed", "canceled", "error")


def reachable(parent: Path, name: str) -> Path:
    path = parent / name
    path.mkdir(mode=0o711)
    path.chmod(0o711)
    return path


def fake_collections(root: Path) -> Path:
    coll = root / "collections" / "ansible_collections" / "smcp" / "platform"
    (coll / "playbooks").mkdir(parents=True)
    (coll / "playbooks" / "preflight.yml").write_text("---" + PLAYBOOKS["preflight"])
    (coll / "roles").symlink_to(REPO / "roles")
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    for d in (root / "collections", *(root / "collections").rglob("*")):
        if d.is_dir():
            d.chmod(0o755)
    return root / "collections"


def pg_database(server_url: str) -> str:
    import psycopg

    name = f"smcp_b_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return f"{server_url.rsplit('/', 1)[0]}/{name}"


class Stack:
    """One configuration's processes on a fresh database and data dir."""

    def __init__(self, root: Path, db_url: str, collections: Path, broker_url: str) -> None:
        self.root = root
        self.data = root / "data"
        self.db_url = db_url
        self.base_env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SMCP_")},
            "SMCP_DATA_DIR": str(self.data),
            "SMCP_DB_URL": db_url,
            "SMCP_COLLECTIONS_PATH": str(collections),
            "SMCP_ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "SMCP_HOST_KEY_SCAN_TIMEOUT": "1",
            "SMCP_BROKER_URL": broker_url,
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.n = 0
        self.metrics: list[tuple[str, dict[str, str]]] = []  # every process's /metrics (URL, headers)

    def _env(self, slots: int) -> dict[str, str]:
        self.n += 1
        return {
            **self.base_env,
            "SMCP_WORKERS": str(slots),
            "SMCP_JOBS_DIR": str(reachable(self.root, f"jobs{self.n}") / "j"),
            "SMCP_JOB_USER_PREFIX": f"{USERS}{self.n}-",
        }

    def api(self, slots: int) -> tuple[str, dict[str, str]]:
        port = free_port()
        cmd = [str(BIN / "smcp-api"), "--port", str(port), "--log-level", "warning"]
        log = (self.root / "api.log").open("wb")
        self.procs.append(subprocess.Popen(cmd, env=self._env(slots), stdout=log, stderr=subprocess.STDOUT))
        base = f"http://127.0.0.1:{port}"
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = (self.data / "admin.token").read_text().strip()
        headers = {"Authorization": f"Bearer {token}"}
        self.metrics.append((base + "/metrics", headers))
        return base, headers

    def worker(self, slots: int) -> None:
        log = (self.root / f"worker{self.n}.log").open("wb")
        port = free_port()
        cmd = [str(BIN / "smcp-worker"), "--log-level", "warning", "--metrics-port", str(port)]
        self.procs.append(subprocess.Popen(cmd, env=self._env(slots), stdout=log, stderr=subprocess.STDOUT))
        self.metrics.append((f"http://127.0.0.1:{port}/metrics", {}))

    def job_start(self) -> dict[float, float]:
        """smcp_job_start_seconds{until="playbook_spawned"} summed over every process (cumulative buckets)."""
        total: dict[float, float] = {}
        for url, headers in self.metrics:
            text = httpx.get(url, headers=headers, timeout=30).text
            for le, n in histogram(text, "smcp_job_start_seconds", 'until="playbook_spawned"').items():
                total[le] = total.get(le, 0.0) + n
        return total

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()


def wait_all(c: httpx.Client, ids: list[str], timeout: float = 1800) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    left = set(ids)
    out: dict[str, dict[str, Any]] = {}
    while left:
        for job_id in list(left):
            job = c.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] in FINISHED:
                out[job_id] = job
                left.discard(job_id)
        if left:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(left)} jobs not finished after {timeout} s")
            time.sleep(0.2)
    return [out[i] for i in ids]


def seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def measure(c: httpx.Client, host_id: str, jobs: int, idle: int, stack: Stack) -> dict[str, Any]:
    body = {"operation": "preflight", "host_ids": [host_id]}
    # warm-up: one job (imports, first connection to the broker, job users created)
    wait_all(c, [c.post("/api/v1/jobs", json=body).json()["id"]], timeout=300)
    ids = [c.post("/api/v1/jobs", json=body).json()["id"] for _ in range(jobs)]
    done = wait_all(c, ids)
    bad = [j for j in done if j["status"] != "successful"]
    if bad:
        raise RuntimeError(f"{len(bad)} burst jobs did not succeed, e.g. {bad[0]['status']}: {bad[0]['status_reason']}")
    first = min(j["created_at"] for j in done)
    last = max(j["finished_at"] for j in done)
    burst = [seconds(j["created_at"], j["started_at"]) * 1000 for j in done]
    runtime = [seconds(j["started_at"], j["finished_at"]) for j in done]
    idle_ms, playbook_ms = [], []
    spawn_before = stack.job_start()
    for _ in range(idle):
        job = wait_all(c, [c.post("/api/v1/jobs", json=body).json()["id"]], timeout=300)[0]
        if job["status"] != "successful":
            tail = c.get(f"/api/v1/jobs/{job['id']}/stdout").text[-1500:]
            raise RuntimeError(f"idle job {job['status']}: {job['status_reason']}\n{tail}")
        idle_ms.append(seconds(job["created_at"], job["started_at"]) * 1000)
        events = c.get(f"/api/v1/jobs/{job['id']}/events", params={"limit": 5}).json()
        start = next(e for e in events if e["event"] == "playbook_on_start")
        playbook_ms.append(seconds(job["created_at"], start["created_at"]) * 1000)
    spawn_after = stack.job_start()
    spawn = {le: n - spawn_before.get(le, 0.0) for le, n in spawn_after.items()}
    return {
        "jobs": jobs,
        "jobs_per_minute": round(jobs / seconds(first, last) * 60, 1),
        "burst_dispatch_p50_ms": round(pct(burst, 50), 1),
        "burst_dispatch_p95_ms": round(pct(burst, 95), 1),
        "job_runtime_median_s": round(statistics.median(runtime), 2),
        "idle_jobs": idle,
        "idle_dispatch_p50_ms": round(pct(idle_ms, 50), 1),
        "idle_dispatch_p95_ms": round(pct(idle_ms, 95), 1),
        "idle_to_spawn_p50_ms": round(hist_quantile(spawn, 0.5) * 1000, 1),
        "idle_to_spawn_p95_ms": round(hist_quantile(spawn, 0.95) * 1000, 1),
        "idle_spawned_within_100ms": round(spawn.get(0.1, 0.0) / max(1.0, spawn.get(float("inf"), 0.0)), 2),
        "idle_to_playbook_start_p50_ms": round(pct(playbook_ms, 50), 1),
        "idle_to_playbook_start_p95_ms": round(pct(playbook_ms, 95), 1),
    }


def run_config(name: str, db_url: str, collections: Path, broker_url: str, plan: dict[str, int], args: Any) -> Any:
    root = Path(tempfile.mkdtemp(prefix="smcpb-", dir="/tmp"))
    root.chmod(0o711)
    stack = Stack(root, db_url, collections, broker_url if plan["processes"] else "")
    try:
        base, headers = stack.api(plan["api_slots"])
        for _ in range(plan["processes"]):
            stack.worker(plan["slots"])
        key = ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
            cred = c.post("/api/v1/credentials", json={"name": "bench", "private_key": key.decode()}).json()
            host = c.post("/api/v1/hosts", json={"name": "local0", "address": "127.0.0.1", "credential_id": cred["id"]})
            result = measure(c, host.json()["id"], args.jobs, args.idle, stack)
        result.update(plan)
        print(f"{name:14} {json.dumps(result)}", flush=True)
        return result
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)


def remove_users() -> None:
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(USERS):
            isolation.kill_user_processes({entry.pw_uid})
            subprocess.run(["userdel", entry.pw_name], capture_output=True, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=24, help="burst jobs per configuration (default 24)")
    parser.add_argument("--idle", type=int, default=10, help="one-at-a-time jobs per configuration (default 10)")
    parser.add_argument("--pg", action="store_true", help="PostgreSQL (scripts/pg.sh) instead of SQLite")
    parser.add_argument("--slots", type=int, nargs="+", default=[1, 2, 3], help="slot counts (default 1 2 3)")
    args = parser.parse_args()
    configs: dict[str, dict[str, int]] = {}
    for n in args.slots:
        configs[f"embedded-{n}"] = {"api_slots": n, "processes": 0, "slots": 0}
        configs[f"broker-{n}x1"] = {"api_slots": 1, "processes": n, "slots": 1}
    configs[f"broker-1x{max(args.slots)}"] = {"api_slots": 1, "processes": 1, "slots": max(args.slots)}
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        node = stack.enter_context(rabbitmq_node())
        pg = stack.enter_context(postgres("bench")) if args.pg else None
        tmp = Path(tempfile.mkdtemp(prefix="smcpb-coll-", dir="/tmp"))
        tmp.chmod(0o711)
        stack.callback(shutil.rmtree, tmp, True)
        stack.callback(remove_users)
        collections = fake_collections(tmp)
        for name, plan in configs.items():
            if pg:
                db_url = pg_database(pg)
            else:
                db_dir = Path(tempfile.mkdtemp(prefix="smcpb-db-", dir="/tmp"))
                stack.callback(shutil.rmtree, db_dir, True)
                db_url = f"sqlite:///{db_dir / 'smcp.db'}"
            results[name] = run_config(name, db_url, collections, node.url, plan, args)
    out = {
        "what": "dispatch: embedded in-process worker vs RabbitMQ + smcp-worker processes (stand-in preflight jobs)",
        "database": "postgresql" if args.pg else "sqlite",
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "results": results,
    }
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"dispatch{'-pg' if args.pg else ''}.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    head = ("config", "jobs/min", "burst p50", "burst p95", "idle p50", "idle p95", "spawn p50", "spawn p95")
    head += ("pb p50", "pb p95")
    print("\n{:14} {:>9} {:>10} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}   (latencies in ms)".format(*head))
    keys = ("jobs_per_minute", "burst_dispatch_p50_ms", "burst_dispatch_p95_ms", "idle_dispatch_p50_ms")
    keys += ("idle_dispatch_p95_ms", "idle_to_spawn_p50_ms", "idle_to_spawn_p95_ms")
    keys += ("idle_to_playbook_start_p50_ms", "idle_to_playbook_start_p95_ms")
    row = "{:14} {:9.1f} {:10.1f} {:10.1f} {:9.1f} {:9.1f} {:9.1f} {:9.1f} {:9.1f} {:9.1f}"
    for name, r in results.items():
        print(row.format(name, *(r[k] for k in keys)))
    print(f"written to {path}")


if __name__ == "__main__":
    main()
