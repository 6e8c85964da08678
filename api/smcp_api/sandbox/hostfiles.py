"""The files given to each host before it starts: SSH keys, machine-id, apt proxy."""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from pathlib import Path

from smcp_api.sandbox.model import (
    APT_CACHE_PORT,
    Host,
    SandboxInfo,
)
from smcp_api.sandbox.system import (
    podman,
    podman_json,
    run,
)


def keygen(path: Path, comment: str) -> str:
    if not path.is_file() or not path.with_suffix(".pub").is_file():
        path.unlink(missing_ok=True)
        path.with_suffix(".pub").unlink(missing_ok=True)
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    os.chmod(path, 0o600)
    return path.with_suffix(".pub").read_text().strip()


def write_host_files(info: SandboxInfo) -> dict[str, str]:
    """The client key for user smcp and one host key per host, all generated here on the machine."""
    client_pub = keygen(info.key, f"smcp-sandbox-{info.name}")
    pubkeys = {}
    for host in info.hosts:
        root = info.dir / "hosts" / host.name / "root"
        for sub in ("etc/ssh/authorized_keys", "etc/apt/apt.conf.d"):
            (root / sub).mkdir(parents=True, exist_ok=True)
        for d in [root, *(p for p in root.rglob("*") if p.is_dir())]:
            os.chmod(d, 0o755)  # noqa: S103 - copied into the host as its /etc dirs
        pubkeys[host.name] = keygen(root / "etc/ssh/ssh_host_ed25519_key", f"root@{host.name}")
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


def files_digest(info: SandboxInfo, host: Host) -> str:
    """A digest of the files given to the host (keys, machine-id, apt proxy): a host made with others is recreated."""
    root = info.dir / "hosts" / host.name / "root"
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def give_files(info: SandboxInfo, hosts: list[Host]) -> None:
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
