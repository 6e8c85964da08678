"""Pinned SSH host keys in the store: accept the key a host offers now, record the key seen at first contact.

No HTTP here: the errors are smcp_api.errors classes, mapped to HTTP in smcp_api.main.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import update
from sqlalchemy.orm import Session

from smcp_api import hostkeys
from smcp_api.errors import Conflict, Unprocessable, Unreachable
from smcp_api.models import Host


class KeyNotOffered(Conflict):
    """The host does not offer a key with the fingerprint the operator asked to accept."""

    def __init__(self, host_name: str, wanted: str, offered: list[str]) -> None:
        self.offered = offered
        super().__init__(
            f"host {host_name} does not offer a key with fingerprint {wanted}; it offers "
            f"{', '.join(offered) or 'no key'}. Compare with `ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` "
            "on the host and accept one of those"
        )


def accept_key(session: Session, host: Host, fingerprint: str, timeout: float = hostkeys.SCAN_TIMEOUT) -> Host:
    """Scan `host` now and pin exactly the scanned key(s) with `fingerprint`, replacing the old pin (commits).

    Raises Unprocessable for a malformed fingerprint (before any connection), Unreachable when the host gives
    no key, KeyNotOffered (a Conflict) when none of its keys matches (the pin is left as it was).
    """
    try:
        hostkeys.check_fingerprint(fingerprint)
    except hostkeys.HostKeyError as exc:
        raise Unprocessable(f"fingerprint: {exc}") from exc
    try:
        offered = hostkeys.scan(host.address, host.ssh_port, timeout)
    except hostkeys.ScanError as exc:
        raise Unreachable(f"host {host.name}: {exc}", timeout=exc.timeout) from exc
    chosen = hostkeys.matching(offered, fingerprint)
    if not chosen:
        raise KeyNotOffered(host.name, fingerprint, hostkeys.fingerprints("\n".join(offered)))
    host.known_hosts = hostkeys.normalise("\n".join(chosen), host.address, host.ssh_port)
    session.commit()
    return host


def record_first_contact(session: Session, host_id: str, lines: Sequence[str]) -> bool:
    """Pin `lines` (known_hosts lines scanned at a job's first contact) unless the host has a pin already.

    The write is one guarded `UPDATE hosts SET known_hosts=... WHERE id=... AND known_hosts IS NULL`, so two
    jobs racing never overwrite each other and a pin set meanwhile by an operator wins. Returns whether this call
    recorded the keys (False: pinned already, or the host is gone). Raises hostkeys.HostKeyError for lines that
    are not valid host keys. Commits.
    """
    host = session.get(Host, host_id)
    if host is None:
        return False
    text = hostkeys.normalise("\n".join(lines), host.address, host.ssh_port)
    result = session.execute(
        update(Host).where(Host.id == host_id, Host.known_hosts.is_(None)).values(known_hosts=text),
        execution_options={"synchronize_session": "fetch"},
    )
    session.commit()
    return bool(result.rowcount == 1)  # type: ignore[attr-defined]
