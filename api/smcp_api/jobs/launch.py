"""The first process of a job: drop to the job's own user, clean the environment, start an ssh-agent, run Ansible.

ansible-runner spawns `python -m smcp_api.jobs.launch run SPEC -- ansible-playbook ...` (the job's `args`
file). It switches to the job user for good (groups, gid, uid; no ambient capabilities; no_new_privs),
keeps only an allowlist of environment variables, starts an ssh-agent of the job's own, loads each private
key into it from a FIFO the API writes into (so no key is ever a file on disk), runs ansible-playbook and
passes on its exit code. When ansible-playbook ends, the agent and the keys in its memory end with it.

Standard library only: it runs before anything else of the job and must start fast.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import socket as _socket
import subprocess
import sys
import time
from pathlib import Path

SPAWNED_FILE = ".smcp-spawned"
"""Written in the job's directory once ansible-playbook has been spawned: its time.time() (the worker reads it for
smcp_job_start_seconds; a job process could change it, so the reader bounds and checks it)."""
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# The only variables a job's Ansible process inherits from the service (plus what SPEC sets).
ENV_PREFIXES = ("ANSIBLE_", "AWX_")
ENV_NAMES = frozenset(
    {"SMCP_JOB_ID", "JOB_ID", "LANG", "LC_ALL", "TZ", "RUNNER_OMIT_EVENTS", "RUNNER_ONLY_FAILED_EVENTS"}
)
# Never handed on, whatever their prefix says.
ENV_DENIED = frozenset(
    {"ANSIBLE_VAULT_PASSWORD_FILE", "ANSIBLE_BECOME_PASSWORD_FILE", "ANSIBLE_CONNECTION_PASSWORD_FILE"}
)


def job_environment(inherited: dict[str, str], spec: dict[str, object]) -> dict[str, str]:
    """The environment of the job's processes: the allowlist of `inherited`, then the spec's own values."""
    env = {
        key: value
        for key, value in inherited.items()
        if (key.startswith(ENV_PREFIXES) or key in ENV_NAMES) and key not in ENV_DENIED
    }
    extra = spec.get("env") or {}
    if not isinstance(extra, dict):
        raise TypeError(f"launch spec: env must be a mapping, got {type(extra).__name__}")
    env.update({str(k): str(v) for k, v in extra.items()})
    return env


def _prctl(option: int, arg2: int = 0, arg3: int = 0) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, arg2, arg3, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl({option}) failed: {os.strerror(errno)}")


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]


def clear_capabilities() -> None:
    """Empty the effective, permitted and inheritable sets (capset). A switch from root to another uid does this
    by itself; a switch between two non-root uids (a service user with ambient capabilities) keeps them."""
    header = _CapHeader(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3
    data = (_CapData * 2)()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(ctypes.byref(header), data) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"capset failed: {os.strerror(errno)}")


def drop_privileges(uid: int, gid: int) -> None:
    """Become uid:gid with no supplementary groups, no capabilities and no way to regain any."""
    if os.getuid() != uid or os.geteuid() != uid:
        os.setgroups([])
        os.setresgid(gid, gid, gid)
        os.setresuid(uid, uid, uid)
    clear_capabilities()
    try:
        _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    except OSError:
        pass  # kernels without ambient capabilities have none to clear
    _prctl(PR_SET_NO_NEW_PRIVS, 1)
    if os.getuid() == 0 or os.geteuid() == 0:
        raise PermissionError("a job must not run as root")


def _usage() -> SystemExit:
    return SystemExit("usage: python -m smcp_api.jobs.launch run SPEC -- COMMAND...")


def _answers(path: str) -> bool:
    """Whether the agent accepts connections on `path` (the socket file exists from bind(), before listen():
    an ssh-add in between would be refused)."""
    with _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM) as probe:
        try:
            probe.connect(path)
        except OSError:
            return False
    return True


def start_agent(socket: str, env: dict[str, str], fifos: list[str]) -> subprocess.Popen[bytes]:
    """An ssh-agent of the job's own (foreground, no stdio) holding the keys read from `fifos`."""
    agent = subprocess.Popen(  # fixed argv, no shell
        ["ssh-agent", "-D", "-a", socket],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    for _ in range(2500):  # the agent answers within milliseconds: look often (this wait delays every job)
        if _answers(socket) or agent.poll() is not None:
            break
        time.sleep(0.002)
    if fifos:
        # ssh-add reads each FIFO once; the API's writer gives up if nobody reads, so a failure here is final.
        done = subprocess.run(
            ["ssh-add", "-q", *fifos], stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, check=False
        )
        for fifo in fifos:
            Path(fifo).unlink(missing_ok=True)
        if done.returncode != 0:
            agent.kill()
            sys.stderr.write(f"smcp job: loading the SSH keys into the job's agent failed: {done.stderr.strip()}\n")
            raise SystemExit(4)
    return agent


def stage_run(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        raise _usage()
    spec = json.loads(Path(argv[0]).read_text())
    command = argv[2:]
    drop_privileges(int(spec["uid"]), int(spec["gid"]))
    os.umask(0o077)
    os.chdir(str(spec["home"]))
    env = job_environment(dict(os.environ), spec)
    env["SSH_AUTH_SOCK"] = str(spec["agent_socket"])
    agent = start_agent(env["SSH_AUTH_SOCK"], env, [str(p) for p in spec.get("key_fifos") or []])
    try:
        child = subprocess.Popen(command, env=env)
        try:
            Path(SPAWNED_FILE).write_text(f"{time.time():.6f}")
        except OSError:
            pass  # a figure for the metrics only
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, lambda num, _frame: child.send_signal(num))
        return child.wait()
    finally:
        agent.kill()  # the keys leave memory with the job
        agent.wait()


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "run":
        raise _usage()
    sys.exit(stage_run(sys.argv[2:]))


if __name__ == "__main__":
    main()
