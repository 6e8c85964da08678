"""The hosts as podman containers: create, recreate, start, wait for boot and SSH, remove."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from smcp_api.sandbox.hostfiles import files_digest, give_files
from smcp_api.sandbox.model import (
    LABEL,
    Host,
    SandboxError,
    SandboxInfo,
)
from smcp_api.sandbox.progress import Progress
from smcp_api.sandbox.state import load
from smcp_api.sandbox.system import (
    podman,
    podman_json,
    run,
)

BOOT_TIMEOUT = 120.0
SSH_TIMEOUT = 30.0


def inspect_container(container: str) -> dict[str, object] | None:
    proc = podman("container", "inspect", container, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None


def start_hosts(info: SandboxInfo, prog: Progress) -> None:
    """Create what is missing, recreate what differs, start what is stopped: each phase in parallel."""
    wanted = {
        h.container: {LABEL: info.name, "smcp.ip": h.ip, "smcp.image": info.image, "smcp.files": files_digest(info, h)}
        for h in info.hosts
    }
    existing = {
        c["Names"][0]: c
        for c in podman_json("ps", "-a", "--filter", f"label={LABEL}={info.name}", "--format", "json")
        if c.get("Names")
    }
    stale = [n for n, c in existing.items() if n not in wanted or not _labelled(c, wanted[n])]
    if stale:
        podman("rm", "-f", "-v", "--time", "0", *stale)
    create = [h for h in info.hosts if h.container not in existing or h.container in stale]
    start = [h for h in info.hosts if h in create or existing[h.container].get("State") != "running"]
    prog.start("starting hosts", len(info.hosts))
    for _ in range(len(info.hosts) - len(start)):
        prog.advance("running")
    workers = max(1, min(len(info.hosts), 16))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda h: _create_host(info, h, wanted[h.container]), create))
        give_files(info, create)
        for host in pool.map(_start_host, start):
            prog.advance(host.name)
    if start and len(start) < len(info.hosts) and info.bridge:
        # a restarted host has a new MAC: drop the machine's old neighbour entries so ssh does not
        # wait for them to go stale (~15 s)
        run(["ip", "neigh", "flush", "dev", info.bridge], check=False)


def _labelled(container: dict[str, object], labels: dict[str, str]) -> bool:
    """The container carries our labels (it also has the image's, e.g. smcp.recipe)."""
    have = container.get("Labels") or {}
    return isinstance(have, dict) and all(have.get(k) == v for k, v in labels.items())


def _start_host(host: Host) -> Host:
    podman("start", host.container)
    return host


def _create_host(info: SandboxInfo, host: Host, labels: dict[str, str]) -> None:
    args = ["create", "--name", host.container, "--hostname", host.name, "--network", info.network]
    args += ["--ip", host.ip, "--privileged", "--systemd=always", "--dns=none", "--no-hosts"]
    args += ["-v", "/var/lib/containerd"]
    for key, value in labels.items():
        args += ["--label", f"{key}={value}"]
    podman(*args, info.image, "/sbin/init")


def wait_host(info: SandboxInfo, host: Host) -> Host:
    deadline = time.monotonic() + BOOT_TIMEOUT
    state = ""
    tries = 0
    while time.monotonic() < deadline:
        left = max(deadline - time.monotonic(), 1.0)
        try:
            proc = podman("exec", host.container, "systemctl", "is-system-running", "--wait", check=False, timeout=left)
        except subprocess.TimeoutExpired:
            state = "still starting"
            continue
        out, err = proc.stdout.strip(), proc.stderr.strip()
        if out in ("running", "degraded"):
            break
        state = out or (err.splitlines()[-1] if err else f"exit code {proc.returncode}")
        tries += 1
        if tries % 10 == 0:
            _check_boot(host)
        time.sleep(0.3)
    else:
        raise SandboxError(
            f"host {host.name} did not boot in {BOOT_TIMEOUT:.0f} s ({state}): see `podman logs {host.container}`"
        )
    deadline = time.monotonic() + SSH_TIMEOUT
    err = ""
    while time.monotonic() < deadline:
        try:
            proc = run([*ssh_command(info, host), "true"], check=False, timeout=SSH_TIMEOUT)
        except subprocess.TimeoutExpired:
            err = "ssh timed out"
            continue
        if proc.returncode == 0:
            return host
        err = proc.stderr.strip()
        time.sleep(0.3)
    raise SandboxError(f"ssh to {host.name} ({host.ip}) failed: {err}; see `podman logs {host.container}`")


def _check_boot(host: Host) -> None:
    """Fail early when a host's systemd gave up (it freezes instead of exiting) or the container stopped."""
    current = inspect_container(host.container)
    state = (current or {}).get("State") or {}
    logs = podman("logs", "--tail", "20", host.container, check=False)
    text = logs.stdout + logs.stderr
    if not (isinstance(state, dict) and state.get("Running")) or "Freezing execution" in text:
        last = " | ".join(line.strip() for line in text.strip().splitlines()[-3:])
        raise SandboxError(
            f"host {host.name} failed to boot ({last or 'container stopped'}): see `podman logs {host.container}`"
            " and docs/sandbox.md (limits)"
        )


def ssh_command(info: SandboxInfo, host: Host) -> list[str]:
    """ssh with the inventory's settings (host-key checking on), without connection sharing."""
    return [
        "ssh",
        "-i",
        str(info.key),
        "-o",
        f"UserKnownHostsFile={info.known_hosts}",
        "-o",
        "StrictHostKeyChecking=yes",
        "-o",
        "IdentitiesOnly=yes",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=5",
        "-o",
        "ControlMaster=no",
        "-o",
        "ControlPath=none",
        f"{info.user}@{host.ip}",
    ]


def remove_containers(name: str) -> int:
    out = podman("ps", "-a", "--filter", f"label={LABEL}={name}", "--format", "{{.Names}}").stdout.split()
    info = load(name)
    wanted = set(out) | ({h.container for h in info.hosts} if info else set())
    present = [c for c in wanted if inspect_container(c) is not None]
    if present:
        podman("rm", "-f", "-v", "--time", "0", *present)
    return len(present)
