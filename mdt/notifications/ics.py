"""iCalendar (RFC 5545) files for meeting invitations and the personal feed.

One meeting is one VEVENT whose UID never changes (``meeting-{id}@{host}``,
the host of BASE_URL, so two mdt installations never share a UID);
every reschedule bumps ``meeting.sequence``, which is the event's SEQUENCE,
so calendar programs replace the old event instead of adding a second one.
Times are written in UTC. No patient data ever goes into a calendar file.
Every text typed by people (names, place, video link) goes through
``one_line``: a line break in one of them must not break the calendar.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC
from email.utils import parseaddr
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from flask import current_app
from icalendar import Calendar, Event, vCalAddress, vText

from mdt import clock
from mdt.notifications.text import one_line
from mdt.web import external_url

if TYPE_CHECKING:
    from mdt.auth.models import User
    from mdt.meetings.models import Meeting

log = logging.getLogger(__name__)

PRODID = "-//mdt//Cancer MDT meetings//EN"
REQUEST = "REQUEST"
CANCEL = "CANCEL"


def meeting_uid(meeting: Meeting) -> str:
    """Return the meeting's calendar UID, stable across reschedules, unique per installation."""
    host = urlsplit(current_app.config["BASE_URL"]).hostname or "mdt"
    return f"meeting-{meeting.id}@{host}"


def meeting_url(meeting: Meeting) -> str:
    """Return the sign-in-protected address of the meeting page."""
    return external_url("meetings.detail", meeting_id=meeting.id)


def invitation(meeting: Meeting, attendee: User, method: str = REQUEST) -> bytes:
    """Build a METHOD:REQUEST (or CANCEL) calendar for one attendee of a meeting."""
    if method not in (REQUEST, CANCEL):
        raise ValueError(f"unsupported calendar method {method!r}")
    cal = _calendar(method=method)
    event = _event(meeting, cancelled=method == CANCEL or meeting.is_cancelled)
    event.add("organizer", _organizer())
    attendee_address = vCalAddress(f"mailto:{attendee.email}")
    attendee_address.params["CN"] = vText(one_line(attendee.name))
    attendee_address.params["ROLE"] = vText("REQ-PARTICIPANT")
    attendee_address.params["RSVP"] = vText("FALSE")
    event.add("attendee", attendee_address)
    cal.add_component(event)
    return cal.to_ical()


def feed(name: str, meetings: Iterable[Meeting]) -> bytes:
    """Build a subscription calendar listing ``meetings`` (cancelled ones marked so).

    A meeting whose event cannot be written (data no form would accept today)
    is left out and logged, so that it never takes the person's whole
    calendar down with it.
    """
    cal = _calendar(method="PUBLISH")
    cal.add("x-wr-calname", one_line(name))
    for meeting in meetings:
        try:
            event = _event(meeting, cancelled=meeting.is_cancelled)
            event.to_ical()  # fails here, not in the whole calendar's to_ical()
        except Exception:
            log.exception("calendar feed: meeting %s could not be written; left out", meeting.id)
            continue
        cal.add_component(event)
    return cal.to_ical()


def _calendar(method: str) -> Calendar:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    return cal


def _event(meeting: Meeting, *, cancelled: bool) -> Event:
    event = Event()
    event.add("uid", meeting_uid(meeting))
    event.add("sequence", meeting.sequence)
    event.add("dtstamp", clock.now().astimezone(UTC).replace(microsecond=0))
    event.add("dtstart", meeting.starts_at.astimezone(UTC))
    event.add("dtend", meeting.ends_at.astimezone(UTC))
    event.add("summary", one_line(meeting.series.name))
    location = one_line(meeting.location or meeting.video_url)
    if location:
        event.add("location", location)
    event.add("url", meeting_url(meeting))
    description = "Multidisciplinary team meeting. Agenda (sign-in needed): " + meeting_url(meeting)
    if meeting.video_url:
        description += f"\nVideo: {one_line(meeting.video_url)}"
    event.add("description", description)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("transp", "OPAQUE")
    return event


def _organizer() -> vCalAddress:
    name, address = parseaddr(current_app.config["MAIL_SENDER"])
    organizer = vCalAddress(f"mailto:{address or 'mdt@localhost'}")
    organizer.params["CN"] = vText(one_line(name) or "mdt")
    return organizer
