"""Tokens: bootstrap admin token, create (shown once, stored hashed), list, revoke."""

from __future__ import annotations

import hashlib
import stat

from smcp_api.models import Token
from sqlalchemy import select


def test_bootstrap_token_printed_once_and_kept_0600(start_api, settings, capfd):
    first = start_api()
    err = capfd.readouterr().err
    token = settings.token_file().read_text().strip()
    assert token and token in err and "shown once" in err
    assert stat.S_IMODE(settings.token_file().stat().st_mode) == 0o600
    assert first.get("/api/v1/tokens").status_code == 200
    first.stop()
    start_api()  # second start: tokens exist, nothing printed
    assert token not in capfd.readouterr().err


def test_create_list_revoke(api):
    r = api.post("/api/v1/tokens", json={"name": "ci", "role": "operator"})
    assert r.status_code == 201
    body = r.json()
    assert body["token"].startswith("smcp_") and body["role"] == "operator"
    with api.services.sessions() as s:
        stored = s.scalar(select(Token).where(Token.name == "ci"))
        assert stored.token_hash == hashlib.sha256(body["token"].encode()).hexdigest()
    listed = api.get("/api/v1/tokens").json()
    assert {t["name"] for t in listed} == {"bootstrap-admin", "ci"}
    assert all("token" not in t and "token_hash" not in t for t in listed)
    assert api.post("/api/v1/tokens", json={"name": "ci", "role": "viewer"}).status_code == 409
    assert api.delete(f"/api/v1/tokens/{body['id']}").status_code == 204
    assert api.delete(f"/api/v1/tokens/{body['id']}").status_code == 404


def test_last_admin_cannot_be_revoked(api):
    admin_id = api.get("/api/v1/tokens").json()[0]["id"]
    r = api.delete(f"/api/v1/tokens/{admin_id}")
    assert r.status_code == 409
    assert "last admin token" in r.json()["detail"]


def test_bad_role_names_field(api):
    r = api.post("/api/v1/tokens", json={"name": "x", "role": "root"})
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "role"]
    assert "role" in r.json()["detail"][0]["msg"]
