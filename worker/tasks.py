"""Thin tasks over ``mdt.delivery``; arguments are ids, never objects."""
from __future__ import annotations

from collections import Counter

from celery import Task, shared_task

from mdt.delivery import dispatcher
from mdt.delivery import services as delivery
from mdt.delivery.broker import DELIVER_TASK, DISPATCH_TASK


@shared_task(name=DISPATCH_TASK, ignore_result=True)
def dispatch() -> dict[str, object]:
    """Release stale claims and publish deliver tasks for the due notifications, in chunks."""
    return vars(dispatcher.dispatch())


@shared_task(name=DELIVER_TASK, bind=True, ignore_result=True, max_retries=None)
def deliver(self: Task, notification_ids: list[int]) -> str:
    """Send each notification of the batch once; retry the ones with a transient error later."""
    results = delivery.deliver_batch(notification_ids)
    retry = {i: r.retry_in for i, r in results.items() if r.retry_in is not None}
    if retry:
        # Only the rows that failed go again, in one task, once the longest
        # of their delays has passed (the rows sent are done: their claim
        # would fail anyway). A short countdown is safe here: it is seconds to
        # minutes (capped), far below the broker's visibility timeout, so
        # Redis never hands the waiting retry to a second worker; due times
        # themselves live in the database, never in countdowns. The row's
        # attempts decide when to give up (max_retries=None here), see
        # mdt.delivery.services._retry_or_fail.
        raise self.retry(args=[list(retry)], countdown=max(retry.values()))
    outcomes = Counter(r.outcome.value for r in results.values())
    if len(outcomes) == 1:
        return next(iter(outcomes))
    return " ".join(f"{outcome}={count}" for outcome, count in sorted(outcomes.items()))
