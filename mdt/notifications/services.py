"""Schedule, move and cancel notification rows when clinical events happen.

Other features call these functions from their services, inside the same
transaction as the change that causes them (a notification is a row before
it is a message). They only add or update rows; nothing here talks to the
broker, so a web request never waits on Redis. The worker's dispatcher
(``mdt.notifications.delivery``) sends due rows.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mdt.decisions.models import Amendment, Consensus
    from mdt.meetings.models import AgendaItem, Attendance, Meeting


def on_meeting_created(meeting: Meeting) -> None:
    """Schedule the meeting-wide notifications (agenda closing) for a new meeting."""


def on_meeting_rescheduled(meeting: Meeting) -> None:
    """Move pending reminders to the new time and send calendar updates."""


def on_meeting_cancelled(meeting: Meeting) -> None:
    """Cancel pending notifications of the meeting and send calendar cancellations."""


def on_attendee_added(attendance: Attendance) -> None:
    """Invite the person (with .ics) and schedule their reminders."""


def on_attendee_removed(attendance: Attendance) -> None:
    """Cancel the person's pending notifications and send a calendar cancellation."""


def on_item_added(item: AgendaItem) -> None:
    """Schedule opinion-pending reminders for an item for discussion."""


def on_item_deferred(item: AgendaItem, new_item: AgendaItem | None = None) -> None:
    """Tell the referrer their case was deferred or carried over (reason, new date)."""


def on_item_withdrawn(item: AgendaItem) -> None:
    """Cancel pending notifications about a withdrawn case."""


def on_consensus_signed(consensus: Consensus) -> None:
    """Tell the referring and responsible clinicians; schedule action-due reminders."""


def on_amendment_added(amendment: Amendment) -> None:
    """Tell the referring and responsible clinicians that the consensus was amended."""
