"""Throughput of short real jobs: N preflight jobs (smcp.platform.preflight, one sandbox host each, round robin)
through one embedded `smcp-api` (SQLite, SMCP_WORKERS slots), all created at once.

Reports jobs per minute (first creation -> last finish), dispatch latency (created -> started, includes waiting
for a free slot) p50/p95, run time per job, and where the CPU went while the jobs ran: the API process itself
(HTTP, store, runner threads), its job processes (ansible-runner, launcher, ansible-playbook and its forks:
their CPU is added to the API's children times when they are reaped), the sandbox hosts (the containers'
cpuacct cgroups: sshd, the modules' Python) and everything else on the machine (other work on a shared box),
as shares of the machine's cores over the run.

Heavy (sandbox hosts, many playbooks): run it alone, under the lock, as root:
    flock /tmp/smcp-heavy.lock .venv/bin/python tests/bench/preflight_throughput.py [--jobs 200] [--hosts 3]
Results: tests/bench/results/preflight_throughput-<time>.json and a summary on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from api_bench import register, server  # this folder is on sys.path when run as a script
from benchlib import pct

RESULTS = Path(__file__).resolve().parent / "results"
MAX_JOBS = 1000
TICK = os.sysconf("SC_CLK_TCK")
FINISHED = ("successful", "failed", "canceled", "error")


def cpu_total() -> float:
    """Seconds of CPU the whole machine has spent (all cores, idle and iowait excluded)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICK


