"""`smcp-worker`: runs jobs from RabbitMQ (SMCP_BROKER_URL) with SMCP_WORKERS slots; see jobs/dispatch.py.

Reads the same settings as smcp-api (SMCP_DB_URL, SMCP_SECRET_KEY or <data_dir>/secret.key, SMCP_JOBS_DIR,
SMCP_COLLECTIONS_PATH, ...): any number of smcp-worker processes, on any machine that reaches the database,
the broker and the managed hosts. Each process uses the job users 1..SMCP_WORKERS of SMCP_JOB_USER_PREFIX
(one job at a time each, whatever the process): several on one machine need each its own prefix; one process
with more slots is simpler.
SIGTERM or SIGINT stops it: running jobs are stopped and end failed (interrupted), as in smcp-api.

Its own figures (slots, running jobs, the age of its last lease renewal: smcp_api.metrics.render_worker) are
served as Prometheus text on `GET /metrics` at --metrics-address:--metrics-port (SMCP_WORKER_METRICS_ADDRESS,
default 127.0.0.1; SMCP_WORKER_METRICS_PORT, default 9465; port 0: none). No token: the figures hold no secret;
bind a routable address only where Prometheus must reach it. The fleet's figures come from smcp-api's /metrics.
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from typing import Any

from smcp_api.core.config import Settings, SettingsError, load_settings
from smcp_api.metrics import MetricsServer, WorkerSnapshot, monotonic_age, render_worker

log = logging.getLogger("smcp_api.worker")
METRICS_PORT = 9465
METRICS_ADDRESS = "127.0.0.1"


def _metrics_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> tuple[str, int]:
    """The metrics endpoint's address and port (option, else environment, else default), checked."""
    address = args.metrics_address
    address_from = "--metrics-address"
    if address is None:
        address, address_from = (
            os.environ.get("SMCP_WORKER_METRICS_ADDRESS", METRICS_ADDRESS),
            "SMCP_WORKER_METRICS_ADDRESS",
        )
    try:
        ipaddress.ip_address(address)
    except ValueError:
        parser.error(
            f"{address_from}: '{address[:80]}' is not an IP address; give the address to serve /metrics on, "
            f"e.g. {METRICS_ADDRESS} (this machine only) or 0.0.0.0 (every interface)"
        )
    port_text, port_from = args.metrics_port, "--metrics-port"
    if port_text is None:
        port_text, port_from = os.environ.get("SMCP_WORKER_METRICS_PORT", str(METRICS_PORT)), "SMCP_WORKER_METRICS_PORT"
    port_text = port_text.strip()
    if not port_text.isdigit() or len(port_text) > 5 or int(port_text) > 65535:
        parser.error(
            f"{port_from}: '{port_text[:80]}' is not a TCP port; give 1-65535 (default {METRICS_PORT}), "
            "or 0 to serve no metrics"
        )
    return address, int(port_text)


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
    parser.add_argument(
        "--metrics-address",
        help=f"IP address of the /metrics endpoint (default: SMCP_WORKER_METRICS_ADDRESS or {METRICS_ADDRESS})",
    )
    parser.add_argument(
        "--metrics-port",
        help=f"TCP port of the /metrics endpoint, 0: none (default: SMCP_WORKER_METRICS_PORT or {METRICS_PORT})",
    )
    args = parser.parse_args(argv)
    settings = _settings(parser, args)
    metrics_address, metrics_port = _metrics_options(parser, args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    metrics_server: MetricsServer | None = None
    if metrics_port:
        try:  # bound before anything starts: a port in use stops the worker at once, with the fix
            metrics_server = MetricsServer(metrics_address, metrics_port, lambda: "")
        except OSError as exc:
            parser.error(
                f"--metrics-port / SMCP_WORKER_METRICS_PORT: cannot serve /metrics on {metrics_address} port "
                f"{metrics_port} ({exc.strerror or exc}); choose a free port (each smcp-worker on one machine needs "
                "its own), or 0 to serve no metrics"
            )

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
    if metrics_server is not None:
        host = socket.gethostname()

        def snapshot() -> str:
            return render_worker(
                WorkerSnapshot(
                    worker=services.worker_id,
                    host=host,
                    slots=settings.workers,
                    running=len(runtime.running()),
                    heartbeat_age=monotonic_age(runtime.heartbeat.last_beat),
                    heartbeat_failures=runtime.heartbeat.failures,
                    events_ingested=services.metrics.events_ingested,
                ),
                services.metrics.job_start_lines(),
            )

        metrics_server.set_render(snapshot)
        metrics_server.start()
        log.info("smcp-worker metrics on http://%s:%d/metrics", metrics_address, metrics_server.port)
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
        if metrics_server is not None:
            metrics_server.stop()
        runtime.stop()
        app.close()
        services.engine.dispose()
    sys.exit(worker.exitcode or 0)


if __name__ == "__main__":
    main()
