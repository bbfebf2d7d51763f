"""Turn a notification row into an e-mail, or decide it is no longer relevant.

``build_email(notification)`` is what the delivery side calls at send time,
inside an app context (no request needed). It returns ``None`` when the
message should not go out any more (meeting past or cancelled, case
withdrawn, opinion already given, recipient removed or deactivated); the
caller then marks the row cancelled.

Templates: ``templates/emails/<kind>.txt`` and ``.html``, rendered with the
app's Jinja environment directly (not ``render_template``) so that no
request-bound context processor runs in the worker. Patient data is kept
to ``patient_reference(case)``: the case number and, by default, initials
and the last 3 characters of the hospital number (``EMAIL_PATIENT_DETAIL``).

Modules: ``context`` (what every template gets), ``builders`` (one per
kind), ``compose`` (the MIME message), ``headline`` (the in-app line).
"""
from __future__ import annotations

from email import message_from_bytes
from email import policy as email_policy
from email.message import EmailMessage, Message

from mdt.notifications.models import Notification
from mdt.notifications.render.builders import BUILDERS, awaiting_opinion, waiting_cases
from mdt.notifications.render.compose import compose
from mdt.notifications.render.context import (
    APP_NAME,
    HOSPITAL_NUMBER_TAIL,
    Draft,
    describe_offset,
    format_when,
    link,
    patient_reference,
    recipient_zone,
    shared_loads,
)
from mdt.notifications.render.headline import KIND_LABELS, headline

__all__ = [
    "APP_NAME", "HOSPITAL_NUMBER_TAIL", "KIND_LABELS", "Draft", "awaiting_opinion", "build_email",
    "build_message", "describe_offset", "format_when", "headline", "link", "patient_reference",
    "recipient_zone", "shared_loads", "waiting_cases",
]


def build_email(notification: Notification) -> EmailMessage | None:
    """Build the e-mail for ``notification``, or return None if it is no longer relevant."""
    message = build_message(notification)
    if message is None:
        return None
    return message_from_bytes(message.as_bytes(), policy=email_policy.default)


def build_message(notification: Notification) -> Message | None:
    """Build the e-mail as the worker sends it: like ``build_email``, but a compat32 message.

    Three times cheaper to build and serialise than an ``EmailMessage`` (whose
    header registry and content manager cost more than the templates), which
    matters when a worker sends thousands of reminders.
    """
    recipient = notification.recipient
    if not recipient.is_active:
        return None
    builder = BUILDERS.get(notification.kind)
    if builder is None:
        return None
    draft = builder(notification)
    if draft is None:
        return None
    return compose(notification, draft)
