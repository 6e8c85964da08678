"""The job launcher waits for its ssh-agent to accept connections, not only for the socket file: the file exists
from bind(), and an ssh-add that connects before listen() is refused (the job then failed with rc 4, seen in
tests/bench/dispatch_bench.py on a loaded machine)."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

from smcp_api.jobs import launch


def test_a_bound_socket_that_does_not_listen_yet_is_not_ready(tmp_path: Path) -> None:
    path = str(tmp_path / "agent.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
        server.bind(path)
        assert os.path.exists(path)  # what the launcher used to wait for
        assert not launch._answers(path)
        server.listen()
        assert launch._answers(path)
    assert not launch._answers(str(tmp_path / "missing.sock"))


def test_the_agent_holds_a_key_read_from_a_fifo(tmp_path: Path) -> None:
    """start_agent with a real ssh-agent and ssh-add: the key fed through the FIFO is in the agent."""
    key = tmp_path / "id"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    fifo = tmp_path / "k.fifo"
    os.mkfifo(fifo, 0o600)  # ssh-add refuses a private key others may read
    sock = str(tmp_path / "agent.sock")
    env = {"PATH": os.environ["PATH"], "SSH_AUTH_SOCK": sock}
    writer = subprocess.Popen(["sh", "-c", f"cat {key} > {fifo}"])
    agent = launch.start_agent(sock, env, [str(fifo)])
    try:
        writer.wait(30)
        listed = subprocess.run(["ssh-add", "-l"], env=env, capture_output=True, text=True, check=False)
        assert listed.returncode == 0, listed.stderr
        assert "ED25519" in listed.stdout
        assert not fifo.exists()  # removed once read
    finally:
        agent.kill()
        agent.wait()
