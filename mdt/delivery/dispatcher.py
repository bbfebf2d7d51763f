"""The dispatcher: one at a time under a lease, it publishes deliver tasks for due rows."""
from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from mdt import clock
from mdt.db import rowcount
from mdt.delivery import broker, retry
from mdt.delivery.models import DispatcherRun, Lease
from mdt.delivery.services import DISPATCH_LEASE, Status
from mdt.extensions import db
from mdt.notifications.models import Notification

log = logging.getLogger(__name__)

#: How long one dispatcher may hold the single-dispatcher lease per batch.
DISPATCHER_LEASE = timedelta(minutes=5)
DISPATCHER_LEASE_NAME = "notification-dispatcher"
#: Due rows read per pass of the dispatcher's loop.
BATCH_SIZE = 500
#: Dispatcher runs older than this are deleted.
KEEP_RUNS = timedelta(days=7)


#: Publishes one deliver task for a chunk of row ids.
Publisher = Callable[[list[int]], None]


def acquire_lease(name: str, holder: str, duration: timedelta) -> bool:
    """Take or extend the named lease for ``holder``; return whether we hold it."""
    now = clock.now()
    insert = postgresql.insert if db.engine.dialect.name == "postgresql" else sqlite.insert
    db.session.execute(insert(Lease).values(name=name, holder=None, expires_at=now)
                       .on_conflict_do_nothing(index_elements=["name"]))
    # Atomic on both databases: PostgreSQL re-checks the WHERE after waiting
    # for a concurrent updater's row lock; SQLite has one writer at a time.
    won = rowcount(db.session.execute(
        update(Lease).where(Lease.name == name,
                            or_(Lease.expires_at <= now, Lease.holder == holder))
        .values(holder=holder, expires_at=now + duration)
        .execution_options(synchronize_session=False)
    )) == 1
    db.session.commit()
    return won


def release_lease(name: str, holder: str) -> None:
    """Give the lease back early so the next run need not wait for it to expire."""
    db.session.execute(update(Lease).where(Lease.name == name, Lease.holder == holder)
                       .values(holder=None, expires_at=clock.now())
                       .execution_options(synchronize_session=False))
    db.session.commit()


@dataclass
class DispatchResult:
    """What one dispatcher pass did (``ran`` is False when another one holds the lease)."""

    ran: bool
    released: int = 0
    published: int = 0
    unpublished: int = 0
    error: str | None = None
    #: The row tried ahead of its time to see whether the SMTP server answers again.
    probed: int | None = None


def publish_deliver(notification_ids: list[int]) -> None:
    """Publish one deliver task for a chunk of rows, by task name."""
    broker.publish(broker.DELIVER_TASK, list(notification_ids))


def dispatch(publish: Publisher | None = None, *, holder: str | None = None) -> DispatchResult:
    """Run one dispatcher pass: release stale claims, probe, publish every due row, record it."""
    publish = publish or publish_deliver
    holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    if not acquire_lease(DISPATCHER_LEASE_NAME, holder, DISPATCHER_LEASE):
        log.info("another dispatcher holds the lease; skipping this run")
        return DispatchResult(ran=False)
    run = DispatcherRun(started_at=clock.now(), holder=holder)
    db.session.add(run)
    db.session.commit()
    result = DispatchResult(ran=True)
    try:
        result.released = release_stale_claims()
        result.probed = retry.probe(clock.now())
        db.session.commit()
        _publish_due(publish, holder, result)
    finally:
        db.session.rollback()
        _record_run(run.id, result)
        release_lease(DISPATCHER_LEASE_NAME, holder)
    return result


#: Written on a released row: it may have reached the SMTP server just before its worker died.
RELEASED_NOTE = ("released: the worker sending it stopped (claim lease passed); "
                 "sent again, so it may arrive twice if the server had already accepted it")


def release_stale_claims() -> int:
    """Put ``sending`` rows whose worker died (claim lease passed) back to pending."""
    released = rowcount(db.session.execute(
        update(Notification)
        .where(Notification.status == Status.SENDING, Notification.lease_expires_at < clock.now())
        .values(status=Status.PENDING, claimed_at=None, lease_expires_at=None,
                last_error=RELEASED_NOTE)
        .execution_options(synchronize_session=False)
    ))
    db.session.commit()
    if released:
        log.warning("released %d notifications claimed by a worker that did not finish",
                    released)
    return released


def due_batch(limit: int = BATCH_SIZE) -> list[int]:
    """Return ids of ``pending`` rows due for an attempt that no task holds, oldest first.

    Served by ``ix_notifications_pending_next_attempt``: rows waiting for a
    retry, and rows due later, are not read.
    """
    now = clock.now()
    return list(db.session.scalars(
        select(Notification.id)
        .where(Notification.status == Status.PENDING, Notification.next_attempt_at <= now,
               Notification.due_at <= now,
               or_(Notification.lease_expires_at.is_(None),
                   Notification.lease_expires_at <= now))
        .order_by(Notification.next_attempt_at, Notification.id)
        .limit(limit)
    ))


def _publish_due(publish: Publisher, holder: str, result: DispatchResult) -> None:
    size = max(1, int(current_app.config["NOTIFY_DELIVER_BATCH"]))
    while ids := due_batch():
        published: list[int] = []
        try:
            for start in range(0, len(ids), size):
                chunk = ids[start:start + size]
                publish(chunk)
                published.extend(chunk)
        except Exception as exc:  # kombu raises several kinds when the broker is down
            result.unpublished += len(ids) - len(published)
            result.error = f"publishing failed: {exc!r}"[:1000]
            log.warning("broker unavailable, %d due notifications wait for the next run: %r",
                        len(ids) - len(published), exc)
        _mark_dispatched(published)
        result.published += len(published)
        db.session.commit()
        if result.error or not acquire_lease(DISPATCHER_LEASE_NAME, holder, DISPATCHER_LEASE):
            return


def _mark_dispatched(ids: list[int]) -> None:
    if ids:
        now = clock.now()
        db.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.status == Status.PENDING)
            .values(dispatched_at=now, lease_expires_at=now + DISPATCH_LEASE)
            .execution_options(synchronize_session=False))


def _record_run(run_id: int, result: DispatchResult) -> None:
    now = clock.now()
    db.session.execute(
        update(DispatcherRun).where(DispatcherRun.id == run_id)
        .values(finished_at=now, released=result.released, published=result.published,
                unpublished=result.unpublished, error=result.error)
        .execution_options(synchronize_session=False))
    db.session.execute(sa.delete(DispatcherRun).where(DispatcherRun.started_at < now - KEEP_RUNS))
    db.session.commit()
