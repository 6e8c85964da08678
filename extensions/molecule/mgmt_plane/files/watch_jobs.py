"""Watch this host's processes while the API runs a job; print who ran what as JSON.

Started before the job (so it cannot miss it): scans /proc every 50 ms and records, for the API's own
process, each job launcher (`python -m smcp_api.jobs.launch`) and each ansible-playbook process, the
real user and the effective and permitted capability sets as last seen (a launcher starts as the API's
user and drops to the job user before it starts ansible-playbook). Ends 3 s after the last job process is
gone, or after TIMEOUT seconds. Usage: watch_jobs.py READY_FILE [TIMEOUT].
"""

from __future__ import annotations

import json
import os
import pwd
import sys
import time
from pathlib import Path


def kind(argv: list[str]) -> str | None:
    if len(argv) >= 2 and os.path.basename(argv[1]) == "ansible-playbook":
        return "playbook"
    if argv[1:3] == ["-m", "smcp_api.jobs.launch"]:
        return "launcher"
    if len(argv) >= 2 and os.path.basename(argv[1]) == "smcp-api":
        return "api"
    return None


def scan() -> list[dict[str, object]]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            what = kind([a.decode(errors="replace") for a in argv if a])
            if what is None:
                continue
            status = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
        except OSError:
            continue
        uid = int(status["Uid"].split()[0])
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
        found.append(
            {
                "kind": what,
                "pid": int(entry.name),
                "user": user,
                "cap_eff": status["CapEff"].strip(),
                "cap_prm": status["CapPrm"].strip(),
            }
        )
    return found


def main() -> None:
    Path(sys.argv[1]).write_text("ready\n")
    timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 240.0
    deadline = time.monotonic() + timeout
    seen: dict[tuple[str, int], dict[str, object]] = {}
    last_job = None
    while time.monotonic() < deadline:
        now = scan()
        for proc in now:
            seen[(str(proc["kind"]), int(proc["pid"]))] = proc  # the last state: a launcher starts as the API's user
        if any(p["kind"] != "api" for p in now):
            last_job = time.monotonic()
        elif last_job is not None and time.monotonic() - last_job > 3:
            break
        time.sleep(0.05)
    print(json.dumps(sorted(seen.values(), key=lambda p: (str(p["kind"]), int(p["pid"])))))


if __name__ == "__main__":
    main()