def proc_cpu(pid: int) -> tuple[float, float]:
    """(own, reaped children) CPU seconds of a process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime, cutime, cstime = (int(fields[i]) for i in (11, 12, 13, 14))
    return (utime + stime) / TICK, (cutime + cstime) / TICK


def containers_cpu(containers: list[str]) -> float:
    """CPU seconds of the sandbox hosts (cgroup v1 cpuacct; 0 where unreadable)."""
    from smcp_api.sandbox.system import podman

    total = 0.0
    for name in containers:
        cgroup = podman("inspect", "--format", "{{.State.CgroupPath}}", name).stdout.strip().lstrip("/")
        try:
            total += int((Path("/sys/fs/cgroup/cpuacct") / cgroup / "cpuacct.usage").read_text()) / 1e9
        except OSError:
            pass
    return total


def seconds(a: str, b: str) -> float:
    return (datetime.fromisoformat(b) - datetime.fromisoformat(a)).total_seconds()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200, help=f"preflight jobs (1..{MAX_JOBS}, default 200)")
    parser.add_argument("--hosts", type=int, default=3, help="sandbox hosts (default 3)")
    parser.add_argument("--slots", type=int, default=2, help="SMCP_WORKERS of the API (default 2)")
    parser.add_argument("--sandbox", default="perf14tp", help="sandbox name (yours alone; removed at the end)")
    parser.add_argument(
        "--minutes",
        type=float,
        default=30,
        help="stop waiting after this long: unfinished jobs are canceled and "
        "the figures are those of the jobs that finished (default 30)",
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a timeout still removes the sandbox (finally)
    if not 1 <= args.jobs <= MAX_JOBS:
        parser.error(f"--jobs {args.jobs}: give 1..{MAX_JOBS}")
    from smcp_api import sandbox as core

    info = core.up(args.sandbox, args.hosts)
    try:
        known = info.known_hosts.read_text().splitlines()
        hosts = [
            {
                "name": h.name,
                "address": h.ip,
                "ssh_user": info.user,
                "ssh_port": info.port,
                # Each job checks one host, so each host is a whole cluster: the cluster checks need an etcd
                # member and a control plane among the job's hosts.
                "roles": ["etcd", "control_plane", "workers"],
                "known_hosts": "\n".join(line for line in known if line.split(",")[0] == h.name),
                "vars": {"smcp_sandbox": True, "smcp_node_ip": h.ip, "ansible_python_interpreter": "/usr/bin/python3"},
            }
            for h in info.hosts
        ]
        with (
            tempfile.TemporaryDirectory() as tmp,
            server(f"sqlite:///{tmp}/smcp.db", Path(tmp) / "data", workers=args.slots) as (base, headers),
        ):
            host_ids = register(base, headers, info.key.read_text(), hosts)
            api_pid = int(next(p for p in os.listdir("/proc") if p.isdigit() and _is_api(int(p), base)))
            with httpx.Client(base_url=base, headers=headers, timeout=120) as c:
                warm = c.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": host_ids}).json()
                warmed = _wait(c, [warm["id"]], 600)
                if not warmed or warmed[0]["status"] != "successful":
                    # Failing jobs are no throughput: stop here and show why the first one failed.
                    tail = c.get(f"/api/v1/jobs/{warm['id']}/stdout").text[-3000:]
                    reason = warmed and warmed[0]["status_reason"]
                    sys.exit(f"the warm-up preflight job did not succeed ({reason}):\n{tail}")
                machine0, api0, cont0 = (
                    cpu_total(),
                    proc_cpu(api_pid),
                    containers_cpu([h.container for h in info.hosts]),
                )
                wall0 = time.monotonic()
                ids = [
                    c.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host_ids[i % len(host_ids)]]})
                    .raise_for_status()
                    .json()["id"]
                    for i in range(args.jobs)
                ]
                done = _wait(c, ids, args.minutes * 60)
                for job_id in set(ids) - {j["id"] for j in done}:
                    c.post(f"/api/v1/jobs/{job_id}/cancel")
                wall = time.monotonic() - wall0
                machine1, api1, cont1 = (
                    cpu_total(),
                    proc_cpu(api_pid),
                    containers_cpu([h.container for h in info.hosts]),
                )
    finally:
        core.down(args.sandbox)
    bad = [j for j in done if j["status"] != "successful"]
    first = min(j["created_at"] for j in done)
    last = max(j["finished_at"] for j in done)
    cores = os.cpu_count() or 1
    machine = machine1 - machine0
    api_own, jobs_cpu, hosts_cpu = api1[0] - api0[0], api1[1] - api0[1], cont1 - cont0
    result: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "jobs": args.jobs,
        "finished": len(done),
        "hosts": args.hosts,
        "slots": args.slots,
        "not_successful": len(bad),
        "jobs_per_minute": round(len(done) / seconds(first, last) * 60, 1),
        "dispatch_p50_ms": round(pct([seconds(j["created_at"], j["started_at"]) * 1000 for j in done], 50), 1),
        "dispatch_p95_ms": round(pct([seconds(j["created_at"], j["started_at"]) * 1000 for j in done], 95), 1),
        "job_runtime_median_s": round(statistics.median(seconds(j["started_at"], j["finished_at"]) for j in done), 2),
        "cpu_cores_busy": round(machine / wall, 2),
        "cpu_share_of_cores": {
            "smcp_api_process": round(api_own / wall / cores, 3),
            "job_processes_ansible": round(jobs_cpu / wall / cores, 3),
            "sandbox_hosts": round(hosts_cpu / wall / cores, 3),
            "everything_else": round(max(0.0, machine - api_own - jobs_cpu - hosts_cpu) / wall / cores, 3),
        },
        "load_after": Path("/proc/loadavg").read_text().split()[:3],
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"preflight_throughput-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    if bad:
        print(f"{len(bad)} jobs did not succeed, e.g. {bad[0]['status']}: {bad[0]['status_reason']}")
    print(f"written to {out}")


def _is_api(pid: int, base: str) -> bool:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"smcp_api.server" in cmd and base.rsplit(":", 1)[1].encode() in cmd


def _wait(c: httpx.Client, ids: list[str], timeout: float = 7200) -> list[dict[str, Any]]:
    """The jobs of `ids` that finished within `timeout` seconds (all of them, or fewer after the timeout)."""
    deadline = time.monotonic() + timeout
    wanted = set(ids)
    out: dict[str, dict[str, Any]] = {}
    while len(out) < len(ids) and time.monotonic() < deadline:
        for job in c.get("/api/v1/jobs", params={"limit": 1000}).json():
            if job["id"] in wanted and job["status"] in FINISHED:
                out[job["id"]] = job
        if len(out) < len(ids):
            time.sleep(1)
    return [out[i] for i in ids if i in out]


if __name__ == "__main__":
    main()
