"""The real worker app with a fault injected, for tests: ``celery -A tests.helpers.faults worker``.

It is ``worker.celery`` (same Flask app, tasks and settings) with one function
wrapped, chosen by the environment, so that a test can kill the worker at an
exact point of a delivery instead of hoping a random kill lands there:

* ``MDT_TEST_KILL_AT_CLAIM=n``: the process SIGKILLs itself when it starts
  its n-th claim, i.e. after the previous row was sent and its outcome
  recorded, before the next row is touched;
* ``MDT_TEST_KILL_AFTER_SEND=n``: it SIGKILLs itself as soon as the SMTP
  server has accepted its n-th message, before the outcome is recorded (the
  window in which a message can be sent twice).
"""
from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Callable
from typing import Any

from mdt.delivery import mail
from mdt.delivery import services as delivery
from worker.celery import celery_app, flask_app  # noqa: F401  (the app celery -A loads)


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _kill_on_call(function: Callable[..., Any], n: int, *, after: bool) -> Callable[..., Any]:
    calls = itertools.count(1)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        number = next(calls)
        if number == n and not after:
            _die()
        result = function(*args, **kwargs)
        if number == n and after:
            _die()
        return result

    return wrapped


if os.environ.get("MDT_TEST_KILL_AT_CLAIM"):
    delivery.claim = _kill_on_call(delivery.claim, int(os.environ["MDT_TEST_KILL_AT_CLAIM"]),
                                   after=False)
if os.environ.get("MDT_TEST_KILL_AFTER_SEND"):
    mail.SMTPBackend.send = _kill_on_call(  # type: ignore[method-assign]
        mail.SMTPBackend.send, int(os.environ["MDT_TEST_KILL_AFTER_SEND"]), after=True)
