"""Thin tasks over ``mdt.delivery``; arguments are ids, never objects."""
from __future__ import annotations

from collections import Counter

from celery import shared_task

from mdt.delivery import dispatcher
from mdt.delivery import services as delivery
from mdt.delivery.broker import DELIVER_TASK, DISPATCH_TASK


@shared_task(name=DISPATCH_TASK, ignore_result=True)
def dispatch() -> dict[str, object]:
    """Release stale claims and publish deliver tasks for the due notifications, in chunks."""
    return vars(dispatcher.dispatch())


@shared_task(name=DELIVER_TASK, ignore_result=True)
def deliver(notification_ids: list[int]) -> str:
    """Send each notification of the batch once; a row that failed waits in the database.

    A transient failure puts the row back to pending with its next attempt
    time (``mdt.delivery.retry``); the dispatcher publishes it again then.
    No countdown: a waiting retry is a row, never a task held by a worker.
    """
    results = delivery.deliver_batch(notification_ids)
    outcomes = Counter(r.outcome.value for r in results.values())
    if len(outcomes) == 1:
        return next(iter(outcomes))
    return " ".join(f"{outcome}={count}" for outcome, count in sorted(outcomes.items()))
