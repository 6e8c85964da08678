"""`smcp-api --rotate-secret-key`: every credential re-encrypted with a new key, the old key useless after."""

from __future__ import annotations

import pytest
from cryptography.fernet import InvalidToken
from smcp_api.models import Credential
from smcp_api.security import Vault
from smcp_api.server import rotate_secret_key
from sqlalchemy import select


def test_rotation_re_encrypts_every_credential(start_api, settings, private_key):
    api = start_api()
    keys = [private_key(), private_key()]
    for i, key in enumerate(keys):
        api.credential(f"k{i}", key)
    sessions = api.services.sessions
    api.stop()
    key_file = settings.data_dir / "secret.key"
    old = key_file.read_bytes().strip()
    rotate_secret_key(settings)
    new = key_file.read_bytes().strip()
    assert new != old and (key_file.stat().st_mode & 0o777) == 0o600
    with sessions() as session:
        blobs = {c.name: c.secret for c in session.scalars(select(Credential))}
    assert [Vault(new).decrypt(blobs[f"k{i}"]) for i in range(2)] == keys
    for blob in blobs.values():
        with pytest.raises(InvalidToken):
            Vault(old).decrypt(blob)
    again = start_api()  # the service starts with the new key and still reads the credentials
    assert [c["name"] for c in again.get("/api/v1/credentials").json()] == ["k0", "k1"]
