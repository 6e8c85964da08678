"""Credentials: validated, encrypted at rest, never returned; a key that no longer decrypts blocks jobs."""

from __future__ import annotations

from cryptography.fernet import Fernet
from smcp_api.models import Credential
from sqlalchemy import select


def test_secret_never_returned_and_encrypted_at_rest(api, private_key):
    key = private_key()
    r = api.post("/api/v1/credentials", role="operator", json={"name": "k", "username": "smcp", "private_key": key})
    assert r.status_code == 201
    body = r.json()
    assert body["fingerprint"].startswith("SHA256:") and body["kind"] == "ssh_private_key"
    for payload in (r.text, api.get("/api/v1/credentials").text, api.get(f"/api/v1/credentials/{body['id']}").text):
        assert "PRIVATE KEY" not in payload and key.splitlines()[1] not in payload and '"private_key"' not in payload
    with api.services.sessions() as s:
        blob = s.scalar(select(Credential.secret).where(Credential.id == body["id"]))
    assert b"PRIVATE KEY" not in blob
    assert api.services.vault.decrypt(blob) == key


def test_unreadable_key_names_field_and_fix(api):
    r = api.post("/api/v1/credentials", json={"name": "bad", "private_key": "not a key"})
    assert r.status_code == 422
    assert r.json()["detail"].startswith("private_key: not a readable private key")
    assert "BEGIN/END" in r.json()["detail"]
    assert api.get("/api/v1/credentials").json() == []


def test_validation_error_does_not_echo_the_key(api):
    r = api.post("/api/v1/credentials", json={"name": "Bad Name!", "private_key": "secret-material", "x": 1})
    assert r.status_code == 422
    assert "secret-material" not in r.text
    locs = [e["loc"] for e in r.json()["detail"]]
    assert ["body", "name"] in locs and ["body", "x"] in locs


def test_delete_in_use_is_409_then_204(api):
    cred = api.credential()
    host = api.host("h1", cred["id"])
    r = api.delete(f"/api/v1/credentials/{cred['id']}")
    assert r.status_code == 409
    assert "h1" in r.json()["detail"]
    assert api.delete(f"/api/v1/credentials/{cred['id']}", role="operator").status_code == 403
    assert api.delete(f"/api/v1/hosts/{host['id']}").status_code == 204
    assert api.delete(f"/api/v1/credentials/{cred['id']}").status_code == 204


def test_key_changed_job_is_422_naming_the_credential(start_api, settings):
    first = start_api()
    cred = first.credential("oldkey")
    host = first.host("h1", cred["id"])
    first.stop()
    second = start_api(secret_key=Fernet.generate_key().decode())
    r = second.post("/api/v1/jobs", json={"operation": "preflight", "host_ids": [host["id"]]})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "credential 'oldkey'" in detail and "cannot be decrypted" in detail and "SMCP_SECRET_KEY" in detail
    assert second.get("/api/v1/jobs").json() == []


def test_duplicate_name_is_409(api, private_key):
    api.credential("same")
    r = api.post("/api/v1/credentials", json={"name": "same", "private_key": private_key()})
    assert r.status_code == 409
    assert "same" in r.json()["detail"]
