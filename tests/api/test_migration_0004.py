"""Migration 0004 on a store written by the previous schema (0003): existing records move into project `default`,
existing tokens keep working (the bootstrap admin's as platform admin, the others scoped to `default` with their
old role), job events survive the SQLite table copies, and the migration is reversible."""

from __future__ import annotations

import json

import pytest
from alembic import command
from smcp_api.db import alembic_config, make_engine, migrate
from smcp_api.security import hash_token, write_private_file
from sqlalchemy import text

from tests.api.conftest import _pg_database

ADMIN = "smcp_old-admin-secret-from-before-projects"
VIEWER = "smcp_old-viewer-secret-from-before-projects"
NOW = "2026-12-01 10:00:00"


def _old_store(url: str) -> None:
    engine = make_engine(url)
    command.upgrade(alembic_config(engine), "0003")
    rows = [
        (
            "INSERT INTO tokens (id, name, role, token_hash, created_at) VALUES "
            "('t1', 'bootstrap-admin', 'admin', :a, :now), ('t2', 'prometheus', 'viewer', :v, :now), "
            "('t3', 'ci', 'operator', :o, :now)",
            {"a": hash_token(ADMIN), "v": hash_token(VIEWER), "o": hash_token("smcp_ci")},
        ),
        (
            "INSERT INTO credentials (id, name, kind, fingerprint, secret, created_at) "
            "VALUES ('c1', 'key1', 'ssh_private_key', 'SHA256:x', :s, :now)",
            {"s": b"not-decrypted-here"},
        ),
        (
            "INSERT INTO clusters (id, name, kubernetes_version, cni, pod_cidr, service_cidr, options, created_at) "
            "VALUES ('k1', 'prod', '1.34.4', 'calico', '10.244.0.0/16', '10.96.0.0/12', '{}', :now)",
            {},
        ),
        (
            "INSERT INTO hosts (id, name, address, ssh_user, ssh_port, labels, credential_id, roles, vars, "
            "cluster_id, cluster_roles, created_at) VALUES ('h1', 'node1', '192.0.2.10', 'root', 22, '{}', 'c1', "
            "'[]', '{}', 'k1', :roles, :now)",
            {"roles": json.dumps(["etcd", "control_plane", "workers"])},
        ),
        (
            "INSERT INTO jobs (id, operation, status, cluster_id, host_ids, params, created_by, cancel_requested, "
            "created_at, host_summary, event_count, task_count) VALUES ('j1', 'etcd_backup', 'successful', 'k1', "
            "'[]', '{}', 't1', false, :now, '{}', 1, 1)",
            {},
        ),
        (
            "INSERT INTO job_events (job_id, counter, event, stdout, data, created_at) "
            "VALUES ('j1', 1, 'playbook_on_start', 'hello', '{}', :now)",
            {},
        ),
        (
            "INSERT INTO artifacts (id, job_id, cluster, kind, name, size, sha256, encrypted, created_at) "
            "VALUES ('a1', 'j1', 'prod', 'etcd_snapshot', 'snap.db', 0, '', false, :now)",
            {},
        ),
    ]
    with engine.begin() as conn:
        for sql, params in rows:
            conn.execute(text(sql), {"now": NOW, **params})
    engine.dispose()


@pytest.fixture
def old_url(request, db_url, tmp_path):
    """A store at 0003 with one of everything, on the backend of this test's `db_url` (sqlite, postgres)."""
    if db_url.startswith("postgresql"):
        url, drop = _pg_database(request.getfixturevalue("pg_server"))  # empty: no schema at all
        request.addfinalizer(drop)
    else:
        url = f"sqlite:///{tmp_path / 'old' / 'smcp.db'}"
    _old_store(url)
    return url


def test_records_move_into_default_and_come_back_on_downgrade(old_url):
    engine = make_engine(old_url)
    try:
        migrate(engine)
        with engine.connect() as conn:
            owned = (("credentials", "c1"), ("clusters", "k1"), ("hosts", "h1"), ("jobs", "j1"), ("artifacts", "a1"))
            for table, ident in owned:
                got = conn.execute(text(f"SELECT project_id FROM {table} WHERE id = :i"), {"i": ident}).scalar()
                assert got == "default", table
            tokens = dict(
                (name, (user, project))
                for name, user, project in conn.execute(
                    text("SELECT t.name, u.username, t.project_id FROM tokens t JOIN users u ON u.id = t.user_id")
                )
            )
            assert tokens == {
                "bootstrap-admin": ("admin", None),
                "prometheus": ("admin", "default"),
                "ci": ("admin", "default"),
            }
            assert conn.execute(text("SELECT platform_admin FROM users WHERE username = 'admin'")).scalar()
            # the SQLite table copies did not cascade into the rows pointing at them
            assert conn.execute(text("SELECT stdout FROM job_events WHERE job_id = 'j1'")).scalar() == "hello"
            assert conn.execute(text("SELECT cluster_id FROM hosts WHERE id = 'h1'")).scalar() == "k1"
        command.downgrade(alembic_config(engine), "0003")
        with engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM job_events")).scalar() == 1
            assert conn.execute(text("SELECT role FROM tokens WHERE name = 'ci'")).scalar() == "operator"
        migrate(engine)  # and up again
    finally:
        engine.dispose()


def test_old_tokens_keep_their_reach(old_url, start_api, settings):
    write_private_file(settings.token_file(), ADMIN + "\n")  # the file the old service wrote
    api = start_api(db_url=old_url)
    assert api.services.bootstrap_token is None  # tokens exist: no new admin token
    hosts = api.get("/api/v1/hosts").json()
    assert [h["name"] for h in hosts] == ["node1"]
    assert api.get("/api/v1/jobs/j1/events").json()[0]["stdout"] == "hello"
    assert api.post("/api/v1/projects", json={"name": "team-a"}).status_code == 201  # still the platform admin
    viewer = {"Authorization": f"Bearer {VIEWER}"}
    assert api.client.get("/metrics", headers=viewer).status_code == 200  # the Prometheus scrape token
    assert api.client.get("/api/v1/hosts", headers=viewer).json()[0]["id"] == "h1"
    assert api.client.post("/api/v1/hosts", json={}, headers=viewer).status_code == 403
    assert api.client.get("/api/v1/hosts", headers={**viewer, "X-SMCP-Project": "team-a"}).status_code == 404
    me = api.client.get("/api/v1/auth/me", headers=viewer).json()
    assert (me["project"], me["role"], me["platform_admin"]) == ("default", "viewer", False)
