"""`smcp-api`: the console script starts uvicorn, migrates the store and prints the bootstrap token once."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys
import time

import httpx


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _start(tmp_path, port):
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_")}
    env["SMCP_WORKERS"] = "0"
    cmd = [sys.executable, "-m", "smcp_api.server", "--port", str(port), "--data-dir", str(tmp_path / "data")]
    cmd += ["--db-url", f"sqlite:///{tmp_path / 'db' / 'smcp.db'}"]
    proc = subprocess.Popen(cmd, env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "smcp-api did not answer within 60 s"
            time.sleep(0.2)


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    return err


def test_first_start_prints_token_once_and_serves(tmp_path):
    port = _free_port()
    proc = _start(tmp_path, port)
    token_file = tmp_path / "data" / "admin.token"
    token = token_file.read_text().strip()
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "data" / "secret.key").stat().st_mode) == 0o600
    r = httpx.get(f"http://127.0.0.1:{port}/api/v1/tokens", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200 and r.json()[0]["role"] == "admin"
    assert httpx.get(f"http://127.0.0.1:{port}/api/v1/tokens").status_code == 401
    assert token in _stop(proc)
    proc = _start(tmp_path, port)  # second start: same store, nothing printed
    assert token not in _stop(proc)
    assert (tmp_path / "db" / "smcp.db").is_file()


def test_refused_setting_is_named_without_its_value(tmp_path):
    """A URL setting may carry a password: both entry points name the variable and the rule, never the value."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMCP_")}
    env |= {"SMCP_BROKER_URL": "http://smcp:s3cret-in-url@broker/", "SMCP_DATA_DIR": str(tmp_path / "data")}
    for module in ("smcp_api.server", "smcp_api.worker_main"):
        done = subprocess.run(
            [sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 2, (module, done.stderr)
        assert "setting broker_url (SMCP_BROKER_URL): String should match pattern" in done.stderr, done.stderr
        assert "s3cret-in-url" not in done.stdout + done.stderr, (module, done.stderr)
    assert not (tmp_path / "data").exists()
