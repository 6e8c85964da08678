"""Median ratios of smcp to the floor from the side-by-side TSV (../shared/bench/floor/side-by-side.sh).

Each TSV row: tool, hosts, repetition, run (1 = first run, 2 = re-run), wall seconds, exit code, changed count.
For each size and run, the ratio smcp/floor is taken per repetition (both tools ran on fresh hosts of the same
size in that repetition, one after the other), and the median of those ratios is printed with the target
(first runs at most 1.1x, re-runs at most 0.5x). Rows with a non-zero exit code are left out and counted.
The machine is shared and noisy: read medians, never a single run.

usage: python tests/bench/floor_ratio.py [TSV]   (default tests/bench/results/floor-side-by-side.tsv)
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path

DEFAULT = Path(__file__).resolve().parent / "results" / "floor-side-by-side.tsv"
TARGETS = {1: 1.1, 2: 0.5}
RUN_NAMES = {1: "first run", 2: "re-run"}


def parse(text: str) -> tuple[dict[tuple[str, int, int, int], float], int]:
    """{(tool, hosts, rep, run): wall seconds} from the TSV text (a later row wins), and the failed rows."""
    walls: dict[tuple[str, int, int, int], float] = {}
    failed = 0
    for line in text.splitlines():
        fields = line.split("\t")
        if len(fields) < 6 or not fields[1].isdigit():
            continue
        tool, hosts, rep, run, wall, rc = fields[:6]
        if rc != "0":
            failed += 1
            continue
        walls[(tool, int(hosts), int(rep), int(run))] = float(wall)
    return walls, failed


def ratios(walls: dict[tuple[str, int, int, int], float]) -> list[dict[str, object]]:
    """Per size and run: repetitions paired, median walls of each tool, median of the per-repetition ratios."""
    out = []
    for hosts, run in sorted({(k[1], k[3]) for k in walls}):
        reps = sorted(
            rep
            for (tool, n, rep, r) in walls
            if tool == "smcp" and n == hosts and r == run and ("floor", n, rep, r) in walls
        )
        if not reps:
            continue
        smcp = [walls[("smcp", hosts, rep, run)] for rep in reps]
        floor = [walls[("floor", hosts, rep, run)] for rep in reps]
        ratio = statistics.median(s / f for s, f in zip(smcp, floor, strict=True))
        target = TARGETS.get(run)
        out.append(
            {
                "hosts": hosts,
                "run": run,
                "reps": len(reps),
                "smcp_median_s": statistics.median(smcp),
                "floor_median_s": statistics.median(floor),
                "ratio_median": round(ratio, 3),
                "target": target,
                "met": target is not None and ratio <= target,
            }
        )
    return out


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT
    walls, failed = parse(path.read_text())
    print("hosts\trun\treps\tsmcp_median_s\tfloor_median_s\tratio_median\ttarget\tmet")
    for row in ratios(walls):
        run = RUN_NAMES.get(int(str(row["run"])), row["run"])
        print(
            f"{row['hosts']}\t{run}\t{row['reps']}\t{row['smcp_median_s']:.1f}\t{row['floor_median_s']:.1f}"
            f"\t{row['ratio_median']:.2f}\t{row['target']}\t{'yes' if row['met'] else 'no'}"
        )
    if failed:
        print(f"{failed} row(s) with a non-zero exit code left out")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
