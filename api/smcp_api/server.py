"""`smcp-api`: run the management API with uvicorn; `smcp-api bootstrap` prepares its store and tokens."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

import uvicorn

from smcp_api.core.config import Settings, SettingsError, load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="smcp-api", description="smcp management API service")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8780, help="port (default 8780)")
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: SMCP_DB_URL or sqlite in SMCP_DATA_DIR)")
    parser.add_argument("--data-dir", help="state directory (default: SMCP_DATA_DIR or /var/lib/smcp/api)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    parser.add_argument(
        "--rotate-secret-key",
        action="store_true",
        help="re-encrypt every stored credential with a new secret key, save the key, and exit (service stopped)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    boot = commands.add_parser(
        "bootstrap",
        help="before the first start: migrate the store, create the admin token (written to the admin token file, "
        "never printed) and a viewer token for Prometheus; prints which were created as one JSON line",
        description="Migrates the database; on an empty token table creates an admin token and writes it to "
        "SMCP_ADMIN_TOKEN_FILE (0600) so the service never prints one; makes sure the token in "
        "--scrape-token-file is a valid viewer token named --scrape-token-name (else a new one replaces it). "
        'Prints {"admin_token": bool, "scrape_token": bool} (true = created); never a secret.',
    )
    boot.add_argument("--scrape-token-file", type=Path, required=True, help="file holding the viewer token (0600)")
    boot.add_argument("--scrape-token-name", required=True, help="name of that token, e.g. prometheus-mgmt1")
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if args.db_url:
        overrides["db_url"] = args.db_url
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "bootstrap":
        from smcp_api.bootstrap import bootstrap

        sys.stdout.write(json.dumps(bootstrap(settings, args.scrape_token_file, args.scrape_token_name)) + "\n")
        return
    if args.rotate_secret_key:
        rotate_secret_key(settings)
        return
    from smcp_api.main import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level, access_log=False)


def rotate_secret_key(settings: Settings) -> None:
    """Every credential (and encrypted artifact: cluster kubeconfigs) re-encrypted with a new key in one
    transaction, then the key file replaced.

    With SMCP_SECRET_KEY set (no key file), the new key is printed once: put it where the service reads it.
    """
    from sqlalchemy import select

    from smcp_api import artifacts
    from smcp_api.db import make_engine, make_sessionmaker, migrate, session_scope
    from smcp_api.models import Credential
    from smcp_api.security import load_or_create_key, rotate_key, write_private_file

    engine = make_engine(settings.database_url())
    migrate(engine)
    key_file = settings.data_dir / "secret.key"
    old = load_or_create_key(settings.secret_key, key_file)
    with session_scope(make_sessionmaker(engine)) as session:
        creds = list(session.scalars(select(Credential)))
        stored = artifacts.encrypted_contents(session)
        new, blobs = rotate_key(old, [c.secret for c in creds] + [content for _, content in stored])
        for cred, blob in zip(creds, blobs, strict=False):
            cred.secret = blob
        for (artifact_id, _), blob in zip(stored, blobs[len(creds) :], strict=True):
            artifacts.replace_content(session, artifact_id, blob)
        if not settings.secret_key:
            write_private_file(key_file.with_name("secret.key.new"), new + b"\n")
    if settings.secret_key:
        sys.stdout.write(f"new secret key (set it as SMCP_SECRET_KEY before starting the service):\n{new.decode()}\n")
    else:
        key_file.with_name("secret.key.new").replace(key_file)
        sys.stderr.write(f"smcp-api: {len(creds)} credentials re-encrypted; new key in {key_file}\n")
    engine.dispose()


if __name__ == "__main__":
    main()
