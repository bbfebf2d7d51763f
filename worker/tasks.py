"""Thin tasks over ``mdt.notifications.delivery``; arguments are ids, never objects."""
from __future__ import annotations

from collections import Counter

from celery import shared_task

from mdt.notifications import delivery
from mdt.notifications.broker import DELIVER_TASK, DISPATCH_TASK


@shared_task(name=DISPATCH_TASK, ignore_result=True)
def dispatch() -> dict:
    """Release stale claims and publish deliver tasks for the due notifications, in chunks."""
    return vars(delivery.dispatch())


@shared_task(name=DELIVER_TASK, bind=True, ignore_result=True, max_retries=None)
def deliver(self, notification_ids: list[int] | int) -> str:
    """Send each notification of the batch once; retry the ones with a transient error later."""
    # A single id is what tasks published before batching carry.
    ids = [notification_ids] if isinstance(notification_ids, int) else notification_ids
    results = delivery.deliver_batch(ids)
    retry = {i: r.retry_in for i, r in results.items() if r.retry_in is not None}
    if retry:
        # Only the rows that failed go again, in one task, once the longest
        # of their delays has passed (the rows sent are done: their claim
        # would fail anyway). A short countdown is safe here: it is seconds to
        # minutes (capped), far below the broker's visibility timeout, so
        # Redis never hands the waiting retry to a second worker; due times
        # themselves live in the database, never in countdowns. The row's
        # attempts decide when to give up (max_retries=None here), see
        # delivery._retry_or_fail.
        raise self.retry(args=[list(retry)], countdown=max(retry.values()))
    outcomes = Counter(r.outcome.value for r in results.values())
    if len(outcomes) == 1:
        return next(iter(outcomes))
    return " ".join(f"{outcome}={count}" for outcome, count in sorted(outcomes.items()))
