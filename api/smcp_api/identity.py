"""Users and their passwords (argon2id), login throttling shared through the store, tokens issued to users.

No HTTP here: routes (and the console) map LoginFailed to 401 and Throttled to 429 with Retry-After.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from smcp_api.core.config import Settings
from smcp_api.errors import DomainError
from smcp_api.models import LoginThrottle, RoleBinding, Token, User, utcnow
from smcp_api.security import ROLE_RANK, hash_token, new_token

PASSWORD_MIN = 12
PASSWORD_MAX = 256  # argon2 hashes any length; a bound keeps a login request cheap to refuse
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
THROTTLE_AFTER = 5  # failures per (username, source) before logins from there wait
THROTTLE_FIRST = 30.0  # seconds of the first wait; doubles with each further failure
THROTTLE_MAX = 3600.0

_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) parameters
# verified when the username is unknown, so that an unknown name takes as long as a wrong password
_DUMMY_HASH = _hasher.hash("smcp: no such user, the same work as a real check")


class LoginFailed(DomainError):
    """Wrong username or password, or a disabled user: one message for all (no hint which)."""


class Throttled(DomainError):
    """Too many failed logins for this username from this address."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed logins for this user from this address; wait {retry_after} s before trying again"
        )
        self.retry_after = retry_after


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and password_hash is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def password_problem(username: str, password: str) -> str | None:
    """Why `password` is refused for `username` (the fix included), or None."""
    if len(password) < PASSWORD_MIN:
        return f"password: {len(password)} characters; use at least {PASSWORD_MIN} (a passphrase of a few words)"
    if len(password) > PASSWORD_MAX:
        return f"password: {len(password)} characters; use at most {PASSWORD_MAX}"
    if password.strip().lower() == username.lower():
        return "password: is the username; choose a password that is not the username"
    return None


def username_problem(username: str) -> str | None:
    if not USERNAME_RE.match(username):
        return (
            f"username: '{username[:80]}' is not a valid username; use 1-64 characters: lowercase letters, digits, "
            "'.', '_' and '-', starting with a letter or digit"
        )
    return None


def _throttle_key(username: str, source: str) -> str:
    return hashlib.sha256(username.lower().encode() + b"\0" + source.encode()).hexdigest()


def _wait(failures: int) -> float:
    return min(THROTTLE_FIRST * 2 ** (failures - THROTTLE_AFTER), THROTTLE_MAX)


def check_login(session: Session, username: str, password: str, source: str, settings: Settings | None = None) -> User:
    """The user `username` when `password` is theirs; raises Throttled (nothing checked) or LoginFailed.

    Failures are counted per (username, source address) in the store, so every replica sees them; after
    THROTTLE_AFTER failures the next login waits THROTTLE_FIRST seconds, doubling per further failure up to
    THROTTLE_MAX. A success clears the count. The caller commits (a failure's count too: commit, then raise).
    """
    now = utcnow()
    key = _throttle_key(username, source)
    throttle = session.get(LoginThrottle, key)
    if throttle is not None and throttle.blocked_until is not None and throttle.blocked_until > now:
        raise Throttled(max(1, int((throttle.blocked_until - now).total_seconds() + 0.999)))
    user = session.scalar(select(User).where(User.username == username.lower()))
    if settings is not None and settings.ldap_url and (user is None or user.source == "ldap"):
        # a directory user (or a name unknown here): the LDAP server checks the password (ldap_auth.py)
        from smcp_api.ldap_auth import ldap_login

        directory_user = ldap_login(settings, session, username, password) if not username_problem(username) else None
        ok, user = directory_user is not None, directory_user or user
    else:
        ok = verify_password(user.password_hash if user else None, password)
    if ok and user is not None and not user.disabled:
        if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        if throttle is not None:
            session.delete(throttle)
        user.last_login_at = now
        return user
    if throttle is None:
        throttle = LoginThrottle(key=key, failures=0)
        session.add(throttle)
    throttle.failures += 1
    throttle.last_failure_at = now
    if throttle.failures >= THROTTLE_AFTER:
        throttle.blocked_until = now + timedelta(seconds=_wait(throttle.failures))
    raise LoginFailed("wrong username or password (or the user is disabled); check both and try again")


def role_in(session: Session, user: User, project_id: str) -> str | None:
    """The user's role in a project: admin everywhere for platform admins, else the binding's, else None."""
    if user.platform_admin:
        return "admin"
    return session.scalar(
        select(RoleBinding.role).where(RoleBinding.user_id == user.id, RoleBinding.project_id == project_id)
    )


def lower_role(a: str, b: str) -> str:
    return a if ROLE_RANK[a] <= ROLE_RANK[b] else b


def issue_token(
    session: Session,
    user: User,
    *,
    name: str,
    role: str,
    project_id: str | None,
    expires_at: datetime | None,
) -> tuple[Token, str]:
    """A new token of `user` (added and flushed, the caller commits) and its secret (shown once)."""
    secret = new_token()
    token = Token(
        name=name,
        role=role,
        token_hash=hash_token(secret),
        user_id=user.id,
        project_id=project_id,
        expires_at=expires_at,
    )
    session.add(token)
    session.flush()
    return token, secret
