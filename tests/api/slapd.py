"""A real OpenLDAP server for the LDAP login tests: Debian's slapd in a temporary directory.

Everything of the server is its own: a generated slapd.conf (core, cosine, inetorgperson and nis schemas, one
mdb database), its data directory, its pid file and a free port on 127.0.0.1; the directory is filled with
slapadd before the start. `slapd_server()` starts it and stops it (and removes the directory) at the end; the
system's slapd service is never used.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SLAPPASSWD = Path("/usr/sbin/slappasswd")
SCHEMAS = Path("/etc/ldap/schema")
SUFFIX = "dc=smcp,dc=test"
ADMIN_DN = f"cn=admin,{SUFFIX}"
START_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Slapd:
    url: str
    port: int
    base: Path
    admin_password: str
    process: subprocess.Popen[bytes]


def _hash(password: str) -> str:
    done = subprocess.run([str(SLAPPASSWD), "-s", password], capture_output=True, text=True, check=True, timeout=30)
    return done.stdout.strip()


def _config(base: Path, admin_hash: str) -> str:
    schemas = "\n".join(f"include {SCHEMAS / name}.schema" for name in ("core", "cosine", "inetorgperson", "nis"))
    return f"""{schemas}
pidfile {base / "slapd.pid"}
argsfile {base / "slapd.args"}
modulepath /usr/lib/ldap
moduleload back_mdb
database mdb
maxsize 16777216
suffix "{SUFFIX}"
rootdn "{ADMIN_DN}"
rootpw {admin_hash}
directory {base / "data"}
access to attrs=userPassword by self write by anonymous auth by * none
access to * by * read
"""


def _entries(users: dict[str, str], groups: dict[str, list[str]]) -> str:
    parts = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\ndc: smcp\no: smcp test\n",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people\n",
        f"dn: ou=groups,{SUFFIX}\nobjectClass: organizationalUnit\nou: groups\n",
    ]
    for uid, password in users.items():
        parts.append(
            f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\n"
            f"userPassword: {_hash(password)}\n"
        )
    for cn, members in groups.items():
        lines = "".join(f"member: uid={m},ou=people,{SUFFIX}\n" for m in members) or f"member: {ADMIN_DN}\n"
        parts.append(f"dn: cn={cn},ou=groups,{SUFFIX}\nobjectClass: groupOfNames\ncn: {cn}\n{lines}")
    return "\n".join(parts)


def _ready(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextmanager
def slapd_server(users: dict[str, str], groups: dict[str, list[str]]) -> Iterator[Slapd]:
    """A started slapd with `users` (uid -> password) under ou=people and `groups` (cn -> member uids) under
    ou=groups; skipped when slapd is not installed."""
    if not SLAPD.exists():
        pytest.skip(f"slapd is not installed ({SLAPD} missing); install it with 'make setup'")
    base = Path(tempfile.mkdtemp(prefix="smcp-slapd-", dir="/tmp"))
    (base / "data").mkdir(mode=0o700)
    admin_password = "admin-" + base.name
    conf = base / "slapd.conf"
    conf.write_text(_config(base, _hash(admin_password)))
    ldif = base / "data.ldif"
    ldif.write_text(_entries(users, groups))
    subprocess.run([str(SLAPADD), "-f", str(conf), "-l", str(ldif)], capture_output=True, check=True, timeout=60)
    port = free_port()
    log = base / "slapd.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SLAPD), "-d", "0", "-f", str(conf), "-h", f"ldap://127.0.0.1:{port}/"],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Slapd(url=f"ldap://127.0.0.1:{port}", port=port, base=base, admin_password=admin_password, process=process)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(port):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"slapd did not start (rc {process.poll()}); its log ends:\n{tail}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        shutil.rmtree(base, ignore_errors=True)
