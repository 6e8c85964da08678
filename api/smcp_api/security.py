"""Bearer tokens (stored as sha256), roles, and credential encryption at rest (Fernet)."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet  # noqa: F401  (InvalidToken re-exported)
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed25519, rsa

from smcp_api.fsmodes import private_dir, tighten_file

ROLES = ("viewer", "operator", "admin")
ROLE_RANK = {role: rank for rank, role in enumerate(ROLES)}
TOKEN_PREFIX = "smcp_"  # noqa: S105 (a prefix, not a secret)


def new_token() -> str:
    """A 256-bit random bearer token (high entropy, so a fast hash is enough)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def role_allows(role: str, needed: str) -> bool:
    return ROLE_RANK.get(role, -1) >= ROLE_RANK[needed]


def write_private_file(path: Path, data: str | bytes) -> None:
    """Create (or replace) a file readable by its owner only (0600), never briefly wider, in a 0700 directory."""
    private_dir(path.parent)
    raw = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, raw)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def load_or_create_key(secret_key: str | None, key_file: Path) -> bytes:
    """The Fernet key: from settings, else from key_file (generated 0600 on first start)."""
    if secret_key:
        key = secret_key.encode()
    elif key_file.is_file():
        private_dir(key_file.parent)
        tighten_file(key_file)  # a key file left readable by others (copied, restored from a backup) is fixed
        key = key_file.read_bytes().strip()
    else:
        key = Fernet.generate_key()
        write_private_file(key_file, key + b"\n")
    try:
        Fernet(key)
    except ValueError as exc:
        raise ValueError(
            "SMCP_SECRET_KEY (or the secret.key file) is not a Fernet key: "
            "use 32 url-safe base64-encoded bytes, e.g. from `python -c 'from cryptography.fernet import "
            "Fernet; print(Fernet.generate_key().decode())'`"
        ) from exc
    return key


class Vault:
    """Encrypts and decrypts credential secrets."""

    def __init__(self, key: bytes) -> None:
        self._fernet = Fernet(key)

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, blob: bytes) -> str:
        """Raises InvalidToken when the key changed since the secret was stored."""
        return self._fernet.decrypt(blob).decode()


def rotate_key(old: bytes, blobs: list[bytes]) -> tuple[bytes, list[bytes]]:
    """A new Fernet key and `blobs` (secrets encrypted with `old`) encrypted again with it, in order."""
    new = Fernet.generate_key()
    both = MultiFernet([Fernet(new), Fernet(old)])
    return new, [both.rotate(blob) for blob in blobs]


class PrivateKeyError(ValueError):
    """A private key that cannot be used."""


def ssh_key_fingerprint(private_key: str) -> str:
    """SHA256 fingerprint (OpenSSH style) of the public half of an unencrypted private key."""
    data = private_key.encode()
    key: Any
    try:
        if b"BEGIN OPENSSH PRIVATE KEY" in data:
            key = serialization.load_ssh_private_key(data, password=None)
        else:
            key = serialization.load_pem_private_key(data, password=None)
    except TypeError as exc:
        raise PrivateKeyError("the key is protected by a passphrase; store an unencrypted key") from exc
    except (ValueError, Exception) as exc:  # cryptography raises several types for garbage input
        raise PrivateKeyError(
            "not a readable private key; paste the whole OpenSSH or PEM key including the BEGIN/END lines"
        ) from exc
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | dsa.DSAPrivateKey
    ):
        raise PrivateKeyError("unsupported key type; use an ed25519, ecdsa or rsa key")
    pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    blob = base64.b64decode(pub.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
