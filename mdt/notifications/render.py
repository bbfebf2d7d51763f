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
"""
from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes
from email import policy as email_policy
from email.charset import QP, Charset
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime as rfc2822_date
from email.utils import formataddr, parseaddr
from typing import Any

import sqlalchemy as sa
from flask import current_app, url_for
from sqlalchemy.orm import joinedload, selectinload

from mdt import clock, timezones
from mdt.auth.models import Role, User
from mdt.cases.models import Case
from mdt.decisions import services as decisions
from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
)
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
    Response,
)
from mdt.notifications import ics
from mdt.notifications.models import Notification, NotificationKind
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


def build_email(notification: Notification) -> EmailMessage | None:
    """Build the e-mail for ``notification``, or return None if it is no longer relevant."""
    message = build_message(notification)
    if message is None:
        return None
    return message_from_bytes(message.as_bytes(), policy=email_policy.default)  # type: ignore[return-value]


def build_message(notification: Notification) -> Message | None:
    """Build the e-mail as the worker sends it: like ``build_email``, but a compat32 message.

    Three times cheaper to build and serialise than an ``EmailMessage`` (whose
    header registry and content manager cost more than the templates), which
    matters when a worker sends thousands of reminders.
    """
    recipient = notification.recipient
    if not recipient.is_active:
        return None
    builder = _BUILDERS.get(notification.kind)
    if builder is None:
        return None
    draft = builder(notification)
    if draft is None:
        return None
    return _compose(notification, draft)


# --- helpers shared by builders and templates --------------------------------------------------

def recipient_zone(user: User, meeting: Meeting | None = None) -> str:
    """Return the zone to show times in: the person's, else the meeting's, else the app's."""
    return timezones.first_valid(user.time_zone, meeting.time_zone if meeting else None)


def format_when(moment: datetime, zone: str) -> str:
    """Format ``moment`` in ``zone`` with its abbreviation and name, e.g. "… 14:00 GMT (Europe/London)"."""
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


def _meeting(notification: Notification) -> Meeting | None:
    if notification.meeting_id is None:
        return None
    # The series comes in the same query: every meeting e-mail names it.
    return _once(("meeting", notification.meeting_id),
                 lambda: db.session.get(Meeting, notification.meeting_id,
                                        options=[joinedload(Meeting.series)]))


def _upcoming_meeting(notification: Notification) -> Meeting | None:
    """The notification's meeting if it is still scheduled and in the future."""
    meeting = _meeting(notification)
    if meeting is None or meeting.is_cancelled or meeting.starts_at <= clock.now():
        return None
    return meeting


def _is_attendee(meeting: Meeting, user: User) -> bool:
    if _shared.get() is not None:  # in a batch: one query for every recipient
        return user.id in _once(("attendees", meeting.id), lambda: set(db.session.scalars(
            sa.select(Attendance.user_id).where(Attendance.meeting_id == meeting.id))))
    return db.session.scalar(
        sa.select(sa.func.count(Attendance.id)).where(
            Attendance.meeting_id == meeting.id, Attendance.user_id == user.id)
    ) > 0


def _agenda(meeting: Meeting) -> list[AgendaItem]:
    return _once(("agenda", meeting.id), lambda: list(db.session.scalars(
        sa.select(AgendaItem)
        .where(AgendaItem.meeting_id == meeting.id, AgendaItem.status != ItemStatus.WITHDRAWN)
        .options(joinedload(AgendaItem.case).joinedload(Case.patient))
        .order_by(AgendaItem.position)
    )))


def _base_context(notification: Notification, meeting: Meeting | None = None) -> dict[str, Any]:
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


# --- builders, one per kind --------------------------------------------------------------------

def _invitation(notification: Notification) -> Draft | None:
    method = notification.payload.get("method", ics.REQUEST)
    if method == ics.CANCEL:
        return _calendar_cancel(notification)
    meeting = _upcoming_meeting(notification)
    if meeting is None or not _is_attendee(meeting, notification.recipient):
        return None
    ctx = _base_context(notification, meeting)
    is_update = int(notification.payload.get("sequence", 0)) > 0
    ctx.update(is_update=is_update, agenda=_agenda(meeting))
    verb = "Updated" if is_update else "Invitation"
    subject = f"{verb}: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    return Draft(subject, ctx, (ics.invitation(meeting, notification.recipient), ics.REQUEST))


def _calendar_cancel(notification: Notification) -> Draft | None:
    meeting = _meeting(notification)
    if meeting is None or meeting.starts_at <= clock.now():
        return None
    removed = notification.payload.get("reason") == "removed"
    if removed and _is_attendee(meeting, notification.recipient):
        return None  # invited again since: the cancellation no longer holds
    ctx = _base_context(notification, meeting)
    ctx.update(removed=removed, is_cancel=True)
    if removed:
        subject = f"Removed from: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    else:
        subject = f"Cancelled: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    return Draft(subject, ctx, (ics.invitation(meeting, notification.recipient, ics.CANCEL),
                                ics.CANCEL))


