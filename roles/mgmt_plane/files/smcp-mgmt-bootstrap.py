"""Bootstrap of an embedded smcp-api (run by the mgmt_plane role as the service user, before the service).

Migrates the database, then makes sure that
- an admin token exists: on an empty token table one is created and written to SMCP_ADMIN_TOKEN_FILE (0600),
  so the service never prints a bootstrap token to its journal;
- the token in the scrape-token file (argument 1) is a valid viewer token named by argument 2: otherwise a
  new one replaces it.
Prints one JSON line {"admin_token": bool, "scrape_token": bool} (true = created); never a secret.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from smcp_api.core.config import Settings
from smcp_api.db import session_scope
from smcp_api.main import build_services
from smcp_api.models import Token
from smcp_api.security import hash_token, new_token, write_private_file
from sqlalchemy import delete, func, select


def bootstrap(settings: Settings, scrape_file: Path, scrape_name: str) -> dict[str, bool]:
    services = build_services(settings)
    created = {"admin_token": False, "scrape_token": False}
    try:
        with session_scope(services.sessions) as session:
            if not session.scalar(select(func.count()).select_from(Token)):
                secret = new_token()
                session.add(Token(name="bootstrap-admin", role="admin", token_hash=hash_token(secret)))
                session.flush()
                write_private_file(settings.token_file(), secret + "\n")
                created["admin_token"] = True
        current = scrape_file.read_text(encoding="utf-8").strip() if scrape_file.is_file() else ""
        with session_scope(services.sessions) as session:
            valid = bool(current) and session.scalar(
                select(func.count())
                .select_from(Token)
                .where(Token.name == scrape_name, Token.token_hash == hash_token(current), Token.role == "viewer")
            )
            if not valid:
                session.execute(delete(Token).where(Token.name == scrape_name))
                secret = new_token()
                session.add(Token(name=scrape_name, role="viewer", token_hash=hash_token(secret)))
                session.flush()
                write_private_file(scrape_file, secret + "\n")
                created["scrape_token"] = True
    finally:
        services.engine.dispose()
    return created


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        sys.stderr.write("usage: smcp-mgmt-bootstrap.py SCRAPE_TOKEN_FILE SCRAPE_TOKEN_NAME\n")
        return 2
    print(json.dumps(bootstrap(Settings(), Path(argv[1]), argv[2])))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
