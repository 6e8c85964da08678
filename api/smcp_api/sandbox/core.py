"""Bring sandboxes up, take them down, report them (the API the CLI and `smcpctl up --sandbox` call)."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import os
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Protocol

from smcp_api import paths
from smcp_api.sandbox import aptcache, guard, image
from smcp_api.sandbox.model import (
    APT_CACHE_PORT,
    CONTAINER_PREFIX,
    NAME_RE,
    Host,
    SandboxError,
    SandboxInfo,
    allocate_subnet,
    host_groups,
    inventory_yaml,
    known_hosts_text,
    layout,
    network_name,
    overlapping,
    parse_subnet,
    validate_hosts,
    validate_name,
)
from smcp_api.sandbox.system import (
    inotify_headroom,
    lock_path,
    locked,
    podman,
    podman_json,
    preflight,
    remember_machine_sysctls,
    restore_machine_sysctls,
    run,
    sandbox_root,
    used_networks,
)

LABEL = "smcp.sandbox"
BOOT_TIMEOUT = 120.0
SSH_TIMEOUT = 30.0


class Progress(Protocol):
    """What up/down report while they work (the CLI shows it with rich on a TTY, plain lines otherwise)."""

    def step(self, message: str) -> None: ...

    def start(self, label: str, total: int) -> None: ...

    def advance(self, label: str) -> None: ...


class NullProgress:
    def step(self, message: str) -> None:
        pass

    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, label: str) -> None:
        pass


def sandbox_dir(name: str) -> Path:
    return sandbox_root() / name


def _state_file(name: str) -> Path:
    return sandbox_dir(name) / "state.json"


def load(name: str) -> SandboxInfo | None:
    try:
        return SandboxInfo.from_state(json.loads(_state_file(name).read_text()))
    except (OSError, ValueError, TypeError, KeyError):
        return None


def _save(info: SandboxInfo) -> None:
    path = _state_file(info.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info.to_state(), indent=2) + "\n")
    tmp.replace(path)


def names() -> list[str]:
    root = sandbox_root()
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if NAME_RE.match(p.name) and (p / "state.json").is_file())


def _all_states(exclude: str | None = None) -> list[SandboxInfo]:
    return [s for n in names() if n != exclude and (s := load(n)) is not None]


# ---------------------------------------------------------------- up


def up(name: str, hosts: int, subnet: str | None = None, progress: Progress | None = None) -> SandboxInfo:
    """Create (or recover) sandbox NAME with HOSTS Debian 12 hosts; a no-op when it is already up."""
    validate_name(name)
    validate_hosts(hosts)
    wanted = parse_subnet(subnet, hosts) if subnet else None
    preflight()
    prog = progress or NullProgress()
    with locked(f"sandbox-{name}"):
        existing = load(name)
        if existing is not None:
            if len(existing.hosts) != hosts:
                raise SandboxError(
                    f"sandbox {name!r} exists with {len(existing.hosts)} hosts, not {hosts}: run"
                    f" `smcpctl sandbox down --name {name}` first, or pass --hosts {len(existing.hosts)}"
                )
            if wanted is not None and str(wanted) != existing.subnet:
                raise SandboxError(
                    f"sandbox {name!r} exists on {existing.subnet}, not {wanted}: run"
                    f" `smcpctl sandbox down --name {name}` first, or drop --subnet"
                )
            if _healthy(existing):
                existing.already_up = True
                existing.groups = host_groups([h.name for h in existing.hosts])
                prog.step(f"sandbox {name!r} is already up")
                return existing
        if wanted is not None and existing is None:
            with locked("global"):
                _check_free(name, wanted)
        try:
            return _up(name, hosts, wanted, existing, prog)
        except BaseException:
            prog.step(f"bringing sandbox {name!r} up failed: rolling back")
            _teardown(name)
            raise


def _up(
    name: str,
    count: int,
    wanted: ipaddress.IPv4Network | None,
    existing: SandboxInfo | None,
    prog: Progress,
) -> SandboxInfo:
    t0 = time.monotonic()
    sbdir = sandbox_dir(name)
    sbdir.mkdir(parents=True, exist_ok=True)
    os.chmod(sbdir, 0o700)
    with locked("global"):
        remember_machine_sysctls()
        prog.step("apt cache")
        aptcache.ensure()
        net_name = network_name(name)
        subnet = _network(name, net_name, count, wanted, existing)
        gateway, hosts = layout(name, count, subnet)
        bridge = _bridge(net_name)
        info = SandboxInfo(
            name=name,
            hosts=hosts,
            subnet=str(subnet),
            gateway=gateway,
            network=net_name,
            directory=str(sbdir),
            bridge=bridge,
            state="starting",
        )
        _save(info)
        prog.step("egress guard")
        guard.sync(_guarded())
        inotify_headroom(count, prog.step)
    with locked("image"):
        prog.step("base image")
        info.image, built = image.ensure(prog.step)
        if built:
            prog.step(f"built {info.image}")
    _save(info)
    prog.step("keys and inventory")
    pubkeys = _keys(info)
    info.known_hosts.write_text(known_hosts_text(hosts, pubkeys))
    info.inventory.write_text(inventory_yaml(info))
    _start_hosts(info, prog)
    prog.start("waiting for boot and ssh", count)
    with ThreadPoolExecutor(max_workers=min(count, 16)) as pool:
        for host in pool.map(lambda h: _wait_host(info, h), hosts):
            prog.advance(host.name)
    info.state = "up"
    info.groups = host_groups([h.name for h in hosts])
    _save(info)
    prog.step(f"sandbox {name!r} up: {count} hosts in {time.monotonic() - t0:.1f} s")
    return info


def _network(
    name: str,
    net_name: str,
    count: int,
    wanted: ipaddress.IPv4Network | None,
    existing: SandboxInfo | None,
) -> ipaddress.IPv4Network:
    """Reuse or create the sandbox network; return its subnet. Caller holds the global lock."""
    current = _network_subnet(net_name)
    want = wanted or (ipaddress.IPv4Network(existing.subnet) if existing else None)
    if current is not None and (want is None or want == current):
        return current
    if current is not None:
        _remove_containers(name)
        podman("network", "rm", "-f", net_name, check=False)
    if want is not None:
        _check_free(name, want)
        subnet = want
    else:
        subnet = allocate_subnet(_used(name))
    gateway = str(next(subnet.hosts()))
    podman(
        "network",
        "create",
        "--internal",
        "--disable-dns",
        "--subnet",
        str(subnet),
        "--gateway",
        gateway,
        "--label",
        f"{LABEL}={name}",
        net_name,
    )
    return subnet


def _used(name: str) -> list[ipaddress.IPv4Network]:
    """Networks in use on the machine and by other sandboxes (whose network may be missing for now)."""
    return used_networks() + [ipaddress.IPv4Network(s.subnet) for s in _all_states(exclude=name)]


def _check_free(name: str, subnet: ipaddress.IPv4Network) -> None:
    if _network_subnet(network_name(name)) == subnet:
        return  # our own network, left from an earlier session: reused
    clash = overlapping(subnet, _used(name))
    if clash is not None:
        raise SandboxError(
            f"subnet {subnet} is already in use (overlaps {clash} on this machine): pick another --subnet"
            " or leave it out to allocate a free one"
        )


def _guarded() -> list[SandboxInfo]:
    """What the egress guard must cover: every sandbox network on the machine (podman's labels are the
    machine-wide truth, whatever SMCP_STATE_DIR says) plus the subnets of recorded sandboxes."""
    found: dict[str, SandboxInfo] = {}
    for net in podman_json("network", "ls", "--filter", f"label={LABEL}", "--format", "json"):
        name = str((net.get("labels") or {}).get(LABEL, net.get("name")))  # type: ignore[union-attr]
        for sub in net.get("subnets") or []:  # type: ignore[union-attr]
            subnet = ipaddress.ip_network(sub["subnet"])  # type: ignore[index]
            if isinstance(subnet, ipaddress.IPv4Network):
                found[name] = SandboxInfo(
                    name=name,
                    hosts=[],
                    subnet=str(subnet),
                    gateway="",
                    network=str(net.get("name")),
                    directory="",
                    bridge=str(net.get("network_interface") or ""),
                )
    for state in _all_states():
        found.setdefault(state.name, state)
    return sorted(found.values(), key=lambda i: i.name)


def _network_subnet(net_name: str) -> ipaddress.IPv4Network | None:
    proc = podman("network", "inspect", net_name, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)[0]
    for sub in data.get("subnets") or []:
        net = ipaddress.ip_network(sub["subnet"])
        if isinstance(net, ipaddress.IPv4Network):
            return net
    return None


def _bridge(net_name: str) -> str:
    data = podman_json("network", "inspect", net_name)[0]
    return str(data.get("network_interface", ""))


def _keygen(path: Path, comment: str) -> str:
    if not path.is_file() or not path.with_suffix(".pub").is_file():
        path.unlink(missing_ok=True)
        path.with_suffix(".pub").unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    os.chmod(path, 0o600)
    return path.with_suffix(".pub").read_text().strip()


def _keys(info: SandboxInfo) -> dict[str, str]:
    """The client key for user smcp and one host key per host, all generated here on the machine."""
    client_pub = _keygen(info.key, f"smcp-sandbox-{info.name}")
    pubkeys = {}
    for host in info.hosts:
        root = info.dir / "hosts" / host.name / "root"
        for sub in ("etc/ssh/authorized_keys", "etc/apt/apt.conf.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            os.chmod(d, 0o755)  # noqa: S103 - copied into the host as its /etc dirs
        pubkeys[host.name] = _keygen(root / "etc/ssh/ssh_host_ed25519_key", f"root@{host.name}")
        machine_id = root / "etc/machine-id"
        if not machine_id.is_file():
            machine_id.write_text(uuid.uuid4().hex + "\n")
        os.chmod(machine_id, 0o444)
        auth = root / "etc/ssh/authorized_keys" / "smcp"
        auth.write_text(client_pub + "\n")
        os.chmod(auth, 0o644)
        proxy = root / "etc/apt/apt.conf.d/01smcp-proxy"
        # A fetch the cache stalls on (seen with ~20 hosts updating at once) times out and is retried
        # instead of hanging the run.
        proxy.write_text(
            f'Acquire::http::Proxy "http://{info.gateway}:{APT_CACHE_PORT}/";\n'
            'Acquire::http::Timeout "30";\nAcquire::Retries "3";\n'
        )
        os.chmod(proxy, 0o644)
    return pubkeys


def _files_digest(info: SandboxInfo, host: Host) -> str:
    """A digest of the files given to the host (keys, machine-id, apt proxy): a host made with others is recreated."""
    root = info.dir / "hosts" / host.name / "root"
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def _inspect(container: str) -> dict[str, object] | None:
    proc = podman("container", "inspect", container, check=False)
    if proc.returncode != 0:
        return None
    data = json.loads(proc.stdout)
    return data[0] if data else None


def _start_hosts(info: SandboxInfo, prog: Progress) -> None:
    """Create what is missing, recreate what differs, start what is stopped: each phase in parallel."""
    wanted = {
        h.container: {LABEL: info.name, "smcp.ip": h.ip, "smcp.image": info.image, "smcp.files": _files_digest(info, h)}
        for h in info.hosts
    }
    existing = {
        c["Names"][0]: c
        for c in podman_json("ps", "-a", "--filter", f"label={LABEL}={info.name}", "--format", "json")
        if c.get("Names")  # type: ignore[union-attr]
    }
    stale = [n for n, c in existing.items() if n not in wanted or not _labelled(c, wanted[n])]
    if stale:
        podman("rm", "-f", "-v", "--time", "0", *stale)
    create = [h for h in info.hosts if h.container not in existing or h.container in stale]
    start = [h for h in info.hosts if h in create or existing[h.container].get("State") != "running"]  # type: ignore[union-attr]
    prog.start("starting hosts", len(info.hosts))
    for _ in range(len(info.hosts) - len(start)):
        prog.advance("running")
    workers = max(1, min(len(info.hosts), 16))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(lambda h: _create_host(info, h, wanted[h.container]), create))
        _give_files(info, create)
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


def _give_files(info: SandboxInfo, hosts: list[Host]) -> None:
    """Put each host's files (keys, machine-id, apt proxy) into its container before it starts.

    With podman's overlay storage they are written straight into the container's upper layer (one
    inspect for all hosts); otherwise, `podman cp` per host.
    """
    if not hosts:
        return
    found = podman_json("container", "inspect", *(h.container for h in hosts))
    upper = {}
    for item in found:
        driver = item.get("GraphDriver") or {}
        data = driver.get("Data") or {} if isinstance(driver, dict) else {}
        if isinstance(driver, dict) and driver.get("Name") == "overlay" and data.get("UpperDir"):
            upper[str(item.get("Name"))] = Path(data["UpperDir"])
    for host in hosts:
        source = info.dir / "hosts" / host.name / "root"
        target = upper.get(host.container)
        if target is not None and target.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True, symlinks=True)
        else:
            podman("cp", f"{source}/.", f"{host.container}:/")


def _wait_host(info: SandboxInfo, host: Host) -> Host:
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
    current = _inspect(host.container)
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


def _healthy(info: SandboxInfo) -> bool:
    """Everything of a sandbox is in place and running (the fast path of a repeated `up`)."""
    if info.state != "up" or not all(p.is_file() for p in (info.inventory, info.known_hosts, info.key)):
        return False
    if aptcache.running_pid() is None or not guard.covers(info):
        return False
    if _network_subnet(info.network) is None:
        return False
    out = podman(
        "ps", "--filter", f"label={LABEL}={info.name}", "--filter", "status=running", "--format", "{{.Names}}"
    ).stdout.split()
    return sorted(out) == sorted(h.container for h in info.hosts)


# ---------------------------------------------------------------- down


def down(name: str, progress: Progress | None = None) -> bool:
    """Remove sandbox NAME: containers, network, guard entries, files (and the cache with the last one).

    Returns False when there was nothing to remove.
    """
    validate_name(name)
    preflight()
    prog = progress or NullProgress()
    with locked(f"sandbox-{name}"):
        return _teardown(name, prog)


def down_all(progress: Progress | None = None) -> list[str]:
    preflight()
    found = set(names()) | set(_leftover_names())
    return [n for n in sorted(found) if down(n, progress)]


def _leftover_names() -> list[str]:
    out = podman("ps", "-a", "--filter", f"label={LABEL}", "--format", '{{index .Labels "' + LABEL + '"}}').stdout
    nets = podman("network", "ls", "--filter", f"label={LABEL}", "--format", "{{.Name}}").stdout
    found = set(out.split())
    found |= {n[len(CONTAINER_PREFIX) :] for n in nets.split() if n.startswith(CONTAINER_PREFIX)}
    return sorted(n for n in found if NAME_RE.match(n))


def _remove_containers(name: str) -> int:
    out = podman("ps", "-a", "--filter", f"label={LABEL}={name}", "--format", "{{.Names}}").stdout.split()
    info = load(name)
    wanted = set(out) | ({h.container for h in info.hosts} if info else set())
    present = [c for c in wanted if _inspect(c) is not None]
    if present:
        podman("rm", "-f", "-v", "--time", "0", *present)
    return len(present)


def _teardown(name: str, prog: Progress | None = None) -> bool:
    prog = prog or NullProgress()
    info = load(name)
    sbdir = sandbox_dir(name)
    if info is not None:
        _close_ssh_masters(info)
    removed = _remove_containers(name)
    net_name = network_name(name)
    had_net = podman("network", "exists", net_name, check=False).returncode == 0
    if had_net:
        podman("network", "rm", "-f", net_name)
    had_dir = sbdir.exists()
    shutil.rmtree(sbdir, ignore_errors=True)
    lock_path(f"sandbox-{name}").unlink(missing_ok=True)
    _forget_facts(info)
    with locked("global"):
        rest = _guarded()
        guard.sync(rest)
        if not rest and not _all_states():
            aptcache.stop()
            restore_machine_sysctls(prog.step)
    if removed or had_net or had_dir:
        prog.step(f"sandbox {name!r} removed ({removed} containers)")
        return True
    return False


def _close_ssh_masters(info: SandboxInfo) -> None:
    """Close Ansible's persistent SSH connections to the hosts, so a recreated host is not reached through them."""
    cp_dir = Path.home() / ".ansible" / "cp"
    if not cp_dir.is_dir():
        return
    for host in info.hosts:
        # ansible names the socket sha1("HOST-PORT-USER")[:10] (ssh connection plugin, _create_control_path)
        digest = hashlib.sha1(f"{host.ip}-{info.port}-{info.user}".encode(), usedforsecurity=False).hexdigest()[:10]
        sock = cp_dir / digest
        if sock.exists():
            run(["ssh", "-o", f"ControlPath={sock}", "-O", "exit", f"{info.user}@{host.ip}"], check=False, timeout=5)
            sock.unlink(missing_ok=True)


