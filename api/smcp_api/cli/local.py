"""`smcpctl up` / `smcpctl down`: the embedded default (API on SQLite in the background, optional sandbox)."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import click

from smcp_api import client as api
from smcp_api import paths
from smcp_api.cli import common, config
from smcp_api.fsmodes import private_dir

DEFAULT_PORT = 8780
DEFAULT_SANDBOX = "demo"
START_TIMEOUT = 90.0
STOP_TIMEOUT = 20.0


def api_dir() -> Path:
    """Where `up` keeps the local service: SMCP_API_DIR, else <state dir>/api (/var/lib/smcp/api)."""
    env = os.environ.get("SMCP_API_DIR")
    return Path(env) if env else paths.state_dir() / "api"


@dataclass
class LocalState:
    """What `up` started, kept in <state>/api/local.json so `down` and a second `up` find it."""

    pid: int = 0
    port: int = DEFAULT_PORT
    url: str = ""
    db_url: str | None = None
    sandboxes: list[str] = field(default_factory=list)

    @staticmethod
    def path() -> Path:
        return api_dir() / "local.json"

    @classmethod
    def load(cls) -> LocalState:
        try:
            data = json.loads(cls.path().read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls()
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def save(self) -> None:
        private_dir(self.path().parent)
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, self.path())


def pidfile() -> Path:
    return api_dir() / "smcp-api.pid"


def logfile() -> Path:
    return api_dir() / "smcp-api.log"


def read_pid() -> int | None:
    try:
        return int(pidfile().read_text().strip())
    except (OSError, ValueError):
        return None


def is_our_api(pid: int | None) -> bool:
    """True when pid is alive and is an smcp-api process (not a recycled pid)."""
    if not pid:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text(errors="replace") if Path(f"/proc/{pid}/stat").exists() else ""
    if ") Z " in stat:  # zombie: exited, not reaped
        return False
    return "smcp-api" in cmdline or "smcp_api.server" in cmdline


def healthy(url: str, timeout: float = 2.0) -> bool:
    try:
        with api.SmcpClient(url, timeout=timeout) as c:
            return c.healthz().get("status") in ("ok", "degraded")
    except api.ApiError:
        return False


def server_command(port: int, db_url: str | None) -> list[str]:
    exe = Path(sys.executable).with_name("smcp-api")
    found = str(exe) if exe.exists() else shutil.which("smcp-api")
    base = [found] if found else [sys.executable, "-m", "smcp_api.server"]
    cmd = [*base, "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(api_dir())]
    return [*cmd, "--db-url", db_url] if db_url else cmd


def log_tail(lines: int = 20) -> str:
    try:
        return "\n".join(logfile().read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def start_api(port: int, db_url: str | None) -> tuple[int, bool]:
    """Start smcp-api in the background unless ours already runs; returns (pid, started_now)."""
    url = f"http://127.0.0.1:{port}"
    state = LocalState.load()
    pid = read_pid()
    if is_our_api(pid):
        assert pid is not None
        if state.port != port:
            click.echo(f"smcp-api already runs (pid {pid}) on port {state.port}; reusing it", err=True)
        return pid, False
    if healthy(url):
        raise click.UsageError(
            f"something else already answers on {url} (no smcp-api pidfile in {api_dir()}); stop it or choose --port"
        )
    private_dir(api_dir())  # holds the database, the secret key and the admin token
    # The log gets the bootstrap admin token on first start: owner-only like the token file.
    fd = os.open(logfile(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "ab") as log:
        log.write(f"\n--- smcpctl up: starting smcp-api on {url} at {time.strftime('%F %T')}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            server_command(port, db_url),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            umask=0o077,  # whatever the service creates (database, WAL, key, token, job files) is owner-only
        )
    pidfile().write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pidfile().unlink(missing_ok=True)
            raise api.Unreachable(f"smcp-api exited with code {proc.returncode}; last log lines:\n{log_tail()}")
        if healthy(url, timeout=1.0):
            return proc.pid, True
        time.sleep(0.3)
    raise api.Unreachable(f"smcp-api did not answer on {url} within {START_TIMEOUT:.0f} s; log: {logfile()}")


def admin_token(url: str, settings: config.Settings) -> str:
    """The bootstrap admin token written by the service (0600), else a working token from the config."""
    candidates: list[str] = []
    token_file = api_dir() / "admin.token"
    try:
        candidates.append(token_file.read_text(encoding="utf-8").strip())
    except OSError:
        pass
    if settings.token:
        candidates.append(settings.token)
    for token in candidates:
        if not token:
            continue
        try:
            with api.SmcpClient(url, token) as c:
                c.list_tokens()
            return token
        except api.AuthError:
            continue
    raise api.AuthError(
        f"no working admin token: {token_file} is missing or revoked and the config has none; "
        f"stop the API (`smcpctl down`) and remove {api_dir()} to bootstrap again, or set SMCP_TOKEN",
        status=401,
    )


# ------------------------------------------------------------------------------------------ sandbox
def sandbox_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "smcp_api.cli.main", "sandbox", *args]


def sandbox_up(count: int, name: str) -> dict[str, Any]:
    """`smcpctl sandbox up --hosts N --name NAME --json` (progress goes to our stderr)."""
    cmd = sandbox_cli("up", "--hosts", str(count), "--name", name, "--json")
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=False)
    if proc.returncode != 0:
        # The sandbox tool exits 2 for problems the user can fix (its message is above); keep that code.
        click.echo(f"smcpctl: error: `smcpctl sandbox up` failed with exit code {proc.returncode}", err=True)
        raise click.exceptions.Exit(common.EXIT_USAGE if proc.returncode == 2 else common.EXIT_API)
    try:
        return json.loads(proc.stdout)
    except ValueError as exc:
        click.echo(f"smcpctl: error: `smcpctl sandbox up --json` printed no JSON: {proc.stdout[:200]!r}", err=True)
        raise click.exceptions.Exit(common.EXIT_API) from exc


def sandbox_down(name: str) -> int:
    return subprocess.run(sandbox_cli("down", "--name", name), check=False).returncode


def _known_hosts_for(text: str, host_name: str, ip: str) -> str:
    lines = []
    for line in text.splitlines():
        names = line.split(" ", 1)[0].split(",")
        if host_name in names or ip in names:
            lines.append(line)
    return "\n".join(lines) + ("\n" if lines else "")


def sandbox_host_bodies(info: dict[str, Any], credential_id: str) -> list[dict[str, Any]]:
    """POST /hosts bodies for a sandbox (`sandbox up --json` output): host-key checking stays on."""
    known_hosts_path = str(info["known_hosts"])
    try:
        known_text = Path(known_hosts_path).read_text(encoding="utf-8")
    except OSError:
        known_text = ""
    groups: dict[str, list[str]] = info.get("groups") or {}
    bodies = []
    for h in info["hosts"]:
        name, ip = h["name"], h["ip"]
        body: dict[str, Any] = {
            "name": name,
            "address": ip,
            "ssh_user": h.get("user") or info.get("user") or "smcp",
            "ssh_port": int(h.get("port") or info.get("port") or 22),
            "credential_id": credential_id,
            "roles": [g for g in ("etcd", "control_plane", "workers") if name in (groups.get(g) or [])],
            "labels": {"sandbox": info["name"]},
            # Only variables the API's policy allows (docs/variables.md): the host key goes in known_hosts,
            # the SSH options are the job's own, the sandbox name is in the labels.
            "vars": {"ansible_python_interpreter": "/usr/bin/python3", "smcp_sandbox": True, "smcp_node_ip": ip},
        }
        known = _known_hosts_for(known_text, name, ip)
        if known:
            body["known_hosts"] = known
        bodies.append(body)
    return bodies


def register_sandbox(c: api.SmcpClient, info: dict[str, Any]) -> list[dict[str, Any]]:
    """Credential (the sandbox key) + one host record per sandbox host; updates records that differ."""
    key_text = Path(info["key"]).read_text(encoding="utf-8")
    digest = hashlib.sha256(key_text.encode()).hexdigest()[:10]
    cred_name = f"sandbox-{info['name']}-{digest}"
    creds = {cr["name"]: cr for cr in c.list_credentials()}
    cred = creds.get(cred_name) or c.create_credential(cred_name, key_text, info.get("user") or "smcp")
    existing = {h["name"]: h for h in c.list_hosts()}
    result = []
    for body in sandbox_host_bodies(info, cred["id"]):
        current = existing.get(body["name"])
        if current is None:
            result.append(c.create_host(body))
            continue
        changes = {k: v for k, v in body.items() if k != "name" and current.get(k) != v}
        if "known_hosts" in changes:  # the API stores the lines normalised: compare the keys
            from smcp_api.hostkeys import fingerprints

            if fingerprints(changes["known_hosts"]) == current.get("host_key_fingerprints"):
                del changes["known_hosts"]
        result.append(c.update_host(current["id"], changes) if changes else current)
    # Hosts of this sandbox that no longer exist (it was re-created smaller): drop their records.
    current_names = {h["name"] for h in info["hosts"]}
    for name, h in existing.items():
        if (h.get("labels") or {}).get("sandbox") == info["name"] and name not in current_names:
            try:
                c.delete_host(h["id"])
            except api.ApiError as exc:
                click.echo(f"smcpctl: stale host record {name} kept: {exc}", err=True)
    # Older keys of this sandbox (re-created sandbox): remove their credentials when unused (best effort).
    for name, old in creds.items():
        if name.startswith(f"sandbox-{info['name']}-") and name != cred_name:
            try:
                c.delete_credential(old["id"])
            except api.ApiError:
                pass
    return result


# ---------------------------------------------------------------------------------------- commands
@click.command("up")
@click.option("--sandbox", "sandbox_hosts", type=click.IntRange(1, 64), help="Also create N sandbox hosts.")
@click.option("--sandbox-name", default=DEFAULT_SANDBOX, show_default=True, help="Name of the sandbox.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--db-url", help="SQLAlchemy URL (default: SQLite in /var/lib/smcp/api/smcp.db).")
def up(sandbox_hosts: int | None, sandbox_name: str, port: int, db_url: str | None) -> None:
    """Start the API locally (idempotent), store its admin token in the config, optionally add sandbox hosts."""
    st = common.state()
    private_dir(api_dir())
    with open(api_dir() / "up.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two `up` at once: the second waits, then reuses the first's API
        state = LocalState.load()
        pid, started = start_api(port, db_url)
        if not started:
            port = state.port or port
            if db_url and db_url != state.db_url:
                used = state.db_url or "SQLite"
                click.echo(f"smcpctl: warning: --db-url ignored: the running API uses {used}", err=True)
        url = f"http://127.0.0.1:{port}"
        state.pid, state.port, state.url = pid, port, url
        if started:
            state.db_url = db_url
        state.save()
    settings = st.settings()
    token = admin_token(url, settings)
    config.save_file(settings.path, {"url": url, "token": token})
    click.echo(f"smcp-api {'started' if started else 'already running'}: {url} (pid {pid}, log {logfile()})")
    click.echo(f"admin token stored in {settings.path} (0600)")
    if os.environ.get("SMCP_TOKEN", token) != token or os.environ.get("SMCP_URL", url).rstrip("/") != url:
        click.echo("smcpctl: warning: SMCP_TOKEN/SMCP_URL in the environment override the stored values", err=True)
    if not sandbox_hosts:
        return
    click.echo(f"sandbox {sandbox_name}: {sandbox_hosts} host(s)...")
    info = sandbox_up(sandbox_hosts, sandbox_name)
    if sandbox_name not in state.sandboxes:
        state.sandboxes.append(sandbox_name)
        state.save()
    with api.SmcpClient(url, token) as c:
        hosts = register_sandbox(c, info)
    click.echo(f"registered {len(hosts)} host(s) with label sandbox={sandbox_name}:")
    common.emit(hosts, "table", [("NAME", "name"), ("ADDRESS", "address"), ("ROLES", "roles"), ("ID", "id")])


def stop_api() -> bool:
    pid = read_pid()
    if not is_our_api(pid):
        pidfile().unlink(missing_ok=True)
        return False
    assert pid is not None
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline and is_our_api(pid):
        time.sleep(0.2)
    if is_our_api(pid):
        os.kill(pid, signal.SIGKILL)
    pidfile().unlink(missing_ok=True)
    return True


@click.command("down")
@click.option("--sandbox", "with_sandbox", is_flag=True, help="Also remove the sandbox(es) `up` created.")
@click.option("--sandbox-name", "sandbox_names", multiple=True, help="Sandbox to remove (default: those of `up`).")
def down(with_sandbox: bool, sandbox_names: tuple[str, ...]) -> None:
    """Stop the local API started by `smcpctl up` (data stays in /var/lib/smcp/api)."""
    state = LocalState.load()
    failed = 0
    if with_sandbox:
        names = list(sandbox_names) or list(state.sandboxes)
        if is_our_api(read_pid()) and state.url:
            _forget_sandbox_hosts(state.url, names)
        for name in names:
            rc = sandbox_down(name)
            failed += rc != 0
            if name in state.sandboxes and rc == 0:
                state.sandboxes.remove(name)
    stopped = stop_api()
    state.pid = 0
    if LocalState.path().parent.exists():
        state.save()
    click.echo("smcp-api stopped" if stopped else "smcp-api was not running")
    if failed:
        click.echo(f"smcpctl: error: {failed} sandbox(es) could not be removed; see above", err=True)
        raise click.exceptions.Exit(common.EXIT_API)


def _forget_sandbox_hosts(url: str, names: list[str]) -> None:
    """Delete the host records of removed sandboxes (best effort: hosts in a cluster stay)."""
    try:
        token = admin_token(url, common.state().settings())
        with api.SmcpClient(url, token) as c:
            for h in c.list_hosts():
                if (h.get("labels") or {}).get("sandbox") in names:
                    try:
                        c.delete_host(h["id"])
                    except api.ApiError as exc:
                        click.echo(f"smcpctl: host {h['name']} kept: {exc}", err=True)
            for cred in c.list_credentials():
                if any(cred["name"].startswith(f"sandbox-{n}-") for n in names):
                    try:
                        c.delete_credential(cred["id"])
                    except api.ApiError as exc:
                        click.echo(f"smcpctl: credential {cred['name']} kept: {exc}", err=True)
    except api.ApiError as exc:
        click.echo(f"smcpctl: could not remove sandbox host records: {exc}", err=True)
