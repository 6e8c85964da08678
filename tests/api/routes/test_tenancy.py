"""Projects: every route family x role x own/other project, list filtering, token scope and expiry.

Users log in with passwords (POST /api/v1/auth/login) and get roles in project `default` only; project `other`
holds one of everything. Other projects' ids answer 404 (403 first when the role is too low anyway, which says
nothing about the id); lists never show other projects' records.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from smcp_api import artifacts
from smcp_api.models import Token, utcnow

from tests.api.conftest import new_private_key

ROLES = ("viewer", "operator", "admin")
RANK = {role: rank for rank, role in enumerate(ROLES)}
OTHER = {"X-SMCP-Project": "other"}
PASSWORD = "a long enough passphrase"


def _ok(r: Any, *codes: int) -> Any:
    assert r.status_code in codes, (r.request.method, r.request.url.path, r.status_code, r.text)
    return r.json() if r.content and r.headers.get("content-type", "").startswith("application/json") else None


def login(api: Any, username: str, password: str = PASSWORD, **body: Any) -> dict[str, str]:
    r = api.client.post("/api/v1/auth/login", json={"username": username, "password": password, **body})
    return {"Authorization": f"Bearer {_ok(r, 201)['token']}"}


def make_user(api: Any, username: str, bindings: dict[str, str], **fields: Any) -> dict[str, Any]:
    user = _ok(api.post("/api/v1/users", json={"username": username, "password": PASSWORD, **fields}), 201)
    for project, role in bindings.items():
        _ok(
            api.client.put(f"/api/v1/projects/{project}/members/{user['id']}", json={"role": role}, headers=api.admin),
            200,
        )
    return user


def fill(api: Any, headers: dict[str, str], tag: str) -> dict[str, str]:
    """One of everything in the project `headers` name, made by the platform admin: ids by kind."""
    h = {**api.admin, **headers}
    c = api.client
    cred = _ok(
        c.post("/api/v1/credentials", json={"name": f"key-{tag}", "private_key": new_private_key()}, headers=h), 201
    )
    addr = {"own": "127.0.5.1", "other": "127.0.6.1"}[tag]
    host = _ok(
        c.post("/api/v1/hosts", json={"name": f"h-{tag}", "address": addr, "credential_id": cred["id"]}, headers=h), 201
    )
    spare = _ok(
        c.post(
            "/api/v1/hosts",
            json={"name": f"spare-{tag}", "address": addr[:-1] + "2", "credential_id": cred["id"]},
            headers=h,
        ),
        201,
    )
    cluster = _ok(
        c.post(
            "/api/v1/clusters",
            json={
                "name": f"c-{tag}",
                "kubernetes_version": "1.34.4",
                "hosts": [{"host_id": host["id"], "roles": ["etcd", "control_plane", "workers"]}],
            },
            headers=h,
        ),
        201,
    )
    busy = _ok(c.post("/api/v1/jobs", json={"operation": "preflight", "cluster_id": cluster["id"]}, headers=h), 202)
    done = _ok(c.post(f"/api/v1/hosts/{spare['id']}/check", headers=h), 202)
    _ok(c.post(f"/api/v1/jobs/{done['id']}/cancel", headers=h), 202)  # finished: its event stream ends
    stored = artifacts.store_bytes(
        api.services,
        b"kubeconfig",
        cluster=f"c-{tag}",
        kind=artifacts.CLUSTER_FILE,
        name="admin.conf",
        job_id=busy["id"],
    )
    return {
        "cred": cred["id"],
        "host": host["id"],
        "spare": spare["id"],
        "cluster": cluster["id"],
        "busy": busy["id"],
        "job": done["id"],
        "artifact": stored.id,
    }


@pytest.fixture
def world(api: Any) -> dict[str, Any]:
    _ok(api.post("/api/v1/projects", json={"name": "other"}), 201)
    own, other = fill(api, {}, "own"), fill(api, OTHER, "other")
    users = {role: make_user(api, f"u-{role}", {"default": role}) for role in ROLES}
    return {
        "own": own,
        "other": other,
        "users": users,
        "headers": {role: login(api, f"u-{role}") for role in ROLES},
    }


# (method, path, body, lowest role, statuses for the own project's record). Own-record statuses prove the record
# was found without destroying it (409: in use / busy / finished; the host-key scan of 127.0.5.1 fails).
ID_ROUTES: list[tuple[str, str, Any, str, tuple[int, ...]]] = [
    ("GET", "/api/v1/credentials/{cred}", None, "viewer", (200,)),
    ("DELETE", "/api/v1/credentials/{cred}", None, "admin", (409,)),
    ("GET", "/api/v1/hosts/{host}", None, "viewer", (200,)),
    ("PATCH", "/api/v1/hosts/{host}", {"labels": {"zone": "a"}}, "operator", (200,)),
    ("DELETE", "/api/v1/hosts/{host}", None, "operator", (409,)),
    ("POST", "/api/v1/hosts/{spare}/check", None, "operator", (202,)),
    ("POST", "/api/v1/hosts/{host}/host-key", {"fingerprint": "SHA256:" + "A" * 43}, "operator", (409, 502, 504)),
    ("GET", "/api/v1/clusters/{cluster}", None, "viewer", (200,)),
    ("DELETE", "/api/v1/clusters/{cluster}", None, "operator", (409,)),
    ("GET", "/api/v1/jobs/{job}", None, "viewer", (200,)),
    ("GET", "/api/v1/jobs/{job}/stdout", None, "viewer", (200,)),
    ("GET", "/api/v1/jobs/{job}/events", None, "viewer", (200,)),
    ("GET", "/api/v1/jobs/{job}/events/stream", None, "viewer", (200,)),
    ("POST", "/api/v1/jobs/{job}/cancel", None, "operator", (409,)),
    ("GET", "/api/v1/artifacts/{artifact}", None, "viewer", (200,)),
    ("GET", "/api/v1/artifacts/{artifact}/content", None, "admin", (200,)),
]
# Routes whose body names records: another project's record is unknown there (422 naming the field).
BODY_ROUTES: list[tuple[str, str, Any, str, int]] = [
    ("POST", "/api/v1/jobs", {"operation": "preflight", "host_ids": ["{spare}"]}, "operator", 202),
    ("POST", "/api/v1/jobs", {"operation": "preflight", "cluster_id": "{cluster}"}, "operator", 202),
    (
        "POST",
        "/api/v1/hosts",
        {"name": "new-{tag}", "address": "127.0.9.{n}", "credential_id": "{cred}"},
        "operator",
        201,
    ),
]
LISTS = {
    "/api/v1/credentials": "cred",
    "/api/v1/hosts": "host",
    "/api/v1/clusters": "cluster",
    "/api/v1/jobs": "job",
    "/api/v1/artifacts": "artifact",
}


def _fill_in(value: Any, ids: dict[str, str]) -> Any:
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill_in(v, ids) for v in value]
    if isinstance(value, dict):
        return {k: _fill_in(v, ids) for k, v in value.items()}
    return value


@pytest.mark.parametrize("role", ROLES)
def test_every_route_family_by_role_and_project(api, world, role):
    headers = world["headers"][role]
    seen: list[tuple[str, str, str, int]] = []
    for method, path, body, needed, own_codes in ID_ROUTES:
        for side in ("own", "other"):
            ids = world[side]
            kwargs = {"json": _fill_in(body, ids)} if body is not None else {}
            r = api.client.request(method, path.format(**ids), headers=headers, **kwargs)
            seen.append((side, method, path, r.status_code))
            if RANK[role] < RANK[needed]:
                assert r.status_code == 403, (role, side, method, path, r.text)
            elif side == "other":
                assert r.status_code == 404, (role, side, method, path, r.text)
                assert "does not exist" in r.json()["detail"]
            else:
                assert r.status_code in own_codes, (role, side, method, path, r.status_code, r.text)
    for n, (method, path, body, needed, own_code) in enumerate(BODY_ROUTES):
        for side in ("own", "other"):
            ids = {**world[side], "tag": f"{role}-{side}", "n": str(10 * RANK[role] + 2 * n + (side == "other"))}
            r = api.client.request(method, path, headers=headers, json=_fill_in(body, ids))
            if RANK[role] < RANK[needed]:
                assert r.status_code == 403, (role, side, method, path, r.text)
            elif side == "other":
                assert r.status_code == 422, (role, side, method, path, r.text)
                assert "does not exist" in r.text
            else:
                assert r.status_code == own_code, (role, side, method, path, r.text)
    for path, kind in LISTS.items():
        listed = {item["id"] for item in _ok(api.client.get(path, headers=headers), 200)}
        assert world["own"][kind] in listed and world["other"][kind] not in listed, (role, path)
    assert len(seen) == 2 * len(ID_ROUTES)


@pytest.mark.parametrize("role", ROLES)
def test_naming_a_project_that_is_not_yours_is_404(api, world, role):
    headers = {**world["headers"][role], **OTHER}
    for path in ("/api/v1/hosts", "/api/v1/jobs", "/api/v1/auth/me", "/api/v1/projects/other"):
        r = api.client.get(path, headers=headers)
        assert r.status_code == 404, (role, path, r.text)
        assert "project 'other' does not exist" in r.json()["detail"]
    r = api.client.put(
        f"/api/v1/projects/other/members/{world['users'][role]['id']}", json={"role": "admin"}, headers=headers
    )
    assert r.status_code == 404
    projects = {p["name"] for p in _ok(api.client.get("/api/v1/projects", headers=world["headers"][role]), 200)}
    assert projects == {"default"}


def test_platform_admin_acts_in_any_project_by_header(api, world):
    listed = {h["id"] for h in _ok(api.get("/api/v1/hosts", headers=OTHER), 200)}
    assert world["other"]["host"] in listed and world["own"]["host"] not in listed
    assert api.get(f"/api/v1/hosts/{world['other']['host']}").status_code == 404  # no header: default
    me = _ok(api.get("/api/v1/auth/me", headers=OTHER), 200)
    assert me["project"] == "other" and me["role"] == "admin" and me["platform_admin"] is True
    assert {p["name"] for p in _ok(api.get("/api/v1/projects"), 200)} == {"default", "other"}


def test_project_admins_manage_members_and_nothing_else(api, world):
    admin = world["headers"]["admin"]
    viewer_id = world["users"]["viewer"]["id"]
    r = api.client.put(f"/api/v1/projects/default/members/{viewer_id}", json={"role": "operator"}, headers=admin)
    assert _ok(r, 200)["role"] == "operator"
    again = api.client.put(f"/api/v1/projects/default/members/{viewer_id}", json={"role": "operator"}, headers=admin)
    assert _ok(again, 200) == r.json()  # idempotent
    members = _ok(api.client.get("/api/v1/projects/default/members", headers=world["headers"]["viewer"]), 200)
    assert {m["username"]: m["role"] for m in members}["u-viewer"] == "operator"
    # the viewer's login token now operates (its role is the binding's, read on each request)
    r = api.client.patch(
        f"/api/v1/hosts/{world['own']['host']}", json={"labels": {"x": "y"}}, headers=world["headers"]["viewer"]
    )
    assert r.status_code == 200
    # a project admin is no platform admin: no users, no projects
    assert api.client.get("/api/v1/users", headers=admin).status_code == 403
    assert api.client.post("/api/v1/projects", json={"name": "mine"}, headers=admin).status_code == 403
    assert api.client.delete(f"/api/v1/projects/default/members/{viewer_id}", headers=admin).status_code == 204
    r = api.client.get("/api/v1/hosts", headers=world["headers"]["viewer"])
    assert r.status_code == 403 and "has no role in any project" in r.json()["detail"]


def test_a_scoped_token_stays_in_its_project_and_below_its_role(api, world):
    user = make_user(api, "both", {"default": "admin", "other": "viewer"})
    full = login(api, "both")
    scoped = _ok(
        api.client.post("/api/v1/tokens", json={"name": "s", "role": "viewer", "project": "other"}, headers=full), 201
    )
    assert scoped["project"] == "other" and scoped["user"] == "both"
    s = {"Authorization": f"Bearer {scoped['token']}"}
    hosts = {h["id"] for h in _ok(api.client.get("/api/v1/hosts", headers=s), 200)}  # no header: its project
    assert world["other"]["host"] in hosts and world["own"]["host"] not in hosts
    assert api.client.get("/api/v1/hosts", headers={**s, "X-SMCP-Project": "default"}).status_code == 404
    assert api.client.get(f"/api/v1/hosts/{world['own']['host']}", headers=s).status_code == 404
    # a role above the user's in that project, or a scoped token making a broader one: refused, naming the field
    r = api.client.post("/api/v1/tokens", json={"name": "t", "role": "operator", "project": "other"}, headers=full)
    assert r.status_code == 422 and r.json()["detail"].startswith("role: 'operator' is above")
    r = api.client.post("/api/v1/tokens", json={"name": "t", "role": "viewer", "project": "default"}, headers=s)
    assert r.status_code == 422 and r.json()["detail"].startswith("project:")
    narrower = _ok(api.client.post("/api/v1/tokens", json={"name": "t2", "role": "viewer"}, headers=s), 201)
    assert narrower["project"] == "other"  # a scoped token's tokens are scoped too
    # a viewer token neither sees nor revokes the user's broader tokens
    listed = {t["name"] for t in _ok(api.client.get("/api/v1/tokens", headers=s), 200)}
    assert listed == {"s", "t2"}
    full_id = next(t["id"] for t in _ok(api.client.get("/api/v1/tokens", headers=full), 200) if t["role"] == "admin")
    assert api.client.delete(f"/api/v1/tokens/{full_id}", headers=s).status_code == 404
    weak = _ok(api.client.post("/api/v1/tokens", json={"name": "weak", "role": "viewer"}, headers=full), 201)
    w = {"Authorization": f"Bearer {weak['token']}"}  # unscoped, but a viewer
    assert {t["role"] for t in _ok(api.client.get("/api/v1/tokens", headers=w), 200)} == {"viewer"}
    assert api.client.delete(f"/api/v1/tokens/{full_id}", headers=w).status_code == 404
    assert api.client.get("/api/v1/users", headers=w).status_code == 403  # users: platform admins only
    # another user's token is 404 too
    other_user = _ok(api.client.get("/api/v1/tokens", headers=world["headers"]["admin"]), 200)[0]["id"]
    assert api.client.delete(f"/api/v1/tokens/{other_user}", headers=full).status_code == 404
    assert user["username"] == "both"


def test_an_expired_token_is_401_naming_the_expiry(api, world):
    made = _ok(api.post("/api/v1/tokens", json={"name": "short", "role": "viewer", "expires_in": 60}), 201)
    assert made["expires_at"] is not None
    h = {"Authorization": f"Bearer {made['token']}"}
    assert api.client.get("/api/v1/hosts", headers=h).status_code == 200
    with api.services.sessions() as session:
        session.get(Token, made["id"]).expires_at = utcnow() - timedelta(seconds=1)
        session.commit()
    r = api.client.get("/api/v1/hosts", headers=h)
    assert r.status_code == 401 and "expired at" in r.json()["detail"]
    assert r.headers["www-authenticate"] == "Bearer"
    r = api.client.post("/api/v1/hosts", json={}, headers=h)  # the body guard's check is the same
    assert r.status_code == 401 and "expired at" in r.json()["detail"]


def test_a_disabled_user_is_locked_out_and_logout_revokes(api, world):
    user = world["users"]["operator"]
    h = world["headers"]["operator"]
    _ok(api.patch(f"/api/v1/users/{user['id']}", json={"disabled": True}), 200)
    assert api.client.get("/api/v1/hosts", headers=h).status_code == 401
    assert (
        api.client.post("/api/v1/auth/login", json={"username": "u-operator", "password": PASSWORD}).status_code == 401
    )
    _ok(api.patch(f"/api/v1/users/{user['id']}", json={"disabled": False}), 200)
    assert api.client.get("/api/v1/hosts", headers=h).status_code == 200
    assert api.client.post("/api/v1/auth/logout", headers=h).status_code == 204
    assert api.client.get("/api/v1/hosts", headers=h).status_code == 401


PLATFORM_ROUTES = [
    ("GET", "/api/v1/users"),
    ("POST", "/api/v1/users"),
    ("GET", "/api/v1/users/" + "0" * 32),
    ("PATCH", "/api/v1/users/" + "0" * 32),
    ("DELETE", "/api/v1/users/" + "0" * 32),
    ("POST", "/api/v1/projects"),
    ("DELETE", "/api/v1/projects/other"),
]


def test_users_and_projects_are_for_platform_admins(api, world):
    for method, path in PLATFORM_ROUTES:
        kwargs = {"json": {}} if method in ("POST", "PATCH") else {}
        assert api.client.request(method, path, **kwargs).status_code == 401, (method, path)
        for role in ROLES:  # project roles, admin included
            r = api.client.request(method, path, headers=world["headers"][role], **kwargs)
            assert r.status_code == 403, (role, method, path, r.text)
            assert "platform admin" in r.json()["detail"]
        r = api.client.request(method, path, headers=api.admin, **kwargs)
        assert r.status_code in (200, 404, 409, 422), (method, path, r.text)  # the route itself answers
