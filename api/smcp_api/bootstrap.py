"""First-start tokens, without HTTP: the API's start-up and `smcp-api bootstrap` (run by the mgmt_plane role).

- `ensure_admin_token`: on an empty token table, an admin token of the platform admin `admin` (created without a
  password if missing) is created and written to a 0600 file;
- `ensure_viewer_token`: the token in a file is a valid viewer token of that name, or a new one replaces it
  (the Prometheus scrape token: the platform admin's, scoped to project `default`).
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from smcp_api.core.config import Settings
from smcp_api.db import session_scope, startup_lock
from smcp_api.models import DEFAULT_PROJECT_ID, Token, User
from smcp_api.security import hash_token, new_token, write_private_file
from smcp_api.services import build_services

ADMIN_TOKEN_NAME = "bootstrap-admin"  # noqa: S105 (a token's name, not a secret)
ADMIN_USER = "admin"  # the platform admin migration 0004 creates (no password until one is set)


def platform_admin(session: Session) -> User:
    """The user `admin` (a platform admin, created without a password when missing)."""
    user = session.scalar(select(User).where(User.username == ADMIN_USER))
    if user is None:
        user = User(username=ADMIN_USER, platform_admin=True)
        session.add(user)
        session.flush()
    return user


def ensure_admin_token(sessions: sessionmaker[Session], path: Path) -> str | None:
    """With no token at all: an admin token, stored hashed, written to `path` (0600) and returned; else None.

    The file is written before the commit: a token that could not be written down is not kept. Under the
    start-up lock (db.startup_lock): replicas starting at once on an empty store create one admin token.
    """
    engine = sessions.kw["bind"]
    with startup_lock(engine), session_scope(sessions) as session:
        if session.scalar(select(func.count()).select_from(Token)):
            return None
        secret = new_token()
        owner = platform_admin(session)
        session.add(Token(name=ADMIN_TOKEN_NAME, role="admin", token_hash=hash_token(secret), user_id=owner.id))
        session.flush()
        write_private_file(path, secret + "\n")
    return secret


def ensure_viewer_token(sessions: sessionmaker[Session], path: Path, name: str) -> bool:
    """The token in `path` is the viewer token `name`; otherwise a new one replaces both. True when replaced."""
    current = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
    with startup_lock(sessions.kw["bind"]), session_scope(sessions) as session:  # one replica at a time
        valid = bool(current) and session.scalar(
            select(func.count())
            .select_from(Token)
            .where(Token.name == name, Token.token_hash == hash_token(current), Token.role == "viewer")
        )
        if valid:
            return False
        session.execute(delete(Token).where(Token.name == name))
        secret = new_token()
        owner = platform_admin(session)
        session.add(
            Token(
                name=name,
                role="viewer",
                token_hash=hash_token(secret),
                user_id=owner.id,
                project_id=DEFAULT_PROJECT_ID,
            )
        )
        session.flush()
        write_private_file(path, secret + "\n")
    return True


def bootstrap(settings: Settings, scrape_file: Path, scrape_name: str) -> dict[str, bool]:
    """Before the service's first start: the store migrated, the admin token (to its file, never printed) and the
    scrape token `scrape_name` in `scrape_file`. Returns which of the two were created (never a secret)."""
    services = build_services(settings)
    try:
        admin = ensure_admin_token(services.sessions, settings.token_file()) is not None
        scrape = ensure_viewer_token(services.sessions, scrape_file, scrape_name)
    finally:
        services.engine.dispose()
    return {"admin_token": admin, "scrape_token": scrape}
