"""Checks for the whole test session: the tests leave this machine's configuration as they found it.

Several tests run roles with a local connection (on this machine, the one that runs the tests). They must
point every path the role writes into their temp dir. After the session the trees below must be exactly as
they were before it (same files, modes, contents, link targets); any difference fails the session with the
list of paths, so a role writing onto the test machine (as the cni role once wrote
/etc/cni/net.d/10-flannel.conflist) is caught by the run that does it.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

# What smcp's roles write on a node: never on the machine that runs the tests.
WATCHED = (
    "/etc/cni",
    "/etc/containerd",
    "/etc/crictl.yaml",
    "/etc/etcd",
    "/etc/kubernetes",
    "/etc/modules-load.d",
    "/etc/smcp",
    "/etc/sysctl.d",
    "/etc/systemd/system",
    "/etc/default/kubelet",
)
# Lock files other tools create on first use (podman's cni.lock): not configuration.
IGNORED_SUFFIXES = (".lock",)


def snapshot(roots: tuple[str, ...] = WATCHED) -> dict[str, str]:
    """Path -> a digest of its type, mode and content (or link target), for every entry under roots."""
    found: dict[str, str] = {}

    def record(path: str) -> None:
        if path.endswith(IGNORED_SUFFIXES):
            return
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        mode = stat.S_IMODE(st.st_mode)
        if stat.S_ISLNK(st.st_mode):
            found[path] = f"link {os.readlink(path)}"
        elif stat.S_ISDIR(st.st_mode):
            found[path] = f"dir {mode:o} {st.st_uid}:{st.st_gid}"
        elif stat.S_ISREG(st.st_mode):
            digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
            found[path] = f"file {mode:o} {st.st_uid}:{st.st_gid} {digest}"
        else:
            found[path] = f"other {st.st_mode:o}"

    for root in roots:
        record(root)
        for top, dirs, files in os.walk(root):
            for name in sorted(dirs) + sorted(files):
                record(os.path.join(top, name))
    return found


def differences(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Human-readable list of what changed between two snapshots."""
    out = [f"created {p}" for p in sorted(after.keys() - before.keys())]
    out += [f"removed {p}" for p in sorted(before.keys() - after.keys())]
    out += [f"changed {p}" for p in sorted(before.keys() & after.keys()) if before[p] != after[p]]
    return out


@pytest.fixture(scope="session", autouse=True)
def machine_etc_unchanged() -> Iterator[None]:
    before = snapshot()
    yield
    changed = differences(before, snapshot())
    if changed:
        pytest.fail(
            "the tests changed this machine's configuration (a role run with a local connection must write into "
            "its temp dir): " + "; ".join(changed[:20]),
            pytrace=False,
        )
