"""Running machine commands for the sandbox: podman (with our own containers.conf), nft, ip."""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from smcp_api import paths
from smcp_api.sandbox.model import SandboxError

CONTAINERS_CONF = """\
# Written by smcp: podman settings for sandbox hosts on this machine (see docs/sandbox.md).
# Used through CONTAINERS_CONF for every podman call smcp makes; the machine's own files stay untouched.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"

[network]
network_backend = "netavark"
"""


def sandbox_root() -> Path:
    return paths.state_dir() / "sandbox"


def containers_conf() -> Path:
    """Our containers.conf (rewritten when it differs)."""
    path = paths.state_dir() / "podman" / "containers.conf"
    if not path.is_file() or path.read_text() != CONTAINERS_CONF:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(CONTAINERS_CONF)
        tmp.replace(path)
    return path


def podman_env() -> dict[str, str]:
    env = dict(os.environ)
    env["CONTAINERS_CONF"] = str(containers_conf())
    return env


def run(
    cmd: Sequence[str],
    *,
    check: bool = True,
    input_text: str | None = None,
    env: dict[str, str] | None = None,
    timeout: float | None = 600,
) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; on failure raise RuntimeError with the command and its stderr."""
    proc = subprocess.run(
        list(cmd), input=input_text, capture_output=True, text=True, env=env, timeout=timeout, check=False
    )
    if check and proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        tail = " | ".join(line for line in err[-3:] if "level=warning" not in line) or f"exit code {proc.returncode}"
        raise RuntimeError(f"{' '.join(cmd[:4])}... failed: {tail}")
    return proc


def podman(*args: str, check: bool = True, timeout: float | None = 600) -> subprocess.CompletedProcess[str]:
    return run(["podman", *args], check=check, env=podman_env(), timeout=timeout)


def podman_json(*args: str) -> list[dict[str, Any]]:
    out = podman(*args).stdout.strip()
    data = json.loads(out) if out else []
    return data if isinstance(data, list) else [data]


def preflight() -> None:
    """Fail early, with the fix, when the machine cannot run sandboxes."""
    if os.geteuid() != 0:
        raise SandboxError("the sandbox needs root (rootful podman, nftables): run it as root, e.g. `sudo smcpctl ...`")
    missing = [
        tool
        for tool in ("podman", "nft", "ip", "ssh", "ssh-keygen", "debootstrap", "apt-cacher-ng", "runc")
        if shutil.which(tool, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None
    ]
    if missing:
        raise SandboxError(f"{', '.join(missing)} not found: install the host packages with `make setup`")


def lock_path(name: str) -> Path:
    return sandbox_root() / ".locks" / f"{name}.lock"


@contextlib.contextmanager
def locked(name: str) -> Iterator[None]:
    """An exclusive machine-wide lock (flock) so concurrent `up`/`down` calls do not race.

    The lock file may be removed by its holder (`down` removes its sandbox's lock): a waiter that
    wakes up on a removed file retries on the new one.
    """
    path = lock_path(name)
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fh = open(path, "a")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
            except FileNotFoundError:
                same = False
            if same:
                try:
                    yield
                finally:
                    fcntl.flock(fh, fcntl.LOCK_UN)
                return
        finally:
            fh.close()


def used_networks() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network in use on the machine: addresses, routes (all tables), podman and CNI networks."""
    used: list[ipaddress.IPv4Network] = []

    def add(text: str | None) -> None:
        if not text or text == "default":
            return
        with contextlib.suppress(ValueError):
            net = ipaddress.ip_network(text, strict=False)
            if isinstance(net, ipaddress.IPv4Network) and not net.is_loopback:
                used.append(net)

    for item in json.loads(run(["ip", "-j", "-4", "addr"]).stdout or "[]"):
        for a in item.get("addr_info", []):
            add(f"{a['local']}/{a['prefixlen']}")
    for route in json.loads(run(["ip", "-j", "-4", "route", "show", "table", "all"]).stdout or "[]"):
        add(route.get("dst"))
    for net in podman_json("network", "inspect", *network_names()) if network_names() else []:
        for sub in net.get("subnets") or []:
            add(sub.get("subnet"))
    for conf in list(Path("/etc/cni/net.d").glob("*.conflist")) + list(Path("/etc/containers/networks").glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            add_from_json(json.loads(conf.read_text()), add)
    return used


def add_from_json(data: object, add: object) -> None:
    """Walk a CNI/netavark config and feed every `subnet` value to add()."""
    if isinstance(data, dict):
        for key, value in data.items():
            if key == "subnet" and isinstance(value, str):
                add(value)  # type: ignore[operator]
            else:
                add_from_json(value, add)
    elif isinstance(data, list):
        for value in data:
            add_from_json(value, add)


def network_names() -> list[str]:
    out = podman("network", "ls", "--format", "{{.Name}}").stdout
    return [n for n in out.split() if n]


def pid_alive(pid: int) -> bool:
    """The process exists and is not a zombie (PID 1 on this machine does not reap orphans)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


INOTIFY_LIMIT = Path("/proc/sys/fs/inotify/max_user_instances")
INOTIFY_PER_HOST = 8  # systemd 5, dbus-daemon 1, systemd-logind 1, + 1 spare (measured on a booted host)


def inotify_in_use(uid: int = 0) -> int:
    """inotify instances held by processes of uid (rootful containers all count against root)."""
    count = 0
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if proc.stat().st_uid != uid:
                continue
            for fd in (proc / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) == "anon_inode:inotify":
                        count += 1
        except OSError:
            continue
    return count


def inotify_headroom(hosts: int, log: Callable[[str], None]) -> None:
    """Make room for the hosts' systemd inotify instances (the default limit, 128, fits ~16 hosts machine-wide).

    Raises fs.inotify.max_user_instances (runtime only, never lowered) when it is too low; with
    SMCP_SANDBOX_NO_SYSCTL=1 it fails with the command to run instead.
    """
    limit = int(INOTIFY_LIMIT.read_text())
    used = inotify_in_use()
    need = used + hosts * INOTIFY_PER_HOST + 16
    if need <= limit:
        return
    new = max(512, -(-need // 256) * 256)
    if os.environ.get("SMCP_SANDBOX_NO_SYSCTL"):
        raise SandboxError(
            f"too few inotify instances for {hosts} more hosts (fs.inotify.max_user_instances={limit}, {used} in use):"
            f" run `sysctl -w fs.inotify.max_user_instances={new}` or take other sandboxes down"
        )
    remember_machine_sysctls()
    INOTIFY_LIMIT.write_text(f"{new}\n")
    log(f"raised fs.inotify.max_user_instances {limit} -> {new} ({used} in use; {hosts} hosts need ~{hosts * 8})")


# Machine-wide values sandbox hosts change. Hosts share this machine's kernel: our inotify headroom,
# net.ipv4.ip_forward (netavark switches it on in the machine's namespace for a bridge), and whatever a
# host's systemd writes at boot (fs.file-max, fs.nr_open, fs.protected_*, ...) land on the machine.
# Every writable kernel.*, vm.* and fs.* value plus ip_forward is journalled before the first sandbox
# starts and the ones that changed are put back when the last sandbox goes (restore_machine_sysctls).
PROC_SYS = Path("/proc/sys")
KERNEL_GLOBAL_TREES = ("kernel", "vm", "fs")
VOLATILE_SYSCTLS = frozenset({"kernel.ns_last_pid", "fs.binfmt_misc.register", "vm.drop_caches", "vm.compact_memory"})


def machine_sysctls() -> dict[str, Path]:
    """The machine's writable kernel-global sysctls (key -> /proc/sys path) and net.ipv4.ip_forward."""
    found: dict[str, Path] = {"net.ipv4.ip_forward": PROC_SYS / "net" / "ipv4" / "ip_forward"}
    for tree in KERNEL_GLOBAL_TREES:
        for path in (PROC_SYS / tree).rglob("*"):
            with contextlib.suppress(OSError):
                if not path.is_file() or not path.stat().st_mode & 0o200:
                    continue
                key = ".".join(path.relative_to(PROC_SYS).parts)
                if key not in VOLATILE_SYSCTLS:
                    found[key] = path
    return found


def sysctl_journal() -> Path:
    return paths.state_dir() / "sandbox-machine-sysctls.json"


def remember_machine_sysctls() -> None:
    """Journal the machine's values once, before the first sandbox changes any of them."""
    journal = sysctl_journal()
    if journal.is_file():
        return
    values: dict[str, str] = {}
    for key, path in machine_sysctls().items():
        with contextlib.suppress(OSError):
            values[key] = path.read_text().strip()
    journal.parent.mkdir(parents=True, exist_ok=True)
    tmp = journal.with_suffix(".tmp")
    tmp.write_text(json.dumps(values, indent=2) + "\n")
    tmp.replace(journal)


def restore_machine_sysctls(log: Callable[[str], None]) -> None:
    """Put back the journalled values (called when no sandbox is left); leaves ip_forward alone while any
    other podman container still runs, since its network may need forwarding."""
    journal = sysctl_journal()
    if not journal.is_file():
        return
    values = json.loads(journal.read_text())
    others_running = bool(podman("ps", "-q", check=False).stdout.strip())
    known = machine_sysctls()
    for key, original in values.items():
        path = known.get(key)
        if path is None:
            continue
        if key == "net.ipv4.ip_forward" and others_running:
            log(f"left {key} at {path.read_text().strip()}: other podman containers are running")
            continue
        try:
            current = path.read_text().strip()
            if current != original:
                path.write_text(f"{original}\n")
                log(f"restored {key} {current} -> {original}")
        except OSError as exc:
            log(f"could not restore {key} to {original!r}: {exc}")
    journal.unlink()
