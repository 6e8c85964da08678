"""`smcp-api`: run the management API with uvicorn."""

from __future__ import annotations

import argparse
import logging

import uvicorn

from smcp_api.core.config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="smcp-api", description="smcp management API service")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8780, help="port (default 8780)")
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: SMCP_DB_URL or sqlite in SMCP_DATA_DIR)")
    parser.add_argument("--data-dir", help="state directory (default: SMCP_DATA_DIR or /var/lib/smcp/api)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    overrides: dict[str, object] = {}
    if args.db_url:
        overrides["db_url"] = args.db_url
    if args.data_dir:
        overrides["data_dir"] = args.data_dir
    settings = Settings(**overrides)  # type: ignore[arg-type]
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from smcp_api.main import create_app

    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level=args.log_level, access_log=False)


if __name__ == "__main__":
    main()
