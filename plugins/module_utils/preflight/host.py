# -*- coding: utf-8 -*-
# Copyright: (c) 2026, smcp developers
# Apache License 2.0 (see LICENSE)
"""``HostView``: read-only access to the host (tests subclass it or point ``root`` at a tree)."""

from __future__ import annotations

import ctypes
import os
import socket
import struct

try:
    import fcntl
except ImportError:  # pragma: no cover - non-POSIX controller importing the constants
    fcntl = None  # type: ignore[assignment]

# adjtimex(2) return values
_TIME_ERROR = 5


class HostView(object):
    """Read-only access to the host. Tests subclass it (or point ``root`` at a tree)."""

    def __init__(self, root="/"):
        # type: (str) -> None
        self.root = root

    def path(self, path):
        # type: (str) -> str
        return os.path.join(self.root, path.lstrip("/"))

    def read(self, path):
        # type: (str) -> str | None
        try:
            with open(self.path(path), "r", errors="replace") as handle:
                return handle.read()
        except (IOError, OSError):
            return None

    def exists(self, path):
        # type: (str) -> bool
        return os.path.lexists(self.path(path))

    def isdir(self, path):
        # type: (str) -> bool
        return os.path.isdir(self.path(path))

    def listdir(self, path):
        # type: (str) -> list
        try:
            return os.listdir(self.path(path))
        except OSError:
            return []

    def readlink(self, path):
        # type: (str) -> str | None
        try:
            return os.readlink(self.path(path))
        except OSError:
            return None

    def disk(self, path):
        # type: (str) -> dict | None
        """Free MiB and device id of the filesystem holding ``path``."""
        try:
            st = os.statvfs(self.path(path))
            dev = os.stat(self.path(path)).st_dev
        except OSError:
            return None
        return {"free_mb": st.f_bavail * st.f_frsize // (1024 * 1024), "dev": dev}

    def cpus(self):
        # type: () -> int
        try:
            return len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            return os.cpu_count() or 0

    def machine(self):
        # type: () -> str
        return os.uname()[4]

    def kernel_release(self):
        # type: () -> str
        return os.uname()[2]

    def hostname(self):
        # type: () -> str
        text = self.read("/proc/sys/kernel/hostname")
        return text.strip() if text else socket.gethostname()

    def clock_state(self):
        # type: () -> str
        """``synchronized``, ``unsynchronized`` or ``unknown`` from adjtimex(2) (read-only, modes=0)."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the running interpreter's libc
            buf = ctypes.create_string_buffer(512)
            state = libc.adjtimex(buf)
        except (OSError, AttributeError):
            return "unknown"
        if state < 0:
            return "unknown"
        return "unsynchronized" if state == _TIME_ERROR else "synchronized"

    def lock_holder(self, path):
        # type: (str) -> int | None
        """PID holding a POSIX lock on ``path`` (0 if held by an unknown pid), None if free/absent.

        Opens read-only and asks F_GETLK whether a write lock could be placed;
        nothing is locked or created.
        """
        if fcntl is None:
            return None
        try:
            fd = os.open(self.path(path), os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except OSError:
            return None
        try:
            query = struct.pack("hhqqi4x", fcntl.F_WRLCK, 0, 0, 0, 0)
            answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
            l_type, _whence, _start, _len, pid = struct.unpack("hhqqi4x", answer)
        except (OSError, IOError, struct.error):
            return None
        finally:
            os.close(fd)
        if l_type == fcntl.F_UNLCK:
            return None
        return pid

    def resolve(self, name):
        # type: (str) -> list
        try:
            infos = socket.getaddrinfo(name, None)
        except (socket.gaierror, UnicodeError):
            return []
        return sorted(set(info[4][0] for info in infos))

    def processes(self):
        # type: () -> dict
        """pid -> command name for every process visible in /proc."""
        result = {}
        for entry in self.listdir("/proc"):
            if entry.isdigit():
                comm = self.read("/proc/%s/comm" % entry)
                if comm:
                    result[int(entry)] = comm.strip()
        return result

    def socket_owners(self, inodes):
        # type: (set) -> dict
        """Map socket inode -> 'comm[pid]' by scanning /proc/<pid>/fd (only when a port is taken)."""
        owners = {}
        wanted = set("socket:[%s]" % inode for inode in inodes)
        for pid in self.listdir("/proc"):
            if not pid.isdigit() or len(owners) == len(wanted):
                continue
            for fd in self.listdir("/proc/%s/fd" % pid):
                target = self.readlink("/proc/%s/fd/%s" % (pid, fd))
                if target in wanted:
                    comm = (self.read("/proc/%s/comm" % pid) or "?").strip()
                    owners[target[8:-1]] = "%s[%s]" % (comm, pid)
        return owners
