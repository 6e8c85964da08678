"""Job isolation on the management host: a system user per worker slot, a private directory per job.

A job's Ansible process runs as one of the users `smcp-job1` ... `smcp-jobN` (N = worker slots; each slot
has its own user, so two jobs never share a uid), in `<jobs_dir>/<id>` (0700, owned by that user) with its
own HOME, temp dir, SSH ControlPath dir, known_hosts and ssh-agent. The API's data dir (database, secret
key, tokens) is 0700 and owned by the API's user, so a job cannot read it; nor can it read another job's
directory. Private keys reach the job's ssh-agent through FIFOs (never a file on disk).

Several API and worker processes on one machine may share the jobs directory and the job users: a process
takes a user with a lock file held for the job's life (UserPool), and recovery only cleans up after users
that no live process holds (what a crashed process left), never another live process's job.

The API needs root, or CAP_SETUID, CAP_SETGID, CAP_CHOWN, CAP_FOWNER, CAP_DAC_OVERRIDE and CAP_KILL
(the management-plane role's unit grants exactly these), to create the directories for the job users, to
start their processes and to clean up after them.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from smcp_api.fsmodes import private_dir

log = logging.getLogger(__name__)
USER_PREFIX = "smcp-job"
FIFO_OPEN_TIMEOUT = 60.0


class IsolationError(RuntimeError):
    """Jobs cannot be isolated on this host as configured; the message says how to fix it."""


@dataclass(frozen=True)
class JobUser:
    name: str
    uid: int
    gid: int


def _user_command(name: str, home: Path, exists: bool) -> None:
    if exists:
        cmd = ["usermod", "--home", str(home), name]
    else:
        cmd = ["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", str(home)]
        cmd += ["--shell", "/usr/sbin/nologin", "--comment", "smcp job (one worker slot)", name]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode not in (0, 9):  # 9: created meanwhile by another process
        raise IsolationError(f"{cmd[0]} {name} failed: {done.stderr.strip()}")


def ensure_users(root: Path, count: int, prefix: str = USER_PREFIX) -> list[JobUser]:
    """The job users of `count` worker slots, each with the home `root/<name>` (its job's directory).

    Created (or their home corrected) when the API runs as root; otherwise the error names the command.
    Ansible expands `~` of tasks on the controller from the user database, so the home must be real.
    """
    users = []
    for slot in range(1, count + 1):
        name = f"{prefix}{slot}"
        home = root / name
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            entry = None
        if entry is None or entry.pw_dir != str(home):
            if os.geteuid() != 0:
                raise IsolationError(
                    f"job user {name} is missing or its home is not {home}, and the API does not run as root; run "
                    f"`useradd --system --user-group --no-create-home --home-dir {home} --shell /usr/sbin/nologin "
                    f"{name}` (or usermod --home) as the mgmt_plane role does, or lower SMCP_WORKERS"
                )
            if entry is not None:
                kill_user_processes({entry.pw_uid})  # leftovers of a crash; usermod refuses a busy user
            _user_command(name, home, exists=entry is not None)
            entry = pwd.getpwnam(name)
        if entry.pw_uid == 0 or entry.pw_uid == os.getuid():
            raise IsolationError(f"job user {name} has uid {entry.pw_uid}: it must be an unprivileged user of its own")
        users.append(JobUser(name, entry.pw_uid, entry.pw_gid))
    return users


def check_traversable(path: Path) -> None:
    """Every directory above `path` must let other users pass (x for others), or job users cannot reach it."""
    for parent in [path, *path.parents]:
        if parent.exists() and not parent.stat().st_mode & stat.S_IXOTH:
            raise IsolationError(
                f"jobs directory {path}: {parent} is not searchable by other users (mode "
                f"{stat.S_IMODE(parent.stat().st_mode):o}); choose SMCP_JOBS_DIR outside private directories "
                "(default /var/lib/smcp/jobs)"
            )


def prepare_root(root: Path) -> None:
    """The parent of job directories: owned by the API, others may pass through (0711) but not list it."""
    root.mkdir(parents=True, exist_ok=True)
    os.chmod(root, 0o711)  # noqa: S103 (search only: job users reach their own directory, cannot list)
    check_traversable(root)


class UserPool:
    """Hands each running job a user no other running job has, in this process or in any other on this machine
    (API replicas and workers may share the jobs directory and the job users).

    A user is taken with an exclusive `flock` on `lock_dir/<name>.lock`, held for the job's life; the kernel drops
    it when the process dies, so the users of a dead process become free. The file says whether its last holder
    ended cleanly (empty: its processes were ended and its directory removed) or not (its pid): the next holder
    first ends what a dead holder left running as that user, and never touches a user a live process holds.
    """

    def __init__(self, users: list[JobUser], lock_dir: Path) -> None:
        self.users = users
        self.lock_dir = lock_dir
        self._held: dict[str, int] = {}
        self._mutex = threading.Lock()

    def _take(self, user: JobUser) -> tuple[int, bool] | None:
        """(fd, dirty) with the user's lock held, or None when another holder (any process) has it."""
        fd = os.open(self.lock_dir / f"{user.name}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        dirty = bool(os.pread(fd, 64, 0).strip())
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._held[user.name] = fd
        return fd, dirty

    def acquire(self, timeout: float = 30.0) -> JobUser:
        deadline = time.monotonic() + timeout
        while True:
            with self._mutex:
                for user in self.users:
                    if user.name not in self._held and (taken := self._take(user)) is not None:
                        if taken[1]:
                            kill_user_processes({user.uid})  # a dead holder's job may still run as this user
                        return user
            if time.monotonic() > deadline:
                raise IsolationError(
                    "no free job user (more jobs running on this machine than job users: processes sharing "
                    "SMCP_JOBS_DIR and SMCP_JOB_USER_PREFIX share their users; raise SMCP_WORKERS on one of them "
                    "or give each its own prefix)"
                )
            time.sleep(0.05)

    def release(self, user: JobUser) -> None:
        """The user is free again; call after its processes were ended and its directory removed."""
        with self._mutex:
            fd = self._held.pop(user.name, None)
        if fd is not None:
            os.ftruncate(fd, 0)  # ended cleanly
            os.close(fd)  # drops the lock

    def take_free(self) -> list[tuple[JobUser, bool]]:
        """Every user no live process holds, now held by this pool (release each), with whether it is dirty."""
        taken = []
        with self._mutex:
            for user in self.users:
                if user.name not in self._held and (got := self._take(user)) is not None:
                    taken.append((user, got[1]))
        return taken

    @property
    def uids(self) -> set[int]:
        return {u.uid for u in self.users}


def make_job_dir(root: Path, job_id: str, user: JobUser) -> Path:
    """`root/<user>` (0700, the job user's home) with its subdirectories; a leftover is removed first.

    A slot's user runs one job at a time, so its home is that job's directory. The path stays short:
    ssh's ControlPath sockets live below it (108-byte limit).
    """
    path = root / user.name
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    path.mkdir(mode=0o700)
    for sub in ("tmp", "cp", "facts", "keys", "inventory", "artifacts", "artifacts/" + job_id, ".ansible"):
        (path / sub).mkdir(mode=0o700)
    (path / "artifacts" / job_id / "job_events").mkdir(mode=0o700)
    give(path, user)
    return path


def give(path: Path, user: JobUser) -> None:
    """Hand `path` (and all below it) to the job user."""
    for dirpath, dirnames, filenames in os.walk(path):
        os.chown(dirpath, user.uid, user.gid)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), user.uid, user.gid, follow_symlinks=False)


