"""The shared apt cache (apt-cacher-ng) the sandbox hosts and the image build fetch packages through.

One process for all sandboxes, with smcp's own config dir (the machine's /etc/apt-cacher-ng is not
used), started by the first `up` as a plain background process with a pidfile (PID 1 is not systemd
here) and stopped by the last `down`. It listens on every address; the nftables guard only lets
loopback and the sandbox bridges reach the port.

Concurrent index refreshes: apt-cacher-ng 3.7 can fail or stall a client when several revalidate the same
InRelease at once (its log: "Failure to move file .../InRelease ... File exists"). So the indexes the hosts
read are fetched once, one after the other, through the cache whenever a sandbox is brought up (`prewarm`,
bounded, with a clear error if the cache stalls; again once the hosts are up), and FreshIndexMaxAge is long:
this makes collisions rare, not impossible (CI runs still logged a few; a run without the second pre-warm
and with the default FreshIndexMaxAge hung a molecule host's apt-get for 17 minutes). The hosts' apt retries
a failed fetch (Acquire::Retries 3).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from smcp_api import paths
from smcp_api.sandbox.model import APT_CACHE_PORT, SandboxError
from smcp_api.sandbox.system import cmdline, pid_alive

BACKEND = "http://deb.debian.org/debian/"
USER = "apt-cacher-ng"
# The signed indexes every sandbox host refreshes first (the image's sources.list), as the hosts ask for them.
INDEXES = (
    "http://deb.debian.org/debian/dists/bookworm/InRelease",
    "http://deb.debian.org/debian/dists/bookworm-updates/InRelease",
    "http://deb.debian.org/debian-security/dists/bookworm-security/InRelease",
)
# How long one index fetch through the cache may take before the cache is reported as stalled.
PREWARM_TIMEOUT = 60.0
# Indexes stay fresh this long after a fetch: hosts asking within it are answered from the cache. Long, so that
# hosts refreshing side by side minutes after a sandbox came up (molecule, tests) rarely meet an index that went
# stale in between (at 300 s a CI run met one: 20 hosts refreshed it at once). Sandbox hosts are test machines:
# an index half an hour old is fine for them.
FRESH_INDEX_MAX_AGE = 1800


def conf_dir() -> Path:
    return paths.state_dir() / "apt-cacher-ng"


def data_dir() -> Path:
    return paths.cache_dir() / "apt-cacher-ng"


def pidfile() -> Path:
    return conf_dir() / "apt-cacher-ng.pid"


def _config() -> str:
    return "\n".join(
        [
            "# Written by smcp for the sandbox hosts (docs/sandbox.md); not the machine's apt-cacher-ng.",
            f"CacheDir: {data_dir()}",
            f"LogDir: {conf_dir() / 'log'}",
            "SupportDir: /usr/lib/apt-cacher-ng",
            f"SocketPath: {conf_dir() / 'socket'}",
            f"Port: {APT_CACHE_PORT}",
            "BindAddress: 0.0.0.0",
            "Remap-debrep: file:deb_mirror*.gz /debian ; file:backends_debian",
            "Remap-secdeb: security.debian.org security.debian.org/debian-security"
            " deb.debian.org/debian-security /debian-security ; deb.debian.org/debian-security",
            "ExThreshold: 4",
            # Indexes stay fresh for 30 min after prewarm(): 20 hosts updating at once otherwise race on
            # refreshing the same InRelease ("Failure to move file ... File exists") and some apt runs hang.
            f"FreshIndexMaxAge: {FRESH_INDEX_MAX_AGE}",
            # A download that stops moving is given up after this long (not the 60 s default), so a
            # stalled refresh is retried by the client (Acquire::Retries) instead of holding it.
            "ResponseFreezeDetectTime: 30",
            "FollowIndexFileRemoval: 1",
            "PassThroughPattern: ^$",
            "",
        ]
    )


def _write_config() -> None:
    conf = conf_dir()
    (conf / "log").mkdir(parents=True, exist_ok=True)
    data_dir().mkdir(parents=True, exist_ok=True)
    (conf / "acng.conf").write_text(_config())
    (conf / "backends_debian").write_text(BACKEND + "\n")
    for path in (conf / "log", data_dir()):
        shutil.chown(path, USER, USER)


def running_pid() -> int | None:
    """The pid of our cache process, or None (a stale pidfile is removed)."""
    try:
        pid = int(pidfile().read_text().strip())
    except (OSError, ValueError):
        pidfile().unlink(missing_ok=True)
        return None
    args = cmdline(pid)
    if pid_alive(pid) and any(a.endswith("apt-cacher-ng") for a in args[:3]) and str(conf_dir()) in args:
        return pid
    pidfile().unlink(missing_ok=True)
    return None


def _answers(timeout: float = 0.5) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", APT_CACHE_PORT), timeout=timeout):
        return True
    return False


def ensure() -> int:
    """Start the cache unless it runs with the wanted configuration; return its pid.

    A cache started by an older smcp (another configuration) is restarted with this one.
    """
    pid = running_pid()
    conf = conf_dir() / "acng.conf"
    if pid is not None and _answers() and conf.is_file() and conf.read_text() == _config():
        return pid
    if pid is not None:
        stop()
    if _answers():
        raise SandboxError(
            f"port {APT_CACHE_PORT} is taken by another program (not smcp's apt cache):"
            " stop it (e.g. the machine's apt-cacher-ng) and retry"
        )
    _write_config()
    log = open(conf_dir() / "log" / "foreground.log", "ab")
    proc = subprocess.Popen(
        ["/usr/sbin/apt-cacher-ng", "-c", str(conf_dir()), "ForeGround=1"],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
        close_fds=True,
        user=USER,
        group=USER,
        extra_groups=[],
        cwd="/",
    )
    log.close()
    pidfile().write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and proc.poll() is None:
        if _answers():
            return proc.pid
        time.sleep(0.1)
    stop()
    raise SandboxError(
        f"apt-cacher-ng did not start on port {APT_CACHE_PORT}: see {conf_dir() / 'log'} and fix the cause, then retry"
    )


def prewarm(urls: tuple[str, ...] = INDEXES, timeout: float = PREWARM_TIMEOUT) -> list[str]:
    """Fetch the hosts' indexes through the cache, one at a time; return the URLs fetched.

    Run when a sandbox comes up, before its hosts refresh their package lists side by side: the cache then
    holds fresh copies and answers them without a concurrent remote refresh. Raises SandboxError naming the
    index, the wait and where to look when the cache does not answer within `timeout` seconds.
    """
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://127.0.0.1:{APT_CACHE_PORT}/"}),
    )
    fetched = []
    for url in urls:
        try:
            with opener.open(url, timeout=timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            raise SandboxError(
                f"the apt cache answered {exc.code} for {url}: check the network from this machine to "
                f"{url.split('/')[2]} and the cache log under {conf_dir() / 'log'}, then retry"
            ) from exc
        except (OSError, urllib.error.URLError) as exc:
            raise SandboxError(
                f"the apt cache on port {APT_CACHE_PORT} did not deliver {url} within {timeout:g} s ({exc}): "
                f"see {conf_dir() / 'log'}; `smcpctl sandbox down` of every sandbox stops the cache, the next "
                "`up` starts a fresh one"
            ) from exc
        fetched.append(url)
    return fetched


def stop() -> None:
    """Stop our cache process (and only it); its cached packages stay on disk."""
    pid = running_pid()
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while pid_alive(pid) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        _reap(pid)
    pidfile().unlink(missing_ok=True)


def _reap(pid: int) -> None:
    """Collect the exit status when the cache is our own child (a long-lived caller such as the API)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
