"""Users: password policy, argon2id hashes, login, throttling shared through the store, platform admin guards."""

from __future__ import annotations

from datetime import timedelta

from smcp_api import identity
from smcp_api.models import LoginThrottle, User, utcnow
from sqlalchemy import select

PASSWORD = "a long enough passphrase"


def _login(api, username: str, password: str, **kw):
    return api.client.post("/api/v1/auth/login", json={"username": username, "password": password}, **kw)


def test_passwords_are_argon2id_and_follow_the_policy(api):
    r = api.post("/api/v1/users", json={"username": "ann", "password": "short"})
    assert r.status_code == 422 and r.json()["detail"].startswith("password: 5 characters; use at least 12")
    r = api.post("/api/v1/users", json={"username": "annabelle.smith", "password": "Annabelle.Smith"})
    assert r.status_code == 422 and "is the username" in r.json()["detail"]
    r = api.post("/api/v1/users", json={"username": "ann", "password": "x" * 257})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "password"]
    assert "input" not in r.json()["detail"][0]  # the refused password is not echoed
    r = api.post("/api/v1/users", json={"username": "Ann!", "password": PASSWORD})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "username"]
    made = api.post("/api/v1/users", json={"username": "ann", "password": PASSWORD})
    assert made.status_code == 201 and made.json()["has_password"] is True
    assert PASSWORD not in made.text and "argon2" not in made.text and "password_hash" not in made.text
    assert api.post("/api/v1/users", json={"username": "ann", "password": PASSWORD}).status_code == 409
    with api.services.sessions() as session:
        stored = session.scalar(select(User.password_hash).where(User.username == "ann"))
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_login_gives_an_expiring_token_and_me_says_who(api):
    user = api.post("/api/v1/users", json={"username": "bob", "password": PASSWORD}).json()
    api.client.put(f"/api/v1/projects/default/members/{user['id']}", json={"role": "operator"}, headers=api.admin)
    r = _login(api, "bob", PASSWORD)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["user"]["bindings"] == [{"project": "default", "project_id": "default", "role": "operator"}]
    h = {"Authorization": f"Bearer {body['token']}"}
    me = api.client.get("/api/v1/auth/me", headers=h).json()
    assert (me["user"]["username"], me["project"], me["role"], me["platform_admin"]) == (
        "bob",
        "default",
        "operator",
        False,
    )
    assert me["token"]["expires_at"] is not None
    assert api.client.get("/api/v1/users", headers=h).status_code == 403
    # own password: the current one first
    r = api.client.put(
        "/api/v1/users/me/password", json={"current_password": "wrong one here", "password": "x" * 12}, headers=h
    )
    assert r.status_code == 422 and r.json()["detail"].startswith("current_password:")
    new = "another long passphrase"
    r = api.client.put("/api/v1/users/me/password", json={"current_password": PASSWORD, "password": new}, headers=h)
    assert r.status_code == 204
    assert _login(api, "bob", PASSWORD).status_code == 401
    assert _login(api, "bob", new).status_code == 201


def test_failed_logins_are_throttled_per_user_and_address_with_a_growing_wait(api):
    api.post("/api/v1/users", json={"username": "carol", "password": PASSWORD})
    for _ in range(identity.THROTTLE_AFTER):
        r = _login(api, "carol", "wrong password!")
        assert r.status_code == 401
        assert r.json()["detail"].startswith("wrong username or password")
    r = _login(api, "carol", PASSWORD)  # even the right password waits now
    assert r.status_code == 429 and 1 <= int(r.headers["retry-after"]) <= 30
    assert "wait" in r.json()["detail"]
    # another user from the same address, and an unknown name (the same answer as a wrong password), are not held
    api.post("/api/v1/users", json={"username": "dave", "password": PASSWORD})
    assert _login(api, "dave", PASSWORD).status_code == 201
    assert _login(api, "nobody", PASSWORD).status_code == 401
    # the wait ends; one more failure waits twice as long
    with api.services.sessions() as session:
        for row in session.scalars(select(LoginThrottle)):
            row.blocked_until = utcnow() - timedelta(seconds=1)
        session.commit()
    assert _login(api, "carol", "wrong password!").status_code == 401
    r = _login(api, "carol", PASSWORD)
    assert r.status_code == 429 and 30 < int(r.headers["retry-after"]) <= 60
    # a success after the wait clears the count
    with api.services.sessions() as session:
        for row in session.scalars(select(LoginThrottle)):
            row.blocked_until = utcnow() - timedelta(seconds=1)
        session.commit()
    assert _login(api, "carol", PASSWORD).status_code == 201
    assert _login(api, "carol", "wrong password!").status_code == 401
    assert _login(api, "carol", PASSWORD).status_code == 201


def test_the_throttle_is_in_the_store_so_a_second_replica_sees_it(start_api):
    first = start_api()
    first.post("/api/v1/users", json={"username": "erin", "password": PASSWORD})
    for _ in range(identity.THROTTLE_AFTER):
        assert _login(first, "erin", "wrong password!").status_code == 401
    second = start_api()  # another app on the same store
    assert _login(second, "erin", PASSWORD).status_code == 429


def test_the_last_platform_admin_stays(api):
    with api.services.sessions() as session:
        admin_id = session.scalar(select(User.id).where(User.username == "admin"))
    r = api.patch(f"/api/v1/users/{admin_id}", json={"platform_admin": False})
    assert r.status_code == 409 and "last platform admin" in r.json()["detail"]
    assert api.delete(f"/api/v1/users/{admin_id}").status_code == 409
    # with a password the bootstrap admin can log in
    assert api.patch(f"/api/v1/users/{admin_id}", json={"password": PASSWORD}).status_code == 200
    r = _login(api, "admin", PASSWORD)
    assert r.status_code == 201
    me = api.client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {r.json()['token']}"}).json()
    assert me["platform_admin"] is True
