"""The beat schedule: what runs periodically."""
from __future__ import annotations

from mdt.delivery.broker import DISPATCH_TASK

#: Seconds between dispatcher runs.
DISPATCH_EVERY = 60.0


def beat_schedule() -> dict[str, dict]:
    """Return the periodic tasks: the notification dispatcher every minute."""
    return {
        "dispatch-notifications": {
            "task": DISPATCH_TASK,
            "schedule": DISPATCH_EVERY,
            # A dispatch still queued when the next is due is useless: drop it,
            # so a worker that was down does not find a pile of them.
            "options": {"expires": DISPATCH_EVERY - 5},
        },
    }
