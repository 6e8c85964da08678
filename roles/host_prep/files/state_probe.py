# Reads, in one call, the state the host_prep tasks manage, so that they can skip what already
# matches. Argument: a JSON request; prints a JSON answer. Standard library only. A wrong answer
# only costs speed: a task that is not skipped is itself idempotent.
from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import subprocess
import sys

req = json.loads(sys.argv[1])


def _file(path: str) -> list[str] | None:
    try:
        with open(path, "rb") as handle:
            digest = hashlib.sha256(handle.read()).hexdigest()
        info = os.stat(path)
    except OSError:
        return None
    return [digest, "%o" % (info.st_mode & 0o7777), str(info.st_uid), str(info.st_gid)]


def _out(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, check=False).stdout.strip()
    except OSError:
        return ""


def _missing_packages(names: list[str]) -> list[str]:
    if not names:
        return []
    listed = _out(["dpkg-query", "-W", "-f=${Package} ${db:Status-Abbrev}\n", *names])
    fields = [line.split() for line in listed.splitlines()]
    installed = {f[0].split(":")[0] for f in fields if len(f) > 1 and f[1] == "ii"}
    return sorted(set(names) - installed)


def _hosts_block(marker: str) -> str | None:
    begin, end, inside = "# BEGIN " + marker, "# END " + marker, False
    lines: list[str] = []
    try:
        with open("/etc/hosts") as handle:
            for line in handle.read().splitlines():
                if line == begin:
                    inside, lines = True, []
                elif line == end and inside:
                    return "\n".join(lines)
                elif inside:
                    lines.append(line)
    except OSError:
        pass
    return None


def _read(path: str) -> str:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return ""


swap_entry = re.compile(r"^(\s*[^#\s]+\s+\S+\s+swap\s.*)$", re.MULTILINE)
print(
    json.dumps(
        {
            "files": {path: _file(path) for path in req.get("files", [])},
            "exists": {path: os.path.exists(path) for path in req.get("exists", [])},
            "missing_packages": _missing_packages(req.get("packages", [])),
            "units": {
                unit: {
                    "enabled": _out(["systemctl", "is-enabled", unit]),
                    "active": _out(["systemctl", "is-active", unit]),
                }
                for unit in req.get("units", [])
            },
            "hostname": socket.gethostname(),
            "etc_hostname": _read("/etc/hostname").strip(),
            "fstab_swap": bool(swap_entry.search(_read("/etc/fstab"))),
            "swap_on": bool(_read("/proc/swaps").splitlines()[1:]),
            "hosts_block": _hosts_block(req.get("hosts_marker", "smcp cluster members")),
        }
    )
)