def _meeting_reminder(notification: Notification) -> Draft | None:
    meeting = _upcoming_meeting(notification)
    if meeting is None or not _is_attendee(meeting, notification.recipient):
        return None
    ctx = _base_context(notification, meeting)
    offset = int(notification.payload.get("offset_minutes", 0))
    ctx.update(agenda=_agenda(meeting), offset=describe_offset(offset) if offset else None)
    subject = f"Reminder: {meeting.series.name}, {ctx['when'](meeting.starts_at)}"
    return Draft(subject, ctx)


def _agenda_closing(notification: Notification) -> Draft | None:
    meeting = _upcoming_meeting(notification)
    if meeting is None:
        return None
    cutoff = meetings.cutoff_at(meeting)
    if cutoff <= clock.now():
        return None
    user = notification.recipient
    waiting = [] if user.has_role(Role.COORDINATOR) else waiting_cases(user)
    if not user.has_role(Role.COORDINATOR) and not waiting:
        return None  # a referrer with nothing to put forward needs no nudge
    ctx = _base_context(notification, meeting)
    ctx.update(cutoff=cutoff, waiting=waiting, agenda=_agenda(meeting),
               case_link=lambda case: link("cases.detail", case_id=case.id))
    subject = (f"Agenda closing {ctx['when'](cutoff)}: {meeting.series.name}, "
               f"{ctx['when'](meeting.starts_at)}")
    return Draft(subject, ctx)


def waiting_cases(user: User) -> list[Case]:
    """Return ``user``'s referrals waiting for an agenda (``meetings.waiting_for_agenda_clause``)."""
    return list(db.session.scalars(
        sa.select(Case).where(Case.referring_clinician_id == user.id,
                              meetings.waiting_for_agenda_clause())
        .options(selectinload(Case.patient)).order_by(Case.id)))


def _opinion_pending(notification: Notification) -> Draft | None:
    meeting = _upcoming_meeting(notification)
    user = notification.recipient
    if meeting is None or not _will_attend(meeting, user):
        return None
    items = awaiting_opinion(meeting, user)
    if not items:
        return None
    ctx = _base_context(notification, meeting)
    ctx.update(items=items)
    count = len(items)
    subject = (f"Your opinion is awaited on {count} case{'' if count == 1 else 's'}: "
               f"{meeting.series.name}, {ctx['when'](meeting.starts_at)}")
    return Draft(subject, ctx)


def awaiting_opinion(meeting: Meeting, user: User) -> list[tuple[AgendaItem, int]]:
    """Return the meeting's items awaiting ``user``'s opinion, each with how many proposals.

    The rule is ``decisions.services.items_awaiting_opinion``, as on the home page.
    """
    return decisions.items_awaiting_opinion(user, meeting=meeting)


def _will_attend(meeting: Meeting, user: User) -> bool:
    response = db.session.scalar(sa.select(Attendance.response).where(
        Attendance.meeting_id == meeting.id, Attendance.user_id == user.id))
    return response in (Response.INVITED, Response.ACCEPTED)


def _consensus_context(notification: Notification,
                       consensus: Consensus) -> dict[str, Any]:
    item = consensus.agenda_item
    ctx = _base_context(notification)
    ctx["zone"] = recipient_zone(notification.recipient, item.meeting)
    zone = ctx["zone"]
    ctx.update(when=lambda moment: format_when(moment, zone), consensus=consensus, item=item,
               case=item.case, case_meeting=item.meeting,
               role=notification.payload.get("role"),
               report_link=link("decisions.report", case_id=item.case_id))
    return ctx


def _consensus_signed(notification: Notification) -> Draft | None:
    consensus = db.session.get(Consensus, notification.payload.get("consensus_id"))
    if consensus is None:
        return None
    ctx = _consensus_context(notification, consensus)
    return Draft(f"Consensus signed: Case {ctx['case'].id}", ctx)


def _amendment(notification: Notification) -> Draft | None:
    amendment = db.session.get(Amendment, notification.payload.get("amendment_id"))
    if amendment is None:
        return None
    ctx = _consensus_context(notification, amendment.consensus)
    ctx.update(amendment=amendment)
    return Draft(f"Consensus amended: Case {ctx['case'].id}", ctx)


def _action_due(notification: Notification) -> Draft | None:
    action = db.session.get(ConsensusAction, notification.payload.get("action_id"))
    if action is None or action.owner_id != notification.recipient_id or action.due_on is None:
        return None
    ctx = _consensus_context(notification, action.consensus)
    overdue = bool(notification.payload.get("overdue"))
    ctx.update(action=action, overdue=overdue)
    state = "overdue" if overdue else "due today"
    return Draft(f"Action {state}: Case {ctx['case'].id}", ctx)


