"""One line per notification for the in-app centre, without queries."""
from __future__ import annotations

from flask import url_for

from mdt.notifications import ics
from mdt.notifications.models import Notification, NotificationKind
from mdt.notifications.render.context import format_when, invitation_is_update

KIND_LABELS = {
    NotificationKind.INVITATION: "Invitation",
    NotificationKind.MEETING_REMINDER: "Meeting reminder",
    NotificationKind.AGENDA_CLOSING: "Agenda closing",
    NotificationKind.OPINION_PENDING: "Opinion awaited",
    NotificationKind.CONSENSUS_SIGNED: "Consensus signed",
    NotificationKind.AMENDMENT: "Consensus amended",
    NotificationKind.ACTION_DUE: "Action due",
    NotificationKind.CASE_DEFERRED: "Case deferred or carried over",
}


def headline(notification: Notification, zone: str) -> tuple[str, str, str | None]:
    """Return (label, one-line text, path) for the notification centre, without queries.

    Uses only the row and its eager-loaded meeting; patient data: none (case number).
    The path is relative: it is called in a request, for the signed-in person.
    """
    kind, payload, meeting = notification.kind, notification.payload, notification.meeting
    label = KIND_LABELS[kind]
    if kind == NotificationKind.INVITATION and payload.get("method") == ics.CANCEL:
        label = ("Removed from meeting" if payload.get("reason") == "removed"
                 else "Meeting cancelled")
    elif kind == NotificationKind.INVITATION and invitation_is_update(payload):
        label = "Meeting changed"
    elif kind == NotificationKind.ACTION_DUE and payload.get("overdue"):
        label = "Action overdue"
    if kind in (NotificationKind.CONSENSUS_SIGNED, NotificationKind.AMENDMENT,
                NotificationKind.ACTION_DUE):
        return (label, f"Case {notification.case_id}",
                url_for("decisions.report", case_id=notification.case_id))
    if kind == NotificationKind.CASE_DEFERRED:
        return (label, f"Case {notification.case_id}",
                url_for("cases.detail", case_id=notification.case_id))
    if meeting is not None:
        when = format_when(meeting.starts_at, zone)
        return (label, f"{meeting.series.name}, {when}",
                url_for("meetings.detail", meeting_id=meeting.id))
    return label, "", None
