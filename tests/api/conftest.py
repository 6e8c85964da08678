"""API test fixtures: an app per test on SQLite and on PostgreSQL, a fake collection with local playbooks."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from fastapi.testclient import TestClient
from smcp_api.core.config import Settings
from smcp_api.db import make_engine, migrate
from smcp_api.main import create_app

REPO = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql/15/bin")
HAVE_PG = bool(os.environ.get("SMCP_TEST_PG_URL")) or (PG_BIN / "initdb").exists()
# Job users of this test session only: a test never ends a job of a running service (the demo's smcp-job
# users) or of another test session running at the same time (start-up recovery ends its users' processes).
TEST_JOB_USERS = f"smcpt{os.getpid() % 100000}-j"
BACKENDS = ["sqlite", *([pytest.param("postgres", marks=pytest.mark.postgres)] if HAVE_PG else [])]

PLAYBOOKS = {
    # Runs on localhost (ansible_connection=local): output, a no_log result, and a task that prints the key file.
    "preflight": """
- name: Local preflight stand-in
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Say hello
      ansible.builtin.debug:
        msg: "hello from {{ inventory_hostname }} in {{ smcp_cluster_name | default('no cluster') }}"
    - name: A secret result
      ansible.builtin.debug:
        msg: "the secret is s3cr3t-value"
      no_log: true
    - name: Print the key file the inventory names (the public half, the job's ssh-agent holds the key)
      ansible.builtin.command: cat {{ ansible_ssh_private_key_file }}
      changed_when: false
""",
    "prepare_hosts": """
- name: Slow local stand-in
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Wait a long time
      ansible.builtin.command: sleep 120
      changed_when: false
""",
    "etcd_backup": """
- name: Failing local stand-in
  hosts: all
  gather_facts: false
  connection: local  # API host vars may not choose the connection (varpolicy)
  vars:
    ansible_python_interpreter: "{{ ansible_playbook_python }}"
  tasks:
    - name: Fail
      ansible.builtin.fail:
        msg: boom
""",
}


@pytest.fixture(scope="session", autouse=True)
def _remove_test_job_users() -> Iterator[None]:
    yield
    for entry in pwd.getpwall():
        if entry.pw_name.startswith(TEST_JOB_USERS) and entry.pw_name[len(TEST_JOB_USERS) :].isdigit():
            subprocess.run(["userdel", entry.pw_name], capture_output=True, check=False)


@pytest.fixture(scope="session")
def shared_tmp() -> Iterator[Path]:
    """A short directory job users can reach (pytest's own temp dirs are 0700): job dirs, the fake collection."""
    path = Path(tempfile.mkdtemp(prefix="smcpt-", dir="/tmp"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _reachable_dir(parent: Path) -> Path:
    path = Path(tempfile.mkdtemp(dir=parent))
    path.chmod(0o711)
    return path


@pytest.fixture(scope="session")
def reachable_dir(shared_tmp: Path) -> Callable[[], Path]:
    """New directories job users can reach (modes alone protect what the API puts inside)."""
    return lambda: _reachable_dir(shared_tmp)


@pytest.fixture(scope="session")
def job_user_prefix() -> str:
    return TEST_JOB_USERS


@pytest.fixture(scope="session")
def fake_collections(shared_tmp: Path) -> Path:
    """A collections path whose smcp.platform has local playbooks and the real roles' argument specs."""
    root = shared_tmp / "collections"
    root.mkdir(mode=0o755)
    coll = root / "ansible_collections" / "smcp" / "platform"
    (coll / "playbooks").mkdir(parents=True)
    for name, text in PLAYBOOKS.items():
        (coll / "playbooks" / f"{name}.yml").write_text("---" + text)
    (coll / "roles").symlink_to(REPO / "roles")
    shutil.copy(REPO / "galaxy.yml", coll / "galaxy.yml")
    return root


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str | None]:
    """SMCP_TEST_PG_URL, else a throwaway server from scripts/pg.sh (stopped at the end)."""
    if not HAVE_PG:
        yield None
        return
    url = os.environ.get("SMCP_TEST_PG_URL")
    if url:
        yield url
        return
    pgdir = Path("/tmp") / f"smcp-pg-test-{uuid.uuid4().hex[:8]}"
    out = subprocess.run(
        [str(REPO / "scripts" / "pg.sh"), "start", str(pgdir)], capture_output=True, text=True, check=True
    )
    try:
        yield out.stdout.strip().splitlines()[-1]
    finally:
        subprocess.run([str(REPO / "scripts" / "pg.sh"), "stop", str(pgdir)], check=False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite store, copied for each test (startup then finds the schema current)."""
    path = tmp_path_factory.mktemp("template") / "smcp.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server: str | None) -> Iterator[str | None]:
    """A migrated PostgreSQL database that each test's database is created from (CREATE DATABASE ... TEMPLATE)."""
    if pg_server is None:
        yield None
        return
    url, drop = _pg_database(pg_server)
    engine = make_engine(url)
    migrate(engine)
    engine.dispose()
    try:
        yield url.rsplit("/", 1)[1]
    finally:
        drop()


def _pg_database(server_url: str, template: str | None = None) -> tuple[str, Callable[[], None]]:
    import psycopg

    name = f"smcp_t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    base = server_url.rsplit("/", 1)[0]

    def drop() -> None:
        with psycopg.connect(server_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return f"{base}/{name}", drop


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp_path / "smcp.db")
        yield f"sqlite:///{tmp_path / 'smcp.db'}"
        return
    server = request.getfixturevalue("pg_server")
    url, drop = _pg_database(server, request.getfixturevalue("pg_template"))
    try:
        yield url
    finally:
        drop()


@pytest.fixture
def settings(db_url: str, tmp_path: Path, fake_collections: Path, shared_tmp: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        db_url=db_url,
        collections_path=fake_collections,
        ansible_config=REPO / "ansible.cfg",
        jobs_dir=_reachable_dir(shared_tmp) / "jobs",
        job_user_prefix=TEST_JOB_USERS,
        host_key_scan_timeout=1.0,
        poll_interval=0.1,
        sse_poll_interval=0.05,
        workers=2,
    )


class Api:
    """A started app plus helpers; `as_role` gives a client header set for another role."""

    def __init__(self, client: TestClient, admin_token: str) -> None:
        self.client = client
        self.app = client.app
        self.services = client.app.state.smcp  # type: ignore[attr-defined]
        self.admin = {"Authorization": f"Bearer {admin_token}"}
        self._role_headers: dict[str, dict[str, str]] = {"admin": self.admin}

    def headers(self, role: str) -> dict[str, str]:
        if role not in self._role_headers:
            r = self.client.post("/api/v1/tokens", json={"name": f"t-{role}", "role": role}, headers=self.admin)
            assert r.status_code == 201, r.text
            self._role_headers[role] = {"Authorization": f"Bearer {r.json()['token']}"}
        return self._role_headers[role]

    def get(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers={**self.headers(role), **kw.pop("headers", {})}, **kw)

    def post(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.post(path, headers={**self.headers(role), **kw.pop("headers", {})}, **kw)

    def patch(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.patch(path, headers={**self.headers(role), **kw.pop("headers", {})}, **kw)

    def delete(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.delete(path, headers={**self.headers(role), **kw.pop("headers", {})}, **kw)

    # -- fixtures as data
    def credential(self, name: str = "key1", key: str | None = None) -> dict[str, Any]:
        r = self.post("/api/v1/credentials", json={"name": name, "private_key": key or new_private_key()})
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def host(self, name: str, credential_id: str, **fields: Any) -> dict[str, Any]:
        # Each host its own address (the API refuses a second host at the same address and SSH port).
        self.hosts_made = getattr(self, "hosts_made", 0) + 1
        address = f"127.0.{self.hosts_made // 250}.{self.hosts_made % 250 + 1}"
        body = {"name": name, "address": address, "credential_id": credential_id, **fields}
        r = self.post("/api/v1/hosts", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def cluster(self, name: str, host_ids: list[str], **fields: Any) -> dict[str, Any]:
        hosts = [
            {"host_id": h, "roles": ["etcd", "control_plane", "workers"] if i == 0 else ["workers"]}
            for i, h in enumerate(host_ids)
        ]
        body = {"name": name, "kubernetes_version": "1.34.4", "hosts": hosts, **fields}
        r = self.post("/api/v1/clusters", json=body)
        assert r.status_code == 201, r.text
        return r.json()  # type: ignore[no-any-return]

    def wait_job(
        self,
        job_id: str,
        statuses: tuple[str, ...] = ("successful", "failed", "canceled", "error"),
        timeout: float = 120.0,
    ) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            job = self.get(f"/api/v1/jobs/{job_id}").json()
            if job["status"] in statuses:
                return job  # type: ignore[no-any-return]
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout} s")
            time.sleep(0.1)


def new_private_key() -> str:
    key = ed25519.Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def start_api(settings: Settings) -> Iterator[Callable[..., Api]]:
    """Start the app (more than once in a test, to simulate restarts); stops every started app at the end."""
    clients: list[TestClient] = []

    def start(start_worker: bool = False, **overrides: Any) -> Api:
        conf = settings.model_copy(update=overrides)
        client = TestClient(create_app(conf, start_worker=start_worker))
        client.__enter__()
        clients.append(client)
        token = client.app.state.smcp.bootstrap_token  # type: ignore[attr-defined]
        if token is None:
            token = conf.token_file().read_text().strip()
        api = Api(client, token)

        def stop() -> None:
            clients.remove(client)
            client.__exit__(None, None, None)

        api.stop = stop  # type: ignore[attr-defined]
        return api

    yield start
    for client in reversed(clients):
        client.__exit__(None, None, None)


@pytest.fixture
def api(start_api: Callable[..., Api]) -> Api:
    """An app without the worker: jobs stay pending (locks, cancel, idempotency)."""
    return start_api()


@pytest.fixture
def live_api(start_api: Callable[..., Api]) -> Api:
    """An app whose worker runs jobs with ansible-runner."""
    return start_api(start_worker=True)


@pytest.fixture
def private_key() -> Callable[[], str]:
    """A factory of fresh unencrypted ed25519 private keys (OpenSSH format)."""
    return new_private_key
