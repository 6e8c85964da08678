"""The API on real sandbox hosts, for the end-to-end tests (test_e2e_sandbox.py, test_ops_e2e_sandbox.py).

``sandbox_up`` brings up a sandbox and removes it afterwards.
``api_on_sandbox`` starts the app with its job worker (the real collection, job isolation, SQLite in a
temporary directory), registers the sandbox's key as a credential and every sandbox host through the API,
each with its own pinned host keys (the lines of the sandbox's known_hosts for that host): the first host
etcd + control plane, the others workers.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from smcp_api.core.config import Settings
from smcp_api.main import create_app

REPO = Path(__file__).resolve().parents[2]


@contextmanager
def sandbox_up(name: str, count: int) -> Iterator[Any]:
    """Sandbox ``name`` with ``count`` hosts (its SandboxInfo), removed afterwards."""
    if shutil.which("podman") is None or os.geteuid() != 0:
        pytest.fail("the sandbox tests need root and podman (run `make setup`)")
    from smcp_api import sandbox as core

    info = core.up(name, count)
    try:
        yield info
    finally:
        core.down(name)


def live_settings(tmp: Path, reachable_dir: Callable[[], Path], job_user_prefix: str) -> Settings:
    """Settings of an embedded smcp-api whose jobs reach sandbox hosts: SQLite and data under ``tmp``, the job
    directories where the job users can reach them, this checkout's collection and ansible.cfg."""
    return Settings(
        data_dir=tmp / "data",
        db_url=f"sqlite:///{tmp / 'smcp.db'}",
        collections_path=REPO / ".venv" / "collections",
        ansible_config=REPO / "ansible.cfg",
        jobs_dir=reachable_dir() / "jobs",
        job_user_prefix=job_user_prefix,
        poll_interval=0.1,
    )


@contextmanager
def api_on_sandbox(
    sandbox: Any,
    tmp: Path,
    reachable_dir: Callable[[], Path],
    job_user_prefix: str,
    credential: str,
    **host_fields: Any,
) -> Iterator[tuple[Any, list[dict[str, Any]]]]:
    """(api, hosts) for ``sandbox`` (a ``smcp_api.sandbox`` SandboxInfo); ``host_fields`` go to every host."""
    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import Api

    settings = live_settings(tmp, reachable_dir, job_user_prefix)
    with TestClient(create_app(settings, start_worker=True)) as client:
        api = Api(client, client.app.state.smcp.bootstrap_token)
        cred = api.credential(credential, sandbox.key.read_text())
        known = sandbox.known_hosts.read_text().splitlines()
        hosts = [
            api.host(
                h.name,
                cred["id"],
                address=h.ip,
                ssh_user=sandbox.user,
                ssh_port=sandbox.port,
                roles=["etcd", "control_plane"] if i == 0 else ["workers"],
                known_hosts="\n".join(line for line in known if line.split(",")[0] == h.name),
                vars={"smcp_sandbox": True, "smcp_node_ip": h.ip, "ansible_python_interpreter": "/usr/bin/python3"},
                **host_fields,
            )
            for i, h in enumerate(sandbox.hosts)
        ]
        yield api, hosts
