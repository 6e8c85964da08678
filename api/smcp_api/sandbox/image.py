"""The sandbox base image: Debian 12 minbase from debootstrap, built once through the apt cache.

The recipe (suite, packages, the setup script) is hashed; the hash is the image tag and the
`smcp.recipe` label, so a changed recipe builds a new image and an unchanged one is reused.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from smcp_api import paths
from smcp_api.sandbox.model import APT_CACHE_PORT, SSH_USER, SandboxError
from smcp_api.sandbox.system import podman, podman_env, run

REPOSITORY = "localhost/smcp-sandbox"
LABEL = "smcp.recipe"
SUITE = "bookworm"
PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "iproute2",
    "iputils-ping",
    "procps",
    "sudo",
    "ca-certificates",
)
MASKED_UNITS = (
    "getty.target",
    "console-getty.service",
    "serial-getty@.service",
    "getty@.service",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "systemd-journald-audit.socket",
)
SOURCES = f"""\
deb http://deb.debian.org/debian {SUITE} main
deb http://deb.debian.org/debian {SUITE}-updates main
deb http://deb.debian.org/debian-security {SUITE}-security main
"""
SSHD_CONFIG = """\
# smcp sandbox host: the host key is generated per host on the machine (docs/sandbox.md).
HostKey /etc/ssh/ssh_host_ed25519_key
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UseDNS no
AuthorizedKeysFile .ssh/authorized_keys /etc/ssh/authorized_keys/%u
"""
SETUP_SCRIPT = f"""\
set -eu
useradd --create-home --shell /bin/bash --user-group {SSH_USER}
install -d -m 0700 -o {SSH_USER} -g {SSH_USER} /home/{SSH_USER}/.ssh
printf '%s ALL=(ALL) NOPASSWD:ALL\\n' {SSH_USER} > /etc/sudoers.d/{SSH_USER}
chmod 0440 /etc/sudoers.d/{SSH_USER}
printf '127.0.0.1\\tlocalhost\\n::1\\tlocalhost ip6-localhost ip6-loopback\\n' > /etc/hosts
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
ln -s /etc/machine-id /var/lib/dbus/machine-id
for unit in {" ".join(MASKED_UNITS)}; do ln -sf /dev/null "/etc/systemd/system/$unit"; done
rm -f /etc/ssh/ssh_host_*
apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /tmp/* /etc/apt/apt.conf.d/01smcp-proxy
"""
FILES = {
    "etc/apt/sources.list": SOURCES,
    "etc/ssh/sshd_config.d/smcp.conf": SSHD_CONFIG,
}


def recipe() -> dict[str, object]:
    return {
        "version": 1,
        "suite": SUITE,
        "variant": "minbase",
        "packages": list(PACKAGES),
        "files": FILES,
        "script": SETUP_SCRIPT,
        "cmd": "/sbin/init",
    }


def recipe_hash(data: dict[str, object] | None = None) -> str:
    blob = json.dumps(recipe() if data is None else data, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def image_ref(digest: str | None = None) -> str:
    return f"{REPOSITORY}:{(digest or recipe_hash())[:12]}"


def present(ref: str, digest: str) -> bool:
    proc = podman("image", "inspect", "--format", '{{index .Labels "' + LABEL + '"}}', ref, check=False)
    return proc.returncode == 0 and proc.stdout.strip() == digest


def ensure(log: Callable[[str], None]) -> tuple[str, bool]:
    """Return (image reference, built now?); build the image when its recipe changed or it is missing."""
    digest = recipe_hash()
    ref = image_ref(digest)
    if present(ref, digest):
        return ref, False
    build(ref, digest, log)
    return ref, True


def build(ref: str, digest: str, log: Callable[[str], None], prune: bool = True) -> None:
    workdir = paths.cache_dir() / "sandbox-image"
    rootfs = workdir / f"rootfs-{digest[:12]}"
    if rootfs.exists():
        shutil.rmtree(rootfs)
    rootfs.mkdir(parents=True)
    try:
        log(f"debootstrap {SUITE} minbase (through the apt cache; ~1 min the first time)")
        mirror = f"http://127.0.0.1:{APT_CACHE_PORT}/debian"
        cmd = ["debootstrap", "--variant=minbase", f"--include={','.join(PACKAGES)}", SUITE, str(rootfs), mirror]
        code, tail = _stream(cmd, log)
        if code != 0:
            raise SandboxError(
                f"debootstrap failed ({' | '.join(tail[-3:])}): check the apt cache log under "
                f"{paths.state_dir() / 'apt-cacher-ng' / 'log'} and the network to deb.debian.org, then retry"
            )
        for rel, text in FILES.items():
            target = rootfs / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
        run(["chroot", str(rootfs), "/bin/sh", "-c", SETUP_SCRIPT])
        log(f"importing image {ref}")
        _import(rootfs, ref, digest)
    finally:
        shutil.rmtree(rootfs, ignore_errors=True)
    if prune:
        _prune_old(ref)


PHASES: tuple[str, ...] = (
    "Retrieving InRelease",
    "Retrieving Release",
    "Retrieving Packages",
    "Installing core",
    "Unpacking required",
    "Configuring required",
)
PHASES += ("Unpacking the base", "Configuring the base", "Base system installed")


def _stream(cmd: list[str], log: Callable[[str], None]) -> tuple[int, list[str]]:
    """Run a long command, report its phase lines as progress; return its exit code and last lines."""
    tail: list[str] = []
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.strip()
            tail = [*tail[-9:], line]
            if line.startswith("I: ") and line[3:].startswith(PHASES):
                log(f"debootstrap: {line[3:]}")
    return proc.returncode, tail


def _import(rootfs: Path, ref: str, digest: str) -> None:
    tar = subprocess.Popen(["tar", "-C", str(rootfs), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        proc = subprocess.run(
            [
                "podman",
                "import",
                "--change",
                'CMD ["/sbin/init"]',
                "--change",
                f"LABEL {LABEL}={digest}",
                "-",
                ref,
            ],
            stdin=tar.stdout,
            capture_output=True,
            text=True,
            env=podman_env(),
            check=False,
        )
    finally:
        if tar.stdout:
            tar.stdout.close()
        tar.wait()
    if proc.returncode != 0 or tar.returncode != 0:
        raise SandboxError(f"podman import failed: {proc.stderr.strip()[-300:]}; check disk space and retry")


def _prune_old(keep: str) -> None:
    """Remove older smcp-sandbox images no container uses (best effort)."""
    out = podman("images", "--format", "{{.Repository}}:{{.Tag}}", REPOSITORY, check=False).stdout
    for ref in out.split():
        if ref != keep:
            podman("rmi", ref, check=False)
