"""The Celery application shared by the publisher (smcp-api) and the consumers (smcp-worker).

One durable quorum queue, `smcp.jobs`, carries job ids (never job content: the database is the source of
truth, a worker reads the job from it). Publishing waits for the broker's confirm. A worker takes one
message per free slot (prefetch multiplier 1, `threads` pool of SMCP_WORKERS slots) and the message is
acknowledged when a slot takes it, right before the task claims the job with a guarded state change
(jobs/leases.py): from then on the database lease, not the message, covers a crashed worker (its job ends
interrupted when its heartbeat stops). Jobs run for hours; keeping the message unacknowledged that long would
need RabbitMQ's consumer timeout (30 min by default) above the longest job, and a redelivery after a crash
would only find the job already claimed.
"""

from __future__ import annotations

from celery import Celery
from celery.worker.consumer import Consumer
from kombu import Exchange, Queue

QUEUE = "smcp.jobs"
TASK = "smcp.run_job"


class JobsConsumer(Consumer):
    """Celery's consumer without native delayed delivery: Celery turns it on for quorum queues and declares 28
    queues and exchanges for ETA tasks on the broker; smcp publishes no ETA task."""

    class Blueprint(Consumer.Blueprint):
        default_steps = [s for s in Consumer.Blueprint.default_steps if not s.endswith(":DelayedDelivery")]


def jobs_queue() -> Queue:
    return Queue(
        QUEUE,
        Exchange(QUEUE, type="direct", durable=True),
        routing_key=QUEUE,
        durable=True,
        queue_arguments={"x-queue-type": "quorum"},
    )


def make_celery(broker_url: str) -> Celery:
    """The app for `broker_url` (amqp://...); no result backend (outcomes live in the database)."""
    app = Celery("smcp", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_queues=(jobs_queue(),),
        task_default_queue=QUEUE,
        task_default_exchange=QUEUE,
        task_default_routing_key=QUEUE,
        task_create_missing_queues=False,
        task_default_delivery_mode="persistent",
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=False,  # acknowledged when a slot takes the message: the database lease covers the rest
        task_reject_on_worker_lost=False,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,  # smcp-worker sets SMCP_WORKERS
        worker_enable_remote_control=False,  # no per-worker fan-out queues on the broker
        worker_consumer=f"{__name__}:JobsConsumer",
        worker_send_task_events=False,
        task_send_sent_event=False,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        broker_transport_options={"confirm_publish": True},
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=3,
        broker_heartbeat=30,
        # A publish happens inside the job-creation request: retry briefly, then give up (the job is committed;
        # the smcp-worker sweep publishes it again), rather than hold the request while the broker is away.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
    )
    return app
