"""Benchmark of the management API. Prints a table and writes JSON to tests/bench/results/.

1. job-create latency: POST /api/v1/jobs from 20 concurrent clients (httpx) against a real uvicorn on 127.0.0.1
   (no in-process worker, so only the API is measured), p50/p99, on SQLite and on PostgreSQL (scripts/pg.sh);
2. event ingest rate: synthetic ansible-runner events through the worker's EventSink (batched INSERTs), events/s
   persisted, on SQLite and PostgreSQL;
3. API overhead: smcp.platform.preflight on 2 sandbox hosts through the API (POST -> job finished) vs
   ansible-playbook run directly on the same hosts, median of 5 each, ratio.

Run as root on a quiet machine:  .venv/bin/python tests/bench/api_bench.py [--runs 5] [--skip-sandbox] [--no-pg]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from smcp_api.core.config import Settings
from smcp_api.jobs.runner import EventSink
from smcp_api.main import build_services
from smcp_api.models import Job

REPO = Path(__file__).resolve().parents[2]
from benchlib import free_port, pct, postgres  # noqa: E402  (this folder is on sys.path when run as a script)

RESULTS = Path(__file__).resolve().parent / "results"
SANDBOX = "apibench"
ENV = {
    **os.environ,
    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
}


@contextmanager
def server(db_url: str, data_dir: Path, workers: int) -> Iterator[tuple[str, dict[str, str]]]:
    """A real `smcp-api` (uvicorn) process; yields its base URL and admin headers."""
    port = free_port()
    env = {**ENV, "SMCP_WORKERS": str(workers), "SMCP_DATA_DIR": str(data_dir), "SMCP_POLL_INTERVAL": "0.1"}
    cmd = [sys.executable, "-m", "smcp_api.server", "--port", str(port), "--db-url", db_url, "--log-level", "warning"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        token = (data_dir / "admin.token").read_text().strip()
        yield base, {"Authorization": f"Bearer {token}"}
    finally:
        proc.terminate()
        proc.wait(30)


def register(base: str, headers: dict[str, str], key: str, hosts: list[dict[str, Any]]) -> list[str]:
    with httpx.Client(base_url=base, headers=headers, timeout=30) as c:
        cred = c.post("/api/v1/credentials", json={"name": "bench", "private_key": key}).json()
        return [c.post("/api/v1/hosts", json={**h, "credential_id": cred["id"]}).json()["id"] for h in hosts]


def job_create_latency(db_url: str, clients: int = 20, per_client: int = 25) -> dict[str, float]:
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    )
    with tempfile.TemporaryDirectory() as tmp, server(db_url, Path(tmp), workers=0) as (base, headers):
        host_ids = register(base, headers, key.decode(), [{"name": "lat1", "address": "192.0.2.1"}])
        latencies: list[float] = []
        lock = threading.Lock()
        barrier = threading.Barrier(clients)

        def client() -> None:
            mine = []
            with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
                barrier.wait()
                for _ in range(per_client):
                    t0 = time.perf_counter()
                    r = c.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": host_ids})
                    mine.append(time.perf_counter() - t0)
                    assert r.status_code == 202, r.text
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client) for _ in range(clients)]
        t0 = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
    ms = [v * 1000 for v in latencies]
    return {
        "requests": len(ms),
        "p50_ms": round(pct(ms, 50), 1),
        "p99_ms": round(pct(ms, 99), 1),
        "throughput_rps": round(len(ms) / wall, 1),
    }


def synthetic_event(counter: int) -> dict[str, Any]:
    return {
        "uuid": str(uuid.uuid4()),
        "counter": counter,
        "event": "runner_on_ok",
        "stdout": f"ok: [node-{counter % 20}] => (item=check {counter})",
        "created": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "event_data": {
            "host": f"node-{counter % 20}",
            "task": "Check the host against the requirements of its node roles",
            "play": "Preflight",
            "task_action": "smcp.platform.node_preflight",
            "res": {"changed": False, "msg": "node preflight: 0 failure(s), 1 warning(s)", "checks": {"a": "ok"}},
            "duration": 0.42,
        },
    }


def ingest_rate(db_url: str, events: int = 20000) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        services = build_services(Settings(data_dir=Path(tmp), db_url=db_url))
        with services.sessions() as s:
            job = Job(operation="preflight", status="running")
            s.add(job)
            s.commit()
            job_id = job.id
        sink = EventSink(services, job_id, ["-----BEGIN OPENSSH PRIVATE KEY-----\nabcdefghijklmnopqrstuvwxyz0123\n"])
        batch = [synthetic_event(n) for n in range(1, events + 1)]
        t0 = time.perf_counter()
        for ev in batch:
            sink(ev)
            sink.flush_if_stale()
        sink.flush()
        elapsed = time.perf_counter() - t0
        services.engine.dispose()
    return {"events": events, "seconds": round(elapsed, 2), "events_per_s": round(events / elapsed)}


def overhead(runs: int) -> dict[str, Any]:
    from smcp_api import sandbox as core

    info = core.up(SANDBOX, 2)
    try:
        inventory = str(info.inventory)
        direct: list[float] = []
        via_api: list[float] = []
        known = info.known_hosts.read_text().splitlines()
        hosts = [
            {
                "name": h.name,
                "address": h.ip,
                "ssh_user": info.user,
                "ssh_port": info.port,
                "roles": ["etcd", "control_plane"] if i == 0 else ["workers"],
                "known_hosts": "\n".join(line for line in known if line.split(",")[0] == h.name),
                "vars": {"smcp_sandbox": True, "smcp_node_ip": h.ip, "ansible_python_interpreter": "/usr/bin/python3"},
            }
            for i, h in enumerate(info.hosts)
        ]
        with tempfile.TemporaryDirectory() as tmp:
            db_url = f"sqlite:///{tmp}/smcp.db"
            with server(db_url, Path(tmp) / "data", workers=1) as (base, headers):
                host_ids = register(base, headers, info.key.read_text(), hosts)
                with httpx.Client(base_url=base, headers=headers, timeout=60) as c:

                    def api_run() -> float:
                        t0 = time.perf_counter()
                        job = c.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": host_ids}).json()
                        while (got := c.get(f"/api/v1/jobs/{job['id']}").json())["status"] in ("pending", "running"):
                            time.sleep(0.05)
                        assert got["status"] == "successful", got
                        return time.perf_counter() - t0

                    def direct_run() -> float:
                        t0 = time.perf_counter()
                        subprocess.run(
                            ["ansible-playbook", "-i", inventory, "smcp.platform.preflight"],
                            env=ENV,
                            check=True,
                            stdout=subprocess.DEVNULL,
                        )
                        return time.perf_counter() - t0

                    direct_run(), api_run()  # warm-up: ssh masters, caches
                    for _ in range(runs):
                        direct.append(direct_run())
                        via_api.append(api_run())
        d, a = statistics.median(direct), statistics.median(via_api)
        return {
            "runs": runs,
            "direct_median_s": round(d, 2),
            "api_median_s": round(a, 2),
            "ratio": round(a / d, 3),
            "direct_s": [round(v, 2) for v in direct],
            "api_s": [round(v, 2) for v in via_api],
        }
    finally:
        core.down(SANDBOX)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skip-sandbox", action="store_true", help="skip the overhead part (no sandbox hosts)")
    parser.add_argument("--no-pg", action="store_true", help="SQLite only")
    args = parser.parse_args()
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version()}}
    with tempfile.TemporaryDirectory() as tmp:
        results["job_create_sqlite"] = job_create_latency(f"sqlite:///{tmp}/lat.db")
        results["ingest_sqlite"] = ingest_rate(f"sqlite:///{tmp}/ingest.db")
    if not args.no_pg:
        with postgres("bench") as url:
            results["job_create_postgres"] = job_create_latency(url)
            results["ingest_postgres"] = ingest_rate(url)
    if not args.skip_sandbox:
        results["overhead_preflight_2_hosts"] = overhead(args.runs)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"api_bench-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    for name, value in results.items():
        print(f"{name:28} {json.dumps(value)}")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
