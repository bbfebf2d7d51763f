"""Celery settings from the app configuration, and publishing tasks by name.

The worker (``worker/``) builds its Celery app from ``celery_settings``; the
dispatcher publishes deliver tasks by *name*, so ``mdt`` needs no import of
``worker`` (the direction of imports is worker → mdt). Publishing never
retries and gives up after a short connection timeout: a broker that is
down must not hang the dispatcher (its rows simply wait for the next run).
"""
from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from celery import Celery
from flask import Flask, current_app

DELIVER_TASK = "mdt.notifications.deliver"
DISPATCH_TASK = "mdt.notifications.dispatch"
#: Seconds to wait for the broker when publishing before giving up.
CONNECT_TIMEOUT = 4.0


def celery_settings(config: dict[str, Any]) -> dict[str, Any]:
    """Return the Celery configuration for the app's broker and queue."""
    broker_url = config["BROKER_URL"]
    transport_options: dict[str, Any] = {}
    if broker_url.startswith(("redis://", "rediss://")):
        # Set explicitly: a task not acknowledged within this many seconds is
        # handed to another worker. Every retry delay stays far below it.
        transport_options["visibility_timeout"] = int(config["BROKER_VISIBILITY_TIMEOUT"])
        transport_options["socket_connect_timeout"] = CONNECT_TIMEOUT
    # kombu's SQLAlchemy transport (development) passes its options to
    # create_engine and has no redelivery at all: a message taken by a worker
    # that dies is gone. The dispatcher publishes such a row again after its
    # dispatch lease, so nothing is lost there either.
    return {
        "broker_url": broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_timeout": CONNECT_TIMEOUT,
        # The worker keeps reconnecting when the broker goes away and comes
        # back; publishing passes ``retry=False`` instead (see ``publish``).
        "broker_connection_retry_on_startup": True,
        "task_default_queue": config.get("BROKER_QUEUE", "mdt"),
        "task_serializer": "json",
        "accept_content": ["json"],
        "result_serializer": "json",
        "task_ignore_result": True,
        # Acknowledge after the task ran: a worker that dies mid-task leaves
        # its message to be delivered again (the row claim keeps it single).
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        # One message at a time per process: a killed process strands at most
        # one task, and a long batch is shared evenly between workers.
        "worker_prefetch_multiplier": 1,
        "task_publish_retry": False,
        "worker_hijack_root_logger": False,
        "broker_channel_error_retry": False,
        "timezone": "UTC",
        "enable_utc": True,
    }


def publisher_app(app: Flask | None = None) -> Celery:
    """Return a light Celery app to publish with, which gives up quickly on a dead broker.

    It is separate from the worker's app (also in the worker process) because
    its connection must fail fast, while the worker's consumer keeps
    reconnecting until the broker is back.
    """
    app = app or current_app._get_current_object()  # type: ignore[attr-defined]
    celery_app = app.extensions.get("mdt_publisher")
    if celery_app is None:
        settings = celery_settings(app.config)
        # kombu's own connection retries (redis-py's come on top): one, quick.
        settings["broker_transport_options"] = {
            **settings["broker_transport_options"],
            "max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1,
        }
        celery_app = Celery("mdt-publisher", set_as_current=False)
        celery_app.conf.update(settings)
        app.extensions["mdt_publisher"] = celery_app
    return celery_app


def publish(task_name: str, *args: Any, app: Flask | None = None, **options: Any) -> None:
    """Publish one task by name, once, without waiting on a broker that is down."""
    publisher_app(app).send_task(task_name, args=args, retry=False, **options)


def describe(broker_url: str) -> str:
    """Name the broker for an operator, without its password ("Redis at redis.internal:6379/0")."""
    parts = urlsplit(broker_url)
    if parts.scheme in ("redis", "rediss"):
        host = parts.hostname or "localhost"
        return f"Redis at {host}:{parts.port or 6379}{parts.path or ''}"
    return f"the broker {parts.scheme}://…{parts.path[-40:]}" if parts.path else broker_url
