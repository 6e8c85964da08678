"""Owner-only files and directories for the service's data (database, secret key, tokens, logs, CLI config).

Standard library only: smcpctl imports it and must start fast.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (with missing parents) mode 0700; an existing one of ours with group/other bits is tightened.

    Shared directories are left alone: one with the sticky bit (/tmp, /var/tmp) or owned by another user.
    """
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    st = path.stat()
    mode = stat.S_IMODE(st.st_mode)
    if not mode & 0o077:
        return path
    if mode & stat.S_ISVTX or st.st_uid != os.geteuid():
        log.warning("%s is shared (mode %04o, owner uid %d): not tightening it", path, mode, st.st_uid)
        return path
    os.chmod(path, mode & DIR_MODE)
    log.info("tightened %s from mode %04o to %04o", path, mode, mode & DIR_MODE)
    return path


def tighten_file(path: Path) -> None:
    """An existing file of ours readable or writable by others becomes 0600 (a missing file is fine)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return
    mode = stat.S_IMODE(st.st_mode)
    if mode & 0o077 and st.st_uid == os.geteuid():
        os.chmod(path, mode & FILE_MODE)


def create_private_file(path: Path) -> None:
    """Make sure `path` exists with mode 0600 (created so, never briefly wider; an existing one is tightened)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, FILE_MODE)
    os.close(fd)
    tighten_file(path)
