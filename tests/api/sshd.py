"""A real OpenSSH server on 127.0.0.1 for host-key tests: `sshd -D` with its own config and fresh host keys."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SSHD = Path("/usr/sbin/sshd")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, key_type: str, bits: int | None = None) -> Path:
    """A new key pair at `path` (private, 0600) and `path`.pub; returns the .pub path."""
    size = ["-b", str(bits)] if bits else []
    subprocess.run(["ssh-keygen", "-q", "-t", key_type, *size, "-N", "", "-C", "", "-f", str(path)], check=True)
    return path.with_name(path.name + ".pub")


def keygen_fingerprint(pub: Path) -> str:
    """The SHA256 fingerprint `ssh-keygen -lf` prints for a public key file."""
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


@dataclass
class LocalSshd:
    port: int
    host_keys: dict[str, Path]  # key type -> public key file

    def fingerprint(self, key_type: str) -> str:
        return keygen_fingerprint(self.host_keys[key_type])


@contextmanager
def local_sshd(root: Path, key_types: tuple[str, ...] = ("ed25519", "ecdsa")) -> Iterator[LocalSshd]:
    """sshd in the foreground on a free port of 127.0.0.1; stopped (by its own pid) at the end."""
    if not SSHD.exists():
        pytest.fail("these tests run a real sshd: install openssh-server (`make setup` does)")
    root.mkdir(parents=True, exist_ok=True)
    keys = {t: keygen(root / f"ssh_host_{t}_key", t) for t in key_types}
    port = free_port()
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nPidFile {root / 'sshd.pid'}\n"
        + "".join(f"HostKey {p.with_suffix('')}\n" for p in keys.values())
        + "UsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nAuthorizedKeysFile none\n"
        "PermitRootLogin no\nUseDNS no\n"
    )
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory
    log = (root / "sshd.log").open("w")
    proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        for _ in range(200):  # until it listens (a bounded wait, not a timing assertion)
            if proc.poll() is not None:
                pytest.fail(f"sshd exited: {(root / 'sshd.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"sshd did not listen on port {port}: {(root / 'sshd.log').read_text()}")
        yield LocalSshd(port, keys)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