def feed_fifo(path: Path, data: bytes, user: JobUser, timeout: float = FIFO_OPEN_TIMEOUT) -> threading.Thread:
    """A FIFO only the job user can read, written by a thread once the job opens it (or dropped after `timeout`)."""
    os.mkfifo(path, 0o600)
    os.chown(path, user.uid, user.gid)

    def writer() -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError as exc:
                if exc.errno not in (errno.ENXIO, errno.EINTR) or time.monotonic() > deadline:
                    path.unlink(missing_ok=True)
                    return
                time.sleep(0.02)
        try:
            os.set_blocking(fd, True)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except OSError:
            pass
        finally:
            os.close(fd)

    thread = threading.Thread(target=writer, name=f"smcp-fifo-{path.name}", daemon=True)
    thread.start()
    return thread


def processes_of(uids: set[int]) -> list[int]:
    """Pids of the processes in this PID namespace whose real uid is one of `uids`.

    Containers on this host (sandbox hosts among them) share the uid numbers but not the PID namespace:
    their processes are never counted, whatever their uid.
    """
    found = []
    own_ns = os.readlink("/proc/self/ns/pid")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") != own_ns:
                continue
            fields = dict(line.split(":", 1) for line in (entry / "status").read_text().splitlines() if ":" in line)
            if fields["State"].split()[0] not in ("Z", "X") and int(fields["Uid"].split()[0]) in uids:
                found.append(int(entry.name))  # a zombie is gone already: only its exit status waits
        except (OSError, ValueError, KeyError, IndexError):
            continue
    return found


def kill_user_processes(uids: set[int]) -> int:
    """SIGKILL every process of the job users `uids` (a job's user runs nothing but that job)."""
    pids = processes_of(uids)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            continue
    return len(pids)


def remove_job_dir(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.error("job directory %s could not be removed", path)


def recover(root: Path, pool: UserPool) -> list[str]:
    """End what dead processes left as this pool's job users (processes, directories); returns the users cleaned.

    Only users no live process holds are touched (UserPool): jobs of other processes on this machine go on.
    """
    free = pool.take_free()
    try:
        dirty = {u.uid for u, was_dirty in free if was_dirty}
        killed = kill_user_processes(dirty) if dirty else 0
        removed = []
        for user, _ in free:
            path = root / user.name
            if path.is_dir() and not path.is_symlink():
                remove_job_dir(path)
                removed.append(user.name)
    finally:
        for user, _ in free:
            pool.release(user)
    if killed or removed:
        log.warning("job isolation: ended %d leftover job processes, removed job directories %s", killed, removed)
    return removed


class JobIsolation:
    """The jobs directory and the job users of one service."""

    def __init__(self, root: Path, users: list[JobUser]) -> None:
        self.root = root
        self.pool = UserPool(users, lock_dir(root))

    @classmethod
    def setup(cls, root: Path, slots: int, prefix: str = USER_PREFIX) -> JobIsolation:
        prepare_root(root)
        private_dir(lock_dir(root))
        return cls(root, ensure_users(root, max(slots, 1), prefix))

    def recover(self) -> list[str]:
        return recover(self.root, self.pool)


def lock_dir(root: Path) -> Path:
    """The job users' lock files (0700, the API's), beside the jobs directory: `.<name>.locks`."""
    return root.with_name(f".{root.name}.locks")
