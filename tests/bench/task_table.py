"""Print the per-play task table of task_count runs (tests/bench/callbacks/task_count.py).

Usage: ``python3 tests/bench/task_table.py --host HOST FIRST.jsonl [RERUN.jsonl]``: one row per play
(the plays of the last playbook run in each file, matched by position), the tasks started on HOST in
each run, and the totals; a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def plays(path: Path) -> list[dict]:
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise SystemExit(f"{path}: no task_count line (was the callback enabled?)")
    return json.loads(lines[-1])["plays"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", required=True)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    runs = [plays(p) for p in args.runs]
    names = ["first run", "re-run"][: len(runs)] + [f"run {i + 1}" for i in range(2, len(runs))]
    print("| play | " + " | ".join(names) + " |")
    print("|---|" + "---:|" * len(runs))
    totals = [0] * len(runs)
    for i, play in enumerate(runs[0]):
        counts = []
        for r, run in enumerate(runs):
            n = run[i]["started"].get(args.host, 0) if i < len(run) else 0
            totals[r] += n
            counts.append(str(n))
        if any(c != "0" for c in counts):
            print(f"| {play['play']} | " + " | ".join(counts) + " |")
    print("| **total** | " + " | ".join(f"**{t}**" for t in totals) + " |")


if __name__ == "__main__":
    main()
