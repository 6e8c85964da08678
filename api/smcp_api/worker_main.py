"""`smcp-worker`: runs jobs from RabbitMQ (SMCP_BROKER_URL) with SMCP_WORKERS slots; see jobs/dispatch.py.

Reads the same settings as smcp-api (SMCP_DB_URL, SMCP_SECRET_KEY or <data_dir>/secret.key, SMCP_JOBS_DIR,
SMCP_COLLECTIONS_PATH, ...): any number of smcp-worker processes, on any machine that reaches the database,
the broker and the managed hosts. Each process uses the job users 1..SMCP_WORKERS of SMCP_JOB_USER_PREFIX
(one job at a time each, whatever the process): several on one machine need each its own prefix; one process
with more slots is simpler.
SIGTERM or SIGINT stops it: running jobs are stopped and end failed (interrupted), as in smcp-api.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from typing import Any

from smcp_api.core.config import Settings, SettingsError, load_settings

log = logging.getLogger("smcp_api.worker")


def _settings(parser: argparse.ArgumentParser, args: argparse.Namespace) -> Settings:
    overrides: dict[str, object] = {}
    for name in ("db_url", "data_dir", "broker_url", "workers"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    try:
        settings = load_settings(**overrides)
    except SettingsError as exc:
        parser.error(str(exc))
    if not settings.broker_url:
        parser.error(
            "SMCP_BROKER_URL is not set: smcp-worker runs the jobs smcp-api publishes to RabbitMQ "
            "(e.g. SMCP_BROKER_URL=amqp://smcp:PASSWORD@broker:5672/smcp); without a broker smcp-api runs "
            "the jobs itself (SMCP_WORKERS)"
        )
    if settings.workers < 1:
        parser.error("SMCP_WORKERS is 0: give smcp-worker at least one slot (jobs it runs at the same time)")
    return settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="smcp-worker", description="smcp job worker: runs the jobs smcp-api publishes to RabbitMQ"
    )
    parser.add_argument("--broker-url", help="AMQP URL (default: SMCP_BROKER_URL)")
    parser.add_argument("--db-url", help="SQLAlchemy URL (default: SMCP_DB_URL or sqlite in SMCP_DATA_DIR)")
    parser.add_argument("--data-dir", help="state directory (default: SMCP_DATA_DIR or /var/lib/smcp/api)")
    parser.add_argument("--workers", type=int, help="slots: jobs run at the same time (default: SMCP_WORKERS)")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    args = parser.parse_args(argv)
    settings = _settings(parser, args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    import warnings

    from celery import signals
    from celery.exceptions import SecurityWarning

    # Celery warns against root; smcp-worker, like smcp-api, needs root (or the mgmt_plane unit's capabilities)
    # to run each job as its own job user, and it accepts JSON messages only (the warning's concern is pickle).
    warnings.filterwarnings("ignore", category=SecurityWarning)

    from smcp_api.jobs.celery_app import make_celery
    from smcp_api.jobs.dispatch import BrokerWorker, broker_label
    from smcp_api.services import build_services

    services = build_services(settings)
    app = make_celery(settings.broker_url)
    runtime = BrokerWorker(services, app)

    def on_shutdown(**_: Any) -> None:
        runtime.shutting_down()

    signals.worker_shutting_down.connect(on_shutdown, weak=False)
    runtime.start()
    log.info(
        "smcp-worker %s: %d slot(s), broker %s, queue smcp.jobs",
        services.worker_id,
        settings.workers,
        broker_label(settings.broker_url),
    )
    worker = app.Worker(
        hostname=f"smcp-worker@{socket.gethostname()}.{os.getpid()}",
        pool_cls="threads",
        concurrency=settings.workers,
        loglevel=args.log_level.upper(),
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        quiet=True,
    )
    try:
        worker.start()
    finally:
        runtime.stop()
        app.close()
        services.engine.dispose()
    sys.exit(worker.exitcode or 0)


if __name__ == "__main__":
    main()
