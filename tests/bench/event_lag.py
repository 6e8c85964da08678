"""Event lag: how long a job event takes from the runner's event handler to an SSE client of the API.

A writer appends events through the real EventSink (the worker's path: ansible-runner's event_handler, then its
cancel_callback after each output chunk or every RUNNER_WAKE_SECONDS), in bursts like a playbook's (a task start
and a few host results, then a pause). A client reads `GET /api/v1/jobs/{id}/events/stream` and records, per
event, the wall-clock time of receipt minus the event's `created` time (same machine, same clock).

- PostgreSQL (scripts/pg.sh): the writer is one `smcp-api` process, the client reads from ANOTHER `smcp-api`
  process on the same database (the cross-replica case);
- SQLite (embedded: one process): the writer runs inside the `smcp-api` process the client reads from.

Each server runs with the default settings (no SMCP_SSE_* / SMCP_EVENT_* overrides), workers=0 (no job runs).
Prints p50/p95/max per backend and writes tests/bench/results/event_lag-<label>.json.

    .venv/bin/python tests/bench/event_lag.py --label after [--events 300] [--no-pg]
Heavy-ish (two servers, ~30 s per backend): run it under `flock /tmp/smcp-heavy.lock`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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

REPO = Path(__file__).resolve().parents[2]
from benchlib import free_port, pct, postgres  # noqa: E402  (this folder is on sys.path when run as a script)

RESULTS = Path(__file__).resolve().parent / "results"
USER_PREFIX = "smcpbench-lag"


def schedule(events: int, seed: int = 14) -> list[float]:
    """Offsets (s) of each event: bursts of 1-5 events 2 ms apart, then a 20-400 ms pause (fixed seed)."""
    rnd = random.Random(seed)
    at, out = 0.0, []
    while len(out) < events:
        for _ in range(rnd.randint(1, 5)):
            out.append(at)
            at += 0.002
        at += rnd.uniform(0.02, 0.4)
    return out[:events]


# -- the writer (runs inside an smcp-api process: `event_lag.py serve --write JOB_ID ...`)


def _emulate_runner(app: Any, job_id: str, events: int, go: Path, ready: Path) -> None:
    """The worker's event path without a playbook: EventSink + CancelCheck called as ansible-runner calls them."""
    from smcp_api.jobs import leases, runner
    from smcp_api.models import Job

    while getattr(app.state, "smcp", None) is None:
        time.sleep(0.05)
    services = app.state.smcp
    with services.sessions() as session:
        session.add(Job(id=job_id, operation="preflight", status="running"))
        session.commit()
    ready.touch()
    while not go.exists():
        time.sleep(0.01)
    sink = runner.EventSink(services, job_id, [])
    check = runner.CancelCheck(services, job_id, threading.Event(), sink)
    offsets = schedule(events)
    t0 = time.monotonic()
    i = 0
    while i < len(offsets):
        wait = t0 + offsets[i] - time.monotonic()
        if wait > 0:  # pexpect waits for output at most RUNNER_WAKE_SECONDS, then calls the cancel callback
            time.sleep(min(wait, runner.RUNNER_WAKE_SECONDS))
        if time.monotonic() >= t0 + offsets[i]:
            i += 1
            sink(
                {
                    "uuid": str(uuid.uuid4()),
                    "counter": i,
                    "event": "runner_on_ok",
                    "stdout": f"ok: [node-{i % 5}]",
                    "created": datetime.now(UTC).replace(tzinfo=None).isoformat(),
                    "event_data": {"host": f"node-{i % 5}", "task": f"task {i}", "play": "bench"},
                }
            )
        check()
    time.sleep(1.0)  # the tail: the last burst's flush is the sink's to make, not the final flush's
    sink.flush()
    leases.finish(services, job_id, "successful", None, 0, owner=None)


def serve(args: argparse.Namespace) -> None:
    import uvicorn
    from smcp_api.core.config import Settings
    from smcp_api.main import create_app

    settings = Settings(data_dir=Path(args.data_dir), db_url=args.db_url, workers=0)
    app = create_app(settings, start_worker=False)
    if args.write:
        threading.Thread(
            target=_emulate_runner,
            args=(app, args.write, args.events, Path(args.go), Path(args.ready)),
            daemon=True,
        ).start()
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


