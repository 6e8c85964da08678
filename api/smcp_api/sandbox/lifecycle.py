"""Bring sandboxes up, take them down, report them (the API the CLI and `smcpctl up --sandbox` call)."""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import os
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from smcp_api import paths
from smcp_api.sandbox import aptcache, guard, image
from smcp_api.sandbox.hostfiles import write_host_files
from smcp_api.sandbox.hosts import remove_containers, start_hosts, wait_host
from smcp_api.sandbox.model import (
    CONTAINER_PREFIX,
    LABEL,
    NAME_RE,
    SandboxError,
    SandboxInfo,
    host_groups,
    inventory_yaml,
    known_hosts_text,
    layout,
    network_name,
    parse_subnet,
    validate_hosts,
    validate_name,
)
from smcp_api.sandbox.network import bridge_name, check_free, ensure_network, guarded, network_subnet
from smcp_api.sandbox.progress import NullProgress, Progress
from smcp_api.sandbox.state import all_states, load, names, sandbox_dir, save
from smcp_api.sandbox.system import (
    inotify_headroom,
    lock_path,
    locked,
    podman,
    preflight,
    remember_machine_sysctls,
    restore_machine_sysctls,
    run,
)


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
                _prewarm_for_hosts()
                existing.already_up = True
                existing.groups = host_groups([h.name for h in existing.hosts])
                prog.step(f"sandbox {name!r} is already up")
                return existing
        if wanted is not None and existing is None:
            with locked("global"):
                check_free(name, wanted)
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
        aptcache.prewarm()
        net_name = network_name(name)
        subnet = ensure_network(name, net_name, count, wanted, existing)
        gateway, hosts = layout(name, count, subnet)
        bridge = bridge_name(net_name)
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
        save(info)
        prog.step("egress guard")
        guard.sync(guarded())
        inotify_headroom(count, prog.step)
    with locked("image"):
        prog.step("base image")
        info.image, built = image.ensure(prog.step)
        if built:
            prog.step(f"built {info.image}")
    save(info)
    prog.step("keys and inventory")
    pubkeys = write_host_files(info)
    info.known_hosts.write_text(known_hosts_text(hosts, pubkeys))
    info.inventory.write_text(inventory_yaml(info))
    start_hosts(info, prog)
    prog.start("waiting for boot and ssh", count)
    with ThreadPoolExecutor(max_workers=min(count, 16)) as pool:
        for host in pool.map(lambda h: wait_host(info, h), hosts):
            prog.advance(host.name)
    _prewarm_for_hosts()
    info.state = "up"
    info.groups = host_groups([h.name for h in hosts])
    save(info)
    prog.step(f"sandbox {name!r} up: {count} hosts in {time.monotonic() - t0:.1f} s")
    return info


def _prewarm_for_hosts() -> None:
    """Fetch the indexes through the cache again now that the hosts are up (one fetch at a time, under the global
    lock): bringing many hosts up can take longer than the cache keeps an index fresh, and hosts that then refresh
    side by side would make it refresh the same stale index concurrently ("Failure to move file")."""
    with locked("global"):
        aptcache.prewarm()


def _healthy(info: SandboxInfo) -> bool:
    """Everything of a sandbox is in place and running (the fast path of a repeated `up`)."""
    if info.state != "up" or not all(p.is_file() for p in (info.inventory, info.known_hosts, info.key)):
        return False
    if aptcache.running_pid() is None or not guard.covers(info):
        return False
    if network_subnet(info.network) is None:
        return False
    out = podman(
        "ps", "--filter", f"label={LABEL}={info.name}", "--filter", "status=running", "--format", "{{.Names}}"
    ).stdout.split()
    return sorted(out) == sorted(h.container for h in info.hosts)


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


def _teardown(name: str, prog: Progress | None = None) -> bool:
    prog = prog or NullProgress()
    info = load(name)
    sbdir = sandbox_dir(name)
    if info is not None:
        _close_ssh_masters(info)
    removed = remove_containers(name)
    net_name = network_name(name)
    had_net = podman("network", "exists", net_name, check=False).returncode == 0
    if had_net:
        podman("network", "rm", "-f", net_name)
    had_dir = sbdir.exists()
    shutil.rmtree(sbdir, ignore_errors=True)
    lock_path(f"sandbox-{name}").unlink(missing_ok=True)
    _forget_facts(info)
    with locked("global"):
        rest = guarded()
        guard.sync(rest)
        if not rest and not all_states():
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
