"""What every e-mail's template gets: zone, links, the least patient detail, shared loads.

Within one delivery batch (``shared_loads``) the meeting, its attendees and
its agenda are loaded once for all the e-mails built.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload

from mdt import timezones
from mdt.auth.models import User
from mdt.cases.models import Case
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
)
from mdt.notifications.models import Notification
from mdt.web import external_url

APP_NAME = "mdt"


#: Characters of the hospital number shown in e-mails (the end of it).
HOSPITAL_NUMBER_TAIL = 3


@dataclass
class Draft:
    """What a kind-specific builder decided: subject, template context, calendar."""

    subject: str
    context: dict[str, Any] = field(default_factory=dict)
    #: (iCalendar bytes, METHOD) to attach, for invitations.
    calendar: tuple[bytes, str] | None = None


def invitation_is_update(payload: dict[str, Any]) -> bool:
    """Return whether an invitation row is an update: its person was sent one before.

    Decided when the row is written (``hooks._invite``); rows written before
    that was recorded fall back to the meeting's sequence.
    """
    if "update" in payload:
        return bool(payload["update"])
    return int(payload.get("sequence", 0)) > 0


def recipient_zone(user: User, meeting: Meeting | None = None) -> str:
    """Return the zone to show times in: the person's, else the meeting's, else the app's."""
    return timezones.first_valid(user.time_zone, meeting.time_zone if meeting else None)


def format_when(moment: datetime, zone: str) -> str:
    """Format ``moment`` in ``zone`` with its abbreviation and name.

    For example "Thu 05 Nov 2026, 14:00 GMT (Europe/London)".
    """
    local = timezones.to_local(moment, zone)
    return f"{local.strftime('%a %d %b %Y, %H:%M')} {local.tzname()} ({zone})"


def patient_reference(case: Case) -> str:
    """Return the least patient detail an e-mail may carry for ``case``."""
    label = f"Case {case.id}"
    if current_app.config.get("EMAIL_PATIENT_DETAIL", "initials") != "initials":
        return label
    patient = case.patient
    initials = "".join(f"{part[0].upper()}." for part in patient.name.split() if part)
    tail = patient.hospital_number[-HOSPITAL_NUMBER_TAIL:]
    return f"{label} · {initials} …{tail}"


def link(endpoint: str, **values: Any) -> str:
    """Return the absolute address of a page of this installation (sign-in needed)."""
    return external_url(endpoint, **values)


def describe_offset(minutes: int) -> str:
    """Say how long before the meeting a reminder goes out ("24 hours", "1 hour", "30 minutes")."""
    if minutes % (24 * 60) == 0 and minutes >= 48 * 60:
        value, unit = minutes // (24 * 60), "day"
    elif minutes % 60 == 0:
        value, unit = minutes // 60, "hour"
    else:
        value, unit = minutes, "minute"
    return f"{value} {unit}{'' if value == 1 else 's'}"


#: Loads shared by the e-mails of one delivery batch, by key; None outside a batch.
_shared: ContextVar[dict[tuple, Any] | None] = ContextVar("mdt_render_shared", default=None)


@contextmanager
def shared_loads() -> Iterator[None]:
    """Share the meeting, its attendees and agenda between the e-mails built inside."""
    token = _shared.set({})
    try:
        yield
    finally:
        _shared.reset(token)


def _once(key: tuple, load: Callable[[], Any]) -> Any:
    """``load()``, or within a batch the value it gave the first time for ``key``."""
    shared = _shared.get()
    if shared is None:
        return load()
    if key not in shared:
        shared[key] = load()
    return shared[key]


def notification_meeting(notification: Notification) -> Meeting | None:
    """Return the row's meeting with its series (shared within a delivery batch)."""
    if notification.meeting_id is None:
        return None
    # The series comes in the same query: every meeting e-mail names it.
    return _once(("meeting", notification.meeting_id),
                 lambda: db.session.get(Meeting, notification.meeting_id,
                                        options=[joinedload(Meeting.series)]))


def upcoming_meeting(notification: Notification) -> Meeting | None:
    """Return the notification's meeting if it is still scheduled and in the future."""
    meeting = notification_meeting(notification)
    return meeting if meeting is not None and meeting.is_upcoming else None


def is_attendee(meeting: Meeting, user: User) -> bool:
    """Return True if ``user`` is (still) invited to ``meeting``."""
    if _shared.get() is not None:  # in a batch: one query for every recipient
        return user.id in _once(("attendees", meeting.id), lambda: set(db.session.scalars(
            sa.select(Attendance.user_id).where(Attendance.meeting_id == meeting.id))))
    return (db.session.scalar(
        sa.select(sa.func.count(Attendance.id)).where(
            Attendance.meeting_id == meeting.id, Attendance.user_id == user.id)) or 0) > 0


def agenda(meeting: Meeting) -> list[AgendaItem]:
    """Return the meeting's agenda (withdrawn items left out) with patients, in order."""
    return _once(("agenda", meeting.id), lambda: list(db.session.scalars(
        sa.select(AgendaItem)
        .where(AgendaItem.meeting_id == meeting.id, AgendaItem.status != ItemStatus.WITHDRAWN)
        .options(joinedload(AgendaItem.case).joinedload(Case.patient))
        .order_by(AgendaItem.position)
    )))


def base_context(notification: Notification,
                 meeting: Meeting | None = None) -> dict[str, Any]:
    """Return what every e-mail template gets: recipient, zone, ``when``, common links."""
    user = notification.recipient
    zone = recipient_zone(user, meeting)
    return {
        "app_name": APP_NAME,
        "recipient": user,
        "zone": zone,
        "when": lambda moment: format_when(moment, zone),
        "patient_ref": patient_reference,
        "meeting": meeting,
        "meeting_link": link("meetings.detail", meeting_id=meeting.id) if meeting else None,
        "preferences_link": link("notifications.preferences"),
        "notifications_link": link("notifications.index"),
    }