# -- the driver


@contextmanager
def server(db_url: str, data_dir: Path, jobs_dir: Path, extra: list[str]) -> Iterator[str]:
    port = free_port()
    env = {
        **os.environ,
        "SMCP_JOBS_DIR": str(jobs_dir),
        "SMCP_JOB_USER_PREFIX": USER_PREFIX,
    }
    env = {k: v for k, v in env.items() if not k.startswith(("SMCP_SSE", "SMCP_EVENT"))}
    cmd = [sys.executable, __file__, "serve", "--port", str(port), "--db-url", db_url, "--data-dir", str(data_dir)]
    proc = subprocess.Popen([*cmd, *extra], env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"server on {base} did not start")
        yield base
    finally:
        proc.terminate()
        proc.wait(30)


def read_stream(base: str, token: str, job_id: str, lags: list[float], opened: threading.Event) -> dict[str, Any]:
    end: dict[str, Any] = {}
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=60) as c:
        with c.stream("GET", f"/api/v1/jobs/{job_id}/events/stream") as r:
            r.raise_for_status()
            event, data = "", ""
            for line in r.iter_lines():
                now = time.time()
                opened.set()
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    record = json.loads(data)
                    if event == "end":
                        return record  # type: ignore[no-any-return]
                    created = datetime.fromisoformat(record["created_at"]).replace(tzinfo=UTC).timestamp()
                    lags.append(now - created)
                    event, data = "", ""
    return end


def measure(db_url: str, events: int, one_process: bool) -> dict[str, Any]:
    job_id = uuid.uuid4().hex
    with tempfile.TemporaryDirectory(prefix="smcp-lag-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)
        go, ready = root / "go", root / "ready"
        write = ["--write", job_id, "--events", str(events), "--go", str(go), "--ready", str(ready)]
        with server(db_url, root / "reader", root / "jobs", write if one_process else []) as reader:
            token = (root / "reader" / "admin.token").read_text().strip()
            writer_cm = server(db_url, root / "writer", root / "jobs", write) if not one_process else _nothing(reader)
            with writer_cm:
                for _ in range(600):
                    if ready.exists():
                        break
                    time.sleep(0.05)
                lags: list[float] = []
                opened = threading.Event()
                result: dict[str, Any] = {}
                t = threading.Thread(
                    target=lambda: result.update(read_stream(reader, token, job_id, lags, opened)), daemon=True
                )
                t.start()
                opened.wait(30)
                go.touch()
                t.join(events * 0.5 + 60)
    ms = [v * 1000 for v in lags]
    return {
        "events": len(ms),
        "end": result.get("status"),
        "p50_ms": round(pct(ms, 50), 1),
        "p95_ms": round(pct(ms, 95), 1),
        "max_ms": round(max(ms), 1),
        "mean_ms": round(statistics.fmean(ms), 1),
    }


@contextmanager
def _nothing(value: str) -> Iterator[str]:
    yield value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command")
    s = sub.add_parser("serve", help="internal: one smcp-api process (optionally with the emulated runner)")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--db-url", required=True)
    s.add_argument("--data-dir", required=True)
    s.add_argument("--write")
    s.add_argument("--events", type=int, default=300)
    s.add_argument("--go")
    s.add_argument("--ready")
    parser.add_argument("--label", default="run", help="results file suffix, e.g. before / after")
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--no-pg", action="store_true")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
        return
    report: dict[str, Any] = {
        "label": args.label,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count()},
        "git": subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
        ).stdout.strip(),
    }
    with tempfile.TemporaryDirectory() as tmp:
        report["sqlite_one_process"] = measure(f"sqlite:///{tmp}/smcp.db", args.events, one_process=True)
        print("sqlite (writer in the serving process):", report["sqlite_one_process"], flush=True)
    if not args.no_pg:
        with postgres("lag") as url:
            report["postgres_two_replicas"] = measure(url, args.events, one_process=False)
            print("postgres (writer and reader: two processes):", report["postgres_two_replicas"], flush=True)
    subprocess.run(["userdel", f"{USER_PREFIX}1"], capture_output=True, check=False)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"event_lag-{args.label}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
