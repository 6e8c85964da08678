"""Benchmark: time to bring sandbox hosts up (3 and 20, median of 3, image cached), the one-time image
build, and memory per idle host. Prints a table and writes JSON to tests/bench/results/.

Run as root on a quiet machine:  .venv/bin/python tests/bench/sandbox_up.py [--runs 3] [--sizes 3,20] [--no-build]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from datetime import UTC, datetime
from pathlib import Path

from smcp_api import sandbox as sb
from smcp_api.sandbox import image
from smcp_api.sandbox.system import podman

RESULTS = Path(__file__).resolve().parent / "results"


def _memory(info: sb.SandboxInfo) -> dict[str, float]:
    """Per-host memory from each container's memory cgroup (v1): RSS and total usage, in MiB."""
    rss, usage = [], []
    for host in info.hosts:
        cgroup = podman("inspect", "--format", "{{.State.CgroupPath}}", host.container).stdout.strip()
        base = Path("/sys/fs/cgroup/memory") / cgroup.lstrip("/")
        stat = dict(line.split() for line in (base / "memory.stat").read_text().splitlines())
        rss.append(int(stat["total_rss"]) / 2**20)
        usage.append(int((base / "memory.usage_in_bytes").read_text()) / 2**20)
    return {"rss_mib_median": statistics.median(rss), "usage_mib_median": statistics.median(usage)}


def _image_build() -> float:
    """Build the image once more under a throw-away tag (through the warm apt cache)."""
    digest = image.recipe_hash()
    ref = f"localhost/smcp-sandbox-bench:{digest[:12]}"
    t0 = time.monotonic()
    image.build(ref, digest, log=lambda _msg: None, prune=False)
    seconds = time.monotonic() - t0
    podman("rmi", ref, check=False)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="3,20")
    parser.add_argument("--no-build", action="store_true", help="skip the image build timing")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]

    # warm-up: the image and the apt cache exist before anything is timed
    warm = sb.up("bench-warm", 1)
    sb.down(warm.name)
    result: dict[str, object] = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": len(open("/proc/cpuinfo").read().split("processor")) - 1, "kernel": platform.release()},
        "load_before": Path("/proc/loadavg").read_text().split()[:3],
        "image": image.image_ref(),
        "up": {},
    }
    for size in sizes:
        ups, downs, memory = [], [], {}
        for run in range(args.runs):
            name = f"bench-{size}"
            t0 = time.monotonic()
            info = sb.up(name, size)
            ups.append(time.monotonic() - t0)
            if run == 0:
                time.sleep(5)  # let the hosts settle before reading memory
                memory = _memory(info)
            t0 = time.monotonic()
            sb.down(name)
            downs.append(time.monotonic() - t0)
        result["up"][size] = {  # type: ignore[index]
            "up_seconds": ups,
            "up_median": statistics.median(ups),
            "down_median": statistics.median(downs),
            **memory,
        }
    if not args.no_build:
        result["image_build_seconds"] = _image_build()
    result["load_after"] = Path("/proc/loadavg").read_text().split()[:3]

    print(f"{'hosts':>5} {'up median s':>12} {'runs':>24} {'down s':>7} {'RSS MiB/host':>13} {'cgroup MiB/host':>16}")
    for size, row in result["up"].items():  # type: ignore[union-attr]
        runs = ", ".join(f"{x:.1f}" for x in row["up_seconds"])
        print(
            f"{size:>5} {row['up_median']:>12.1f} {runs:>24} {row['down_median']:>7.1f}"
            f" {row['rss_mib_median']:>13.1f} {row['usage_mib_median']:>16.1f}"
        )
    if "image_build_seconds" in result:
        print(f"image build (debootstrap + import, warm apt cache): {result['image_build_seconds']:.1f} s")
    print(f"load average before/after: {result['load_before']} / {result['load_after']}")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"sandbox_up-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
