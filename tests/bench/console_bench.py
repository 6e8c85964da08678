"""Benchmark of the web console's pages with a large store: 1,000 hosts and 10,000 jobs (plus 20 clusters).

The store is filled directly (rows as the API writes them), then a real `smcp-api` process (uvicorn, no job
worker) serves the console; each page is fetched `--requests` times in a row by one signed-in client (httpx with
the session cookie), in `--runs` runs. Per page and run: p50 and p95 of the render time (request sent -> whole
page received); the table shows the median over the runs of each. Writes JSON to tests/bench/results/.

Run on a quiet machine (it is heavy: take the lock):
    flock /tmp/smcp-heavy.lock .venv/bin/python tests/bench/console_bench.py [--runs 3] [--requests 30]
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
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from smcp_api.core.config import Settings
from smcp_api.main import build_services
from smcp_api.models import Cluster, Credential, Host, Job, JobEvent

REPO = Path(__file__).resolve().parents[2]
from benchlib import free_port, pct  # noqa: E402  (this folder is on sys.path when run as a script)

RESULTS = Path(__file__).resolve().parent / "results"
ENV = {
    **os.environ,
    "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
    "ANSIBLE_COLLECTIONS_PATH": str(REPO / ".venv" / "collections"),
}
STATUSES = ("successful", "successful", "successful", "failed", "canceled", "running", "pending")
OPERATIONS = ("preflight", "prepare_hosts", "certs", "etcd_backup")


def scoped(model: type, **values: Any) -> Any:
    """A row, in the `default` project when the schema has projects (issue 15)."""
    if hasattr(model, "project_id"):
        values.setdefault("project_id", "default")
    return model(**values)


def fill(settings: Settings, hosts: int, jobs: int, clusters: int) -> dict[str, str]:
    """The store with `hosts` hosts (labels, last preflight), `clusters` clusters of 3 hosts, `jobs` jobs."""
    services = build_services(settings)
    ids: dict[str, str] = {}
    now = datetime.now(UTC)
    with services.sessions() as session:
        cred = scoped(Credential, name="bench", kind="ssh_private_key", fingerprint="SHA256:x", secret=b"x")
        session.add(cred)
        session.flush()
        cluster_rows = [
            scoped(
                Cluster,
                name=f"c{i:02d}",
                kubernetes_version="1.34.4",
                cni="calico",
                pod_cidr="10.244.0.0/16",
                service_cidr="10.96.0.0/12",
                options={},
            )
            for i in range(clusters)
        ]
        session.add_all(cluster_rows)
        session.flush()
        preflight = {"status": "failed", "at": now.isoformat(), "failures": [{"id": "swap", "msg": "swap on"}]}
        host_rows = []
        for i in range(hosts):
            member = i < clusters * 3
            host_rows.append(
                scoped(
                    Host,
                    name=f"node-{i:04d}",
                    address=f"10.{i // 65536}.{i // 256 % 256}.{i % 256}",
                    ssh_user="root",
                    ssh_port=22,
                    labels={"rack": f"r{i % 10}", "env": "prod" if i % 3 else "test"},
                    credential_id=cred.id,
                    roles=["workers"],
                    vars={},
                    cluster_id=cluster_rows[i // 3].id if member else None,
                    cluster_roles=(["etcd", "control_plane"] if i % 3 == 0 else ["workers"]) if member else [],
                    last_preflight=preflight if i % 2 else None,
                )
            )
        session.add_all(host_rows)
        session.flush()
        job_rows = []
        for i in range(jobs):
            status = STATUSES[i % len(STATUSES)] if i >= jobs - 50 else STATUSES[i % 5]
            job_rows.append(
                scoped(
                    Job,
                    operation=OPERATIONS[i % len(OPERATIONS)],
                    status=status,
                    status_reason="a task failed on node-0001" if status == "failed" else None,
                    cluster_id=cluster_rows[i % clusters].id,
                    host_ids=[],
                    params={},
                    created_at=now - timedelta(seconds=jobs - i),
                    host_summary={f"node-{k:04d}": {"ok": 10, "changed": 2} for k in range(3)},
                    event_count=40,
                    task_count=20,
                )
            )
        session.add_all(job_rows)
        session.flush()
        session.add_all(
            JobEvent(job_id=job_rows[-1].id, counter=n, event="runner_on_ok", host="node-0000", stdout=f"ok: {n}")
            for n in range(1, 201)
        )
        session.commit()
        ids.update(cluster=cluster_rows[0].id, host=host_rows[1].id, job=job_rows[-1].id)
    services.engine.dispose()
    return ids


@contextmanager
def server(settings: Settings) -> Iterator[tuple[str, str]]:
    """A real smcp-api process on the filled store, no job worker: (base URL, admin token)."""
    port = free_port()
    env = {
        **ENV,
        "SMCP_WORKERS": "0",
        "SMCP_DATA_DIR": str(settings.data_dir),
        "SMCP_JOBS_DIR": str(settings.jobs_dir),
    }
    cmd = [sys.executable, "-m", "smcp_api.server", "--port", str(port), "--db-url", str(settings.db_url)]
    errors = None if os.environ.get("BENCH_DEBUG") else subprocess.DEVNULL  # BENCH_DEBUG=1: see why it fails
    proc = subprocess.Popen([*cmd, "--log-level", "warning"], env=env, stderr=errors)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("smcp-api did not start")
            time.sleep(0.2)
        yield base, settings.token_file().read_text().strip()
    finally:
        proc.terminate()
        proc.wait(30)


def pages(ids: dict[str, str]) -> dict[str, str]:
    return {
        "overview": "/console/",
        "hosts": "/console/hosts",
        "hosts page 10": "/console/hosts?page=10",
        "hosts label filter": "/console/hosts?labels=rack%3Dr3%2Cenv%3Dprod",
        "host": f"/console/hosts/{ids['host']}",
        "cluster": f"/console/clusters/{ids['cluster']}",
        "cluster + upgrade plan": f"/console/clusters/{ids['cluster']}?target=1.35.1",
        "jobs": "/console/jobs",
        "jobs page 19": "/console/jobs?page=19",
        "jobs failed": "/console/jobs?status=failed",
        "job": f"/console/jobs/{ids['job']}",
        "credentials": "/console/credentials",
    }


def measure(base: str, token: str, paths: dict[str, str], runs: int, requests: int) -> dict[str, Any]:
    cookies = {"smcp_session": f"token:{token}"}
    result: dict[str, Any] = {}
    with httpx.Client(base_url=base, cookies=cookies, timeout=60) as client:
        for name, path in paths.items():
            r = client.get(path)
            assert r.status_code == 200 and "<main" in r.text, (path, r.status_code, r.text[:500])
            per_run = []
            for _ in range(runs):
                times = []
                for _ in range(requests):
                    start = time.perf_counter()
                    r = client.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                    assert r.status_code == 200
                per_run.append({"p50_ms": round(pct(times, 50), 1), "p95_ms": round(pct(times, 95), 1)})
            result[name] = {
                "path": path,
                "bytes": len(r.content),
                "runs": per_run,
                "p50_ms_median": round(statistics.median(x["p50_ms"] for x in per_run), 1),
                "p95_ms_median": round(statistics.median(x["p95_ms"] for x in per_run), 1),
            }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--requests", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="smcp-console-bench-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # the jobs directory's parents must be searchable by the job users
        (root / "db").mkdir()
        settings = Settings(
            data_dir=root / "data",
            db_url=f"sqlite:///{root / 'db' / 'smcp.db'}",  # its directory becomes private (0700)
            collections_path=REPO / ".venv" / "collections",
            ansible_config=REPO / "ansible.cfg",
            jobs_dir=root / "jobs",
            workers=0,
        )
        started = time.perf_counter()
        ids = fill(settings, args.hosts, args.jobs, args.clusters)
        print(f"store filled in {time.perf_counter() - started:.1f} s: {args.hosts} hosts, {args.jobs} jobs")
        with server(settings) as (base, token):
            result = measure(base, token, pages(ids), args.runs, args.requests)
    print(f"\n{'page':<24} {'p50 ms':>8} {'p95 ms':>8}   p95 per run")
    for name, row in result.items():
        runs = " ".join(f"{r['p95_ms']:.1f}" for r in row["runs"])
        print(f"{name:<24} {row['p50_ms_median']:>8.1f} {row['p95_ms_median']:>8.1f}   {runs}")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"console_bench-{datetime.now(UTC):%Y%m%dT%H%M%S}.json"
    meta = {"hosts": args.hosts, "jobs": args.jobs, "runs": args.runs, "requests": args.requests}
    meta |= {"machine": platform.node(), "cpus": os.cpu_count(), "load": os.getloadavg()}
    out.write_text(json.dumps({"meta": meta, "pages": result}, indent=2))
    print(f"\nwritten: {out}")


if __name__ == "__main__":
    main()
