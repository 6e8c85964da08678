"""The audit log: one entry per mutating request (every route of the app), no secret in it, the read API's
filters, paging and access, and retention."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from fastapi.routing import APIRoute, iter_route_contexts
from smcp_api.audit import AuditEntry
from smcp_api.models import utcnow
from sqlalchemy import delete, select

from tests.api.conftest import Api

AUDIT = "/api/v1/audit"
WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def rows(api: Api) -> list[AuditEntry]:
    with api.services.sessions() as session:
        return list(session.scalars(select(AuditEntry).order_by(AuditEntry.id)))


def clear(api: Api) -> None:
    with api.services.sessions() as session:
        session.execute(delete(AuditEntry))
        session.commit()


def mutating_routes(api: Api) -> list[tuple[str, str]]:
    found = []
    for route in iter_route_contexts(api.app.routes):  # type: ignore[attr-defined]
        if isinstance(route.original_route, APIRoute):
            found.extend((method, str(route.path)) for method in sorted((route.methods or set()) & WRITES))
    return found


def test_every_mutating_route_leaves_one_entry(api: Api) -> None:
    routes = mutating_routes(api)
    assert ("POST", "/api/v1/hosts") in routes and ("DELETE", "/api/v1/tokens/{token_id}") in routes
    for n, (method, template) in enumerate(routes):
        # a token of its own for each request (a logout revokes the token it is called with)
        token = api.post("/api/v1/tokens", json={"name": f"audit-{n}", "role": "viewer"}).json()
        last = max((e.id for e in rows(api)), default=0)
        params = re.findall(r"{(\w+)(?::\w+)?}", template)
        path = template
        for name in params:
            path = re.sub(r"{" + name + r"(?::\w+)?}", f"zz-{name}", path)
        headers = {"Authorization": f"Bearer {token['token']}"}
        answer = api.client.request(method, path, json={}, headers=headers)
        entries = [e for e in rows(api) if e.id > last]
        assert [(e.method, e.route) for e in entries] == [(method, template)]
        entry = entries[0]
        assert entry.status == answer.status_code, (method, template)
        assert (entry.token_id, entry.source) == (token["id"], "testclient"), (method, template)
        assert entry.actor, (method, template)
        if params:
            assert entry.target == f"zz-{params[0]}", (method, template)


def test_reads_are_not_recorded_and_refused_writes_are(api: Api) -> None:
    clear(api)
    assert api.get("/api/v1/hosts").status_code == 200
    assert api.get(AUDIT).status_code == 200
    assert rows(api) == []
    refused = api.client.post("/api/v1/credentials", json={"name": "x", "private_key": "k"})
    assert refused.status_code == 401
    (entry,) = rows(api)
    assert (entry.method, entry.route, entry.status, entry.token_id, entry.actor) == (
        "POST",
        "/api/v1/credentials",
        401,
        None,
        None,
    )


def test_a_created_record_is_the_target_and_no_secret_is_kept(api: Api, private_key: Callable[[], str]) -> None:
    clear(api)
    key = private_key()
    cred = api.credential("audited", key)
    token = api.post("/api/v1/tokens", json={"name": "audited-token", "role": "viewer"}).json()
    stored = rows(api)
    assert [(e.route, e.status, e.target) for e in stored] == [
        ("/api/v1/credentials", 201, cred["id"]),
        ("/api/v1/tokens", 201, token["id"]),
    ]
    text = " ".join(str(getattr(e, c.key)) for e in stored for c in AuditEntry.__table__.columns)
    body = "".join(line for line in key.splitlines() if "-----" not in line)
    for secret in (body, token["token"]):
        windows = {secret[i : i + 8] for i in range(len(secret) - 7)}
        assert not [w for w in windows if w in text], "a part of a secret is in the audit log"


def test_read_api_filters_pages_and_is_for_admins(api: Api) -> None:
    api.headers("operator")  # its token is made (and recorded) before the entries this test counts
    clear(api)
    for name in ("a1", "a2", "a3"):
        api.post("/api/v1/tokens", json={"name": name, "role": "viewer"})
    api.delete("/api/v1/tokens/nope")
    assert api.get(AUDIT, role="operator").status_code == 403
    everything = api.get(AUDIT).json()
    assert [i["action"] for i in everything["items"]][:2] == ["DELETE /api/v1/tokens/{token_id}", "POST /api/v1/tokens"]
    assert everything["next_before"] is None
    first = api.get(AUDIT, params={"limit": 2}).json()
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    rest = api.get(AUDIT, params={"limit": 2, "before": first["next_before"]}).json()
    ids = [i["id"] for i in first["items"] + rest["items"]]
    assert ids == [i["id"] for i in everything["items"]] and len(ids) == len(set(ids))
    by_target = api.get(AUDIT, params={"target": "nope"}).json()["items"]
    assert [(i["target"], i["status"]) for i in by_target] == [("nope", 404)]
    admin_token_id = by_target[0]["token_id"]
    mine = api.get(AUDIT, params={"user": by_target[0]["actor"] or by_target[0]["user_id"]}).json()["items"]
    assert {i["token_id"] for i in mine} == {admin_token_id}
    later = (utcnow() + timedelta(minutes=1)).isoformat()
    assert api.get(AUDIT, params={"since": later}).json()["items"] == []
    assert len(api.get(AUDIT, params={"until": later}).json()["items"]) == len(ids)
    bad = api.get(AUDIT, params={"since": later, "until": utcnow().isoformat()})
    assert bad.status_code == 422 and "since" in bad.json()["detail"] and "until" in bad.json()["detail"]
    assert api.get(AUDIT, params={"limit": 0}).status_code == 422


def _old_entry(api: Api, days: float) -> None:
    with api.services.sessions() as session:
        session.add(
            AuditEntry(at=utcnow() - timedelta(days=days), method="POST", route="/old", status=201, target="old")
        )
        session.commit()


def test_retention_prunes_at_start_and_periodically(start_api: Callable[..., Any]) -> None:
    first = start_api()
    _old_entry(first, days=10)
    _old_entry(first, days=2)
    first.stop()  # type: ignore[attr-defined]
    api = start_api(audit_retention_days=5, audit_prune_interval=0.2)
    assert [e.target for e in rows(api)] == ["old"]  # the 10-day-old entry went at start, the 2-day-old stays
    _old_entry(api, days=30)
    deadline = time.monotonic() + 30
    while len(rows(api)) > 1 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(rows(api)) == 1


def test_logins_are_recorded_with_the_name_tried_and_never_the_password(api: Api) -> None:
    password = "a-long-enough-passphrase-9"
    made = api.post("/api/v1/users", json={"username": "erin", "password": password})
    assert made.status_code == 201, made.text
    clear(api)
    bad = api.client.post("/api/v1/auth/login", json={"username": "erin", "password": password + "x"})
    good = api.client.post("/api/v1/auth/login", json={"username": "erin", "password": password})
    assert (bad.status_code, good.status_code) == (401, 201)
    stored = rows(api)
    assert [(e.route, e.status, e.actor) for e in stored] == [
        ("/api/v1/auth/login", 401, "erin"),
        ("/api/v1/auth/login", 201, "erin"),
    ]
    assert stored[1].user_id == made.json()["id"] and stored[1].token_id == good.json()["token_id"]
    assert stored[0].token_id is None
    text = " ".join(str(getattr(e, c.key)) for e in stored for c in AuditEntry.__table__.columns)
    assert password[:8] not in text and good.json()["token"][5:13] not in text


def test_a_project_admin_reads_only_their_project(api: Api, private_key: Callable[[], str]) -> None:
    password = "pat-long-passphrase-42"
    assert api.post("/api/v1/projects", json={"name": "team-a"}).status_code == 201
    pat = api.post("/api/v1/users", json={"username": "pat", "password": password}).json()
    assert api.client.put(
        f"/api/v1/projects/team-a/members/{pat['id']}", json={"role": "admin"}, headers=api.admin
    ).status_code in (200, 201)
    login = api.client.post("/api/v1/auth/login", json={"username": "pat", "password": password}).json()
    pats = {"Authorization": f"Bearer {login['token']}", "X-SMCP-Project": "team-a"}
    made = api.client.post("/api/v1/credentials", json={"name": "pat-key", "private_key": private_key()}, headers=pats)
    assert made.status_code == 201, made.text
    api.credential("default-key")  # the platform admin, in project default
    seen = api.client.get(AUDIT, headers=pats).json()["items"]
    assert seen and {i["project"] for i in seen} == {"team-a"}
    assert made.json()["id"] in [i["target"] for i in seen]
    assert api.client.get(AUDIT, params={"project": "default"}, headers=pats).json()["items"] == []
    everything = api.get(AUDIT).json()["items"]
    assert {"team-a", "default"} <= {i["project"] for i in everything}


def test_migration_0005_adds_and_removes_only_the_audit_table(tmp_path: Any) -> None:
    from alembic import command
    from smcp_api.db import alembic_config, make_engine, migrate
    from sqlalchemy import inspect

    engine = make_engine(f"sqlite:///{tmp_path / 'm.db'}")
    cfg = alembic_config(engine)
    command.upgrade(cfg, "0004")
    before = set(inspect(engine).get_table_names())
    migrate(engine)
    assert set(inspect(engine).get_table_names()) == before | {"audit_log"}
    assert {"ix_audit_log_at", "ix_audit_log_target"} <= {i["name"] for i in inspect(engine).get_indexes("audit_log")}
    command.downgrade(cfg, "0004")
    assert set(inspect(engine).get_table_names()) == before
    engine.dispose()
