"""SSH host keys: scan a host, fingerprint keys, validate known_hosts, word a changed-key failure.

A host record pins its SSH host keys as known_hosts lines that name the host exactly as ssh looks it up
(`address` on port 22, `[address]:port` otherwise), so a job's ssh can check them with
`StrictHostKeyChecking=yes` and a private `UserKnownHostsFile`. Nothing here touches the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import math
import re
import socket
import subprocess
from dataclasses import dataclass

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import load_ssh_public_key

MAX_KNOWN_HOSTS_CHARS = 65536
MAX_KEYS = 16
SCAN_TIMEOUT = 5.0
MAX_SCAN_TIMEOUT = 60.0
# The host key types sshd offers (ssh-keyscan's default set); DSA is refused by OpenSSH >= 7.0 clients anyway.
KEY_TYPES = (
    "ssh-ed25519",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "ssh-rsa",
)
FINGERPRINT_RE = re.compile(r"^SHA256:[A-Za-z0-9+/]{43}$")
_HOSTNAME_RE = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_HOW_TO_GET = "get the host's own lines with `ssh-keyscan -p PORT ADDRESS` (or /etc/ssh/ssh_host_*_key.pub on the host)"


class HostKeyError(ValueError):
    """known_hosts text, an address or a fingerprint that cannot be used; the message names the value and the fix.

    Messages about known_hosts text start with what is wrong ("line 3: ...", "holds no key"): callers prefix the
    field ("known_hosts: ").
    """


class ScanError(Exception):
    """The host gave no SSH host key; `timeout` is True when it did not answer in time (rather than refusing)."""

    def __init__(self, message: str, *, timeout: bool) -> None:
        super().__init__(message)
        self.timeout = timeout


@dataclass(frozen=True)
class HostKey:
    """One public host key: its type (`ssh-ed25519`, ...) and the decoded key blob."""

    key_type: str
    blob: bytes

    @property
    def fingerprint(self) -> str:
        """`SHA256:...` as `ssh-keygen -l` prints it: sha256 of the blob, base64 without padding."""
        return "SHA256:" + base64.b64encode(hashlib.sha256(self.blob).digest()).decode().rstrip("=")

    def line(self, pattern: str) -> str:
        return f"{pattern} {self.key_type} {base64.b64encode(self.blob).decode()}"


def check_address(address: str) -> str:
    """An IP literal or a DNS name (never something ssh-keyscan could read as an option)."""
    try:
        ipaddress.ip_address(address)
        return address.lower()  # as written (ssh looks up the name it was given, lower-cased)
    except ValueError:
        pass
    if not _HOSTNAME_RE.match(address):
        raise HostKeyError(f"address '{address}' is neither an IP address nor a DNS name; use e.g. 192.0.2.10")
    return address.lower()


def host_pattern(address: str, port: int) -> str:
    """The name ssh looks the host up by in known_hosts: `address` on port 22, else `[address]:port`."""
    address = check_address(address)
    if not 1 <= port <= 65535:
        raise HostKeyError(f"port {port} is outside 1-65535")
    return address if port == 22 else f"[{address}]:{port}"


def parse_key(key_type: str, data: str) -> HostKey:
    """A key from its known_hosts fields (type, base64 blob); the blob must be a valid key of that type."""
    if key_type not in KEY_TYPES:
        raise HostKeyError(f"key type '{key_type[:40]}' is not an SSH host key type; use one of {', '.join(KEY_TYPES)}")
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise HostKeyError(f"the {key_type} key is not valid base64 ({exc})") from exc
    if len(blob) < 4 or blob[4 : 4 + int.from_bytes(blob[:4], "big")] != key_type.encode():
        raise HostKeyError(f"the key data is not a {key_type} key (cut short, or a key of another type)")
    try:
        load_ssh_public_key(f"{key_type} {data}".encode())
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise HostKeyError(f"the {key_type} key is not a valid public key ({exc})") from exc
    return HostKey(key_type, blob)


def parse(known_hosts: str) -> list[HostKey]:
    """Every key in `known_hosts` (strict): the host names are ignored, comments and blank lines skipped.

    Refused, naming the line and the fix: markers (@cert-authority trusts a CA rather than pinning this host's
    key; @revoked has no meaning in a pin), lines without host, type and key, unknown key types, bad key data,
    control characters, more than MAX_KEYS keys or MAX_KNOWN_HOSTS_CHARS characters.
    """
    if len(known_hosts) > MAX_KNOWN_HOSTS_CHARS:
        raise HostKeyError(f"has {len(known_hosts)} characters, more than {MAX_KNOWN_HOSTS_CHARS}")
    keys: list[HostKey] = []
    for number, raw in enumerate(known_hosts.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"line {number}"
        if not line.isprintable():
            raise HostKeyError(f"{where} holds control characters; give plain known_hosts lines")
        fields = line.split()
        if fields[0].startswith("@"):
            raise HostKeyError(
                f"{where}: the marker '{fields[0][:40]}' is not accepted (a pin is the host's own key, not a CA "
                f"or a revocation); {_HOW_TO_GET}"
            )
        if fields[0] in KEY_TYPES:
            raise HostKeyError(f"{where} starts with the key type; write 'HOST {fields[0]} KEY' (any host name)")
        if len(fields) < 3:
            raise HostKeyError(f"{where} is not 'HOST KEYTYPE KEY'; {_HOW_TO_GET}")
        try:
            key = parse_key(fields[1], fields[2])
        except HostKeyError as exc:
            raise HostKeyError(f"{where}: {exc}; {_HOW_TO_GET}") from exc
        if key not in keys:
            keys.append(key)
        if len(keys) > MAX_KEYS:
            raise HostKeyError(f"holds more than {MAX_KEYS} keys; pin only this host's keys")
    return keys


def normalise(known_hosts: str, address: str, port: int) -> str:
    """Validated known_hosts for one host: each key once, named as ssh will look the host up (idempotent)."""
    keys = parse(known_hosts)
    if not keys:
        raise HostKeyError(f"holds no key; {_HOW_TO_GET}, or send null to pin at the first job")
    pattern = host_pattern(address, port)
    return "".join(key.line(pattern) + "\n" for key in keys)


def fingerprints(known_hosts: str | None) -> list[str]:
    """The `SHA256:...` fingerprint of each key, in order; lines that do not parse are skipped (never raises)."""
    found: list[str] = []
    for raw in (known_hosts or "")[:MAX_KNOWN_HOSTS_CHARS].splitlines():
        fields = raw.split()
        if len(fields) < 3 or fields[0].startswith(("#", "@")):
            continue
        try:
            fp = parse_key(fields[1], fields[2]).fingerprint
        except HostKeyError:
            continue
        if fp not in found:
            found.append(fp)
    return found


def check_fingerprint(value: str) -> str:
    if not FINGERPRINT_RE.match(value):
        raise HostKeyError(
            f"fingerprint '{value[:80]}' is not a SHA256 fingerprint; write it as `ssh-keygen -l` prints it, "
            "e.g. SHA256: followed by 43 base64 characters"
        )
    return value


def matching(known_hosts_lines: list[str], fingerprint: str) -> list[str]:
    """The lines whose key has `fingerprint`."""
    return [line for line in known_hosts_lines if fingerprints(line) == [fingerprint]]


def scan(address: str, port: int, timeout: float = SCAN_TIMEOUT) -> list[str]:
    """The host keys `address:port` offers now, as known_hosts lines naming it as ssh will look it up.

    Runs `ssh-keyscan -T SECONDS -p PORT -- ADDRESS` (fixed argv, no shell); ScanError when no key came back.
    """
    pattern = host_pattern(address, port)
    address = check_address(address)
    seconds = max(1, min(math.ceil(timeout), int(MAX_SCAN_TIMEOUT)))
    argv = ["ssh-keyscan", "-T", str(seconds), "-p", str(port), "--", address]
    where = f"{address} port {port}"
    _reachable(address, port, seconds, where)
    try:
        done = subprocess.run(  # fixed argv, no shell; the address is validated above
            argv, capture_output=True, text=True, timeout=seconds * 4 + 5, stdin=subprocess.DEVNULL, check=False
        )
    except FileNotFoundError as exc:
        raise ScanError("ssh-keyscan is not installed on the API host; install openssh-client", timeout=False) from exc
    except subprocess.TimeoutExpired as exc:
        raise ScanError(f"{where} did not answer ssh-keyscan within {seconds} s", timeout=True) from exc
    lines: list[str] = []
    for raw in done.stdout.splitlines():
        fields = raw.split()
        if len(fields) < 3 or raw.startswith("#"):
            continue
        try:
            line = parse_key(fields[1], fields[2]).line(pattern)
        except HostKeyError:
            continue  # a key type we do not pin (e.g. DSA from an old sshd)
        if line not in lines:
            lines.append(line)
    if not lines:
        said = "; ".join(x for x in done.stderr.splitlines() if x.strip() and not x.startswith("#"))[:300]
        raise ScanError(
            f"{where} accepted the connection but offered no SSH host key within {seconds} s"
            + (f" (ssh-keyscan: {said})" if said else "")
            + "; check that the port is sshd's (the host's ssh_port)",
            timeout=False,
        )
    return lines


def _reachable(address: str, port: int, seconds: int, where: str) -> None:
    """A TCP connection first, so a failure says what happened (refused, unreachable, no answer, unknown name)."""
    fix = "check the host's address and ssh_port, that sshd runs there and that the API host can reach it"
    try:
        with socket.create_connection((address, port), timeout=seconds):
            return
    except TimeoutError as exc:
        raise ScanError(f"{where} did not answer within {seconds} s; {fix}", timeout=True) from exc
    except socket.gaierror as exc:
        raise ScanError(f"{where}: the name does not resolve ({exc.strerror}); {fix}", timeout=False) from exc
    except OSError as exc:
        raise ScanError(f"{where}: {exc.strerror or exc}; {fix}", timeout=False) from exc


def changed_message(host_name: str, old_fps: list[str], new_fps: list[str]) -> str:
    """The failure of a host whose key changed: both fingerprints and the command that accepts the new key."""
    old = ", ".join(old_fps) or "(none)"
    new = ", ".join(new_fps) or "(no key)"
    accept = (
        f"smcpctl host accept-key {host_name} {new_fps[0]}"
        if new_fps
        else f"smcpctl host accept-key {host_name} SHA256:..."
    )
    return (
        f"host key of {host_name} changed: pinned {old}, the host now offers {new}. This may be a "
        f"man-in-the-middle; if you changed the host's keys yourself (reinstall, new sshd keys), check the new "
        f"fingerprint on the host (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub) and accept it with: {accept}"
    )
