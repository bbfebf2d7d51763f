"""Thin tasks over ``mdt.notifications.delivery``; arguments are ids, never objects."""
from __future__ import annotations

from celery import shared_task

from mdt.notifications import delivery
from mdt.notifications.broker import DELIVER_TASK, DISPATCH_TASK


@shared_task(name=DISPATCH_TASK, ignore_result=True)
def dispatch() -> dict:
    """Release stale claims and publish one deliver task per due notification."""
    return vars(delivery.dispatch())


@shared_task(name=DELIVER_TASK, bind=True, ignore_result=True, max_retries=None)
def deliver(self, notification_id: int) -> str:
    """Send one notification, once; retry a little later on a transient error."""
    result = delivery.deliver(notification_id)
    if result.retry_in is not None:
        # A short countdown is safe here: it is seconds to minutes (capped),
        # far below the broker's visibility timeout, so Redis never hands the
        # waiting retry to a second worker; due times themselves live in the
        # database, never in countdowns. The row's attempts decide when to
        # give up (max_retries=None here), see delivery._retry_or_fail.
        raise self.retry(countdown=result.retry_in)
    return result.outcome.value