def _case_deferred(notification: Notification) -> Draft | None:
    item = db.session.get(AgendaItem, notification.payload.get("item_id"))
    if item is None:
        return None
    new_item_id = notification.payload.get("new_item_id") or item.carried_to_id
    new_item = db.session.get(AgendaItem, new_item_id) if new_item_id else None
    if new_item is not None and new_item.status == ItemStatus.WITHDRAWN:
        return None
    ctx = _base_context(notification, item.meeting)
    ctx.update(item=item, case=item.case, new_item=new_item,
               new_meeting=new_item.meeting if new_item else None,
               case_link=link("cases.detail", case_id=item.case_id))
    if new_item is not None:
        subject = (f"Case carried over: Case {item.case_id} to "
                   f"{ctx['when'](new_item.meeting.starts_at)}")
    else:
        subject = f"Case deferred: Case {item.case_id}"
    return Draft(subject, ctx)


_BUILDERS: dict[NotificationKind, Callable[[Notification], Draft | None]] = {
    NotificationKind.INVITATION: _invitation,
    NotificationKind.MEETING_REMINDER: _meeting_reminder,
    NotificationKind.AGENDA_CLOSING: _agenda_closing,
    NotificationKind.OPINION_PENDING: _opinion_pending,
    NotificationKind.CONSENSUS_SIGNED: _consensus_signed,
    NotificationKind.AMENDMENT: _amendment,
    NotificationKind.ACTION_DUE: _action_due,
    NotificationKind.CASE_DEFERRED: _case_deferred,
}


# --- composing the message ---------------------------------------------------------------------

def _render(kind: str, ext: str, context: dict[str, Any]) -> str:
    return current_app.jinja_env.get_template(f"emails/{kind}.{ext}").render(context)


class _Policy(email_policy.Compat32):
    """compat32, but a short one-line ASCII header is written as it is.

    ``Compat32`` sends every header through ``email.header.Header``, which
    would return such a header unchanged, at a cost per header per message.
    """

    def _fold(self, name: str, value: Any, sanitize: bool) -> str:
        if (isinstance(value, str) and value.isascii() and value.isprintable()
                and len(name) + len(value) + 2 <= 78):
            return f"{name}: {value}{self.linesep}"
        return super()._fold(name, value, sanitize)


_POLICY = _Policy()
#: Text parts: UTF-8, quoted-printable (readable, safe for any line length).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _text_part(text: str, subtype: str, charset: Charset | str = _UTF8_QP) -> MIMEText:
    part = MIMEText(text, subtype, charset, policy=_POLICY)
    del part["MIME-Version"]  # only the top level needs it
    return part


def _compose(notification: Notification, draft: Draft) -> Message:
    """Plain text and HTML alternatives; an invitation adds the calendar inline and as .ics.

    The same structure ``EmailMessage.set_content``/``add_alternative``/
    ``add_attachment`` build, with the cheaper compat32 classes.
    """
    config = current_app.config
    kind = notification.kind.value
    context = {**draft.context, "subject": draft.subject}
    body = MIMEMultipart("alternative", boundary=_boundary(), policy=_POLICY, _subparts=[
        _text_part(_render(kind, "txt", context), "plain"),
        _text_part(_render(kind, "html", context), "html")])
    msg = body
    if draft.calendar is not None:
        data, method = draft.calendar
        inline = _text_part(data.decode("utf-8"), "calendar")
        inline.set_param("method", method)
        body.attach(inline)
        del body["MIME-Version"]
        attachment = _text_part(data.decode("utf-8"), "calendar", "utf-8")  # base64
        attachment.set_param("method", method)
        attachment.add_header("Content-Disposition", "attachment",
                              filename="cancel.ics" if method == ics.CANCEL else "invite.ics")
        msg = MIMEMultipart("mixed", boundary=_boundary(), policy=_POLICY,
                            _subparts=[body, attachment])
    msg["Subject"] = draft.subject
    msg["From"] = config["MAIL_SENDER"]
    msg["To"] = formataddr((notification.recipient.name, notification.recipient.email))
    msg["Date"] = rfc2822_date(clock.now())
    msg["Message-ID"] = _message_id(notification)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


def _boundary() -> str:
    """A random boundary, so that the generator need not search the parts for a safe one.

    No part can contain it: quoted-printable writes "=" as "=3D", base64 has
    no "=" followed by "_".
    """
    return f"=_mdt_{secrets.token_hex(16)}"


def _message_id(notification: Notification) -> str:
    """A Message-ID derived from the row, so a message sent twice is recognisably one."""
    domain = parseaddr(current_app.config["MAIL_SENDER"])[1].rpartition("@")[2] or "localhost"
    return f"<mdt.notification.{notification.id}@{domain}>"



# --- one line for the in-app notification centre -------------------------------------------------

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
        label = "Removed from meeting" if payload.get("reason") == "removed" else "Meeting cancelled"
    elif kind == NotificationKind.INVITATION and int(payload.get("sequence", 0)) > 0:
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
