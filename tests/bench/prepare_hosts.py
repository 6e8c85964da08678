"""Benchmark: wall time of `prepare_hosts` (optionally followed by the etcd playbook) on fresh sandbox
hosts, first run and re-run, apt cache warm; median over runs; tasks run per host. Prints a table and
writes JSON to tests/bench/results/.

Run as root:  .venv/bin/python tests/bench/prepare_hosts.py [--sizes 5,20] [--runs 3] [--runs-20 1] [--with-etcd]
Every run uses a fresh sandbox (hp<size>), its own fact cache and SSH control sockets; forks = hosts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from smcp_api import sandbox as sb

ROOT = Path(__file__).resolve().parents[2]
RESULTS = Path(__file__).resolve().parent / "results"


def _playbook(with_etcd: bool, workdir: Path) -> str:
    if not with_etcd:
        return "smcp.platform.prepare_hosts"
    path = workdir / "prepare_hosts_etcd.yml"
    path.write_text(
        "---\n"
        "- name: Prepare hosts\n  ansible.builtin.import_playbook: smcp.platform.prepare_hosts\n"
        "- name: Etcd\n  ansible.builtin.import_playbook: smcp.platform.etcd\n"
    )
    return str(path)


def _run_playbook(inventory: Path, playbook: str, forks: int, workdir: Path) -> dict[str, object]:
    """One ansible-playbook run; wall seconds and the per-host recap from the json callback."""
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".venv" / "collections"),
        ANSIBLE_HOME=str(ROOT / ".ansible"),
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CACHE_PLUGIN_CONNECTION=str(workdir / "facts"),
        ANSIBLE_SSH_CONTROL_PATH_DIR=str(workdir / "cp"),
        ANSIBLE_FORCE_COLOR="0",
    )
    t0 = time.monotonic()
    proc = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "ansible-playbook"), "-i", str(inventory), "-f", str(forks), playbook],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    seconds = time.monotonic() - t0
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        report = {"stats": {}}
    stats: dict[str, dict[str, int]] = report.get("stats", {})
    if proc.returncode != 0:
        tail = f"{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
        raise SystemExit(f"ansible-playbook failed (rc {proc.returncode}):\n{tail}")
    ran = [s["ok"] + s["changed"] + s["failures"] for s in stats.values()]
    changed = [s["changed"] for s in stats.values()]
    skipped = [s["skipped"] for s in stats.values()]
    return {
        "seconds": round(seconds, 2),
        "tasks_per_host_median": statistics.median(ran) if ran else 0,
        "tasks_per_host_max": max(ran, default=0),
        "skipped_per_host_median": statistics.median(skipped) if skipped else 0,
        "changed_total": sum(changed),
    }


def _bench_size(size: int, runs: int, with_etcd: bool) -> dict[str, object]:
    name = f"hp{size}"
    firsts: list[dict[str, object]] = []
    reruns: list[dict[str, object]] = []
    for _ in range(runs):
        sb.down(name)
        info = sb.up(name, size)
        try:
            with tempfile.TemporaryDirectory(prefix="smcp-bench-") as tmp:
                workdir = Path(tmp)
                playbook = _playbook(with_etcd, workdir)
                firsts.append(_run_playbook(info.inventory, playbook, size, workdir))
                reruns.append(_run_playbook(info.inventory, playbook, size, workdir))
        finally:
            sb.down(name)
        print(f"  {size} hosts: first {firsts[-1]['seconds']} s, re-run {reruns[-1]['seconds']} s", flush=True)
    return {
        "runs": runs,
        "first_seconds": [r["seconds"] for r in firsts],
        "rerun_seconds": [r["seconds"] for r in reruns],
        "first_median": statistics.median(r["seconds"] for r in firsts),
        "rerun_median": statistics.median(r["seconds"] for r in reruns),
        "first_tasks_per_host": firsts[-1]["tasks_per_host_median"],
        "rerun_tasks_per_host": reruns[-1]["tasks_per_host_median"],
        "rerun_changed_total": [r["changed_total"] for r in reruns],
        "first": firsts,
        "rerun": reruns,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default="5,20")
    parser.add_argument("--runs", type=int, default=3, help="runs per size")
    parser.add_argument("--runs-20", type=int, default=None, help="runs for sizes >= 20 (default: --runs)")
    parser.add_argument("--with-etcd", action="store_true", help="run the etcd playbook after prepare_hosts")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up run that fills the apt cache")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    if not args.no_warmup:  # the apt cache holds every package before anything is timed
        warm = 3 if args.with_etcd else 1  # etcd refuses fewer than 3 members unless single-node is declared
        print(f"warm-up ({warm} hosts, not timed)", flush=True)
        _bench_size(warm, 1, args.with_etcd)

    result: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": platform.release()},
        "playbook": "prepare_hosts" + (" + etcd" if args.with_etcd else ""),
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "sizes": {},
    }
    for size in sizes:
        runs = args.runs_20 if (args.runs_20 is not None and size >= 20) else args.runs
        result["sizes"][size] = _bench_size(size, runs, args.with_etcd)  # type: ignore[index]
    result["load_after"] = Path("/proc/loadavg").read_text().split()[:3]

    print(f"\n{result['playbook']}, forks = hosts, apt cache warm, fresh sandbox per run")
    header = ("hosts", "runs", "first median s", "re-run median s", "tasks/host first", "re-run")
    print("{:>5} {:>4} {:>15} {:>16} {:>17} {:>7}".format(*header))
    for size, row in result["sizes"].items():  # type: ignore[union-attr]
        print(
            f"{size:>5} {row['runs']:>4} {row['first_median']:>15.1f} {row['rerun_median']:>16.1f}"
            f" {row['first_tasks_per_host']:>17} {row['rerun_tasks_per_host']:>7}"
        )
        print(f"{'':>10} first: {row['first_seconds']}  re-run: {row['rerun_seconds']}", end="")
        print(f"  re-run changed: {row['rerun_changed_total']}")
    print(f"load average before/after: {result['load_before']} / {result['load_after']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"prepare_hosts-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