def _forget_facts(info: SandboxInfo | None) -> None:
    """Drop facts Ansible cached for these host names (a recreated host is a new machine)."""
    if info is None:
        return
    with contextlib.suppress(RuntimeError):
        facts = paths.repo_root() / ".cache" / "facts"
        for host in info.hosts:
            (facts / host.name).unlink(missing_ok=True)


# ---------------------------------------------------------------- status


def status(name: str | None = None) -> list[SandboxInfo]:
    """The sandboxes on this machine (or just NAME) with their live state."""
    preflight()
    wanted = [validate_name(name)] if name else sorted(set(names()) | set(_leftover_names()))
    running = set(
        podman(
            "ps", "--filter", f"label={LABEL}", "--filter", "status=running", "--format", "{{.Names}}"
        ).stdout.split()
    )
    result = []
    for n in wanted:
        info = load(n)
        if info is None:
            if n in _leftover_names():
                result.append(
                    SandboxInfo(name=n, hosts=[], subnet="", gateway="", network=network_name(n), directory="")
                )
                result[-1].state = "leftover (run down)"
            continue
        up_count = sum(h.container in running for h in info.hosts)
        if info.state == "up":
            info.state = "up" if up_count == len(info.hosts) else f"degraded ({up_count}/{len(info.hosts)} running)"
        info.groups = host_groups([h.name for h in info.hosts])
        result.append(info)
    return result
