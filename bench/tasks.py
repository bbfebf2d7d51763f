"""A task that does nothing: the bare Celery rate the notification rate is compared with.

Loaded into the benchmark's worker only (``celery -A worker worker -I bench.tasks``).
"""
from __future__ import annotations

from celery import shared_task


@shared_task(name="bench.noop", ignore_result=True)
def noop(number: int) -> None:
    """Do nothing."""
