"""A real RabbitMQ node for the dispatch tests: Debian's rabbitmq-server in a temporary directory.

Everything of the node is its own: data (RABBITMQ_MNESIA_BASE), logs, Erlang cookie (HOME), node name, AMQP
port, distribution port and epmd port (so it neither meets nor disturbs a system RabbitMQ or another test
session's node), no plugins, no system configuration file. `rabbitmq_node()` starts it and stops it (and
its epmd) at the end.
"""

from __future__ import annotations

import os
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

SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
EPMD = Path("/usr/bin/epmd")
START_TIMEOUT = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RabbitNode:
    url: str
    port: int
    base: Path
    log: Path
    process: subprocess.Popen[bytes]
    env: dict[str, str]

    def ctl(self, *args: str) -> str:
        """rabbitmqctl against this node (its name, cookie and epmd port); stdout."""
        done = subprocess.run(
            [str(SERVER.with_name("rabbitmqctl")), "-q", *args],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def queues(self) -> dict[str, dict[str, str]]:
        """Queue name -> its type, durability and ready/unacknowledged message counts."""
        out = self.ctl(
            "list_queues", "--no-table-headers", "name", "type", "durable", "messages_ready", "messages_unacknowledged"
        )
        rows = [line.split("\t") for line in out.splitlines() if line.strip()]
        keys = ("type", "durable", "ready", "unacked")
        return {row[0]: dict(zip(keys, row[1:], strict=True)) for row in rows}


def _env(base: Path, name: str, port: int, dist: int, epmd: int) -> dict[str, str]:
    (base / "enabled_plugins").write_text("")
    (base / "rabbitmq-env.conf").write_text("")
    (base / "rabbitmq.conf").write_text("loopback_users.guest = true\n")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TZ")}
    return {
        **keep,
        "HOME": str(base),  # the Erlang cookie lives here
        "RABBITMQ_NODENAME": f"{name}@localhost",
        "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist),
        "ERL_EPMD_PORT": str(epmd),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "RABBITMQ_LOGS": "-",
        "RABBITMQ_PID_FILE": str(base / "rabbit.pid"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ADVANCED_CONFIG_FILE": str(base / "advanced.config"),
    }


def _ready(url: str) -> bool:
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=2) as conn:
            conn.ensure_connection(max_retries=1)
        return True
    except Exception:
        return False


@contextmanager
def rabbitmq_node(name: str | None = None) -> Iterator[RabbitNode]:
    """A started node (AMQP on 127.0.0.1, user guest); skipped when rabbitmq-server is not installed."""
    if not SERVER.exists():
        pytest.skip(f"rabbitmq-server is not installed ({SERVER} missing); install it with 'make setup'")
    base = Path(tempfile.mkdtemp(prefix="smcp-rabbit-", dir="/tmp"))
    port, dist, epmd = free_port(), free_port(), free_port()
    name = name or f"smcpt{os.getpid()}x{port}"
    env = _env(base, name, port, dist, epmd)
    log = base / "server.log"
    url = f"amqp://guest:guest@127.0.0.1:{port}//"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(SERVER)], env=env, cwd=base, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    node = RabbitNode(url=url, port=port, base=base, log=log, process=process, env=env)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"rabbitmq-server did not start (rc {process.poll()}); its log ends:\n{tail}")
            time.sleep(0.3)
        yield node
    finally:
        _stop(node, epmd)


def _stop(node: RabbitNode, epmd_port: int) -> None:
    if node.process.poll() is None:
        try:
            os.killpg(node.process.pid, signal.SIGTERM)  # the script and its beam.smp; RabbitMQ stops cleanly
        except ProcessLookupError:
            pass
        try:
            node.process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(node.process.pid, signal.SIGKILL)
            node.process.wait(10)
    # beam.smp may outlive the script for a moment: wait until nothing holds the AMQP port
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", node.port)) != 0:
                break
        time.sleep(0.2)
    # this node's own epmd (started by the node as a daemon on its own port) ends with it
    subprocess.run(
        [str(EPMD), "-kill"], env={"ERL_EPMD_PORT": str(epmd_port)}, capture_output=True, check=False, timeout=30
    )
    shutil.rmtree(node.base, ignore_errors=True)
