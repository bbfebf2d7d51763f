"""Compose the MIME message: plain text and HTML alternatives, and the calendar for invitations."""
from __future__ import annotations

import secrets
from email import policy as email_policy
from email.charset import QP, Charset
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime as rfc2822_date
from email.utils import formataddr, parseaddr
from typing import Any

from flask import current_app

from mdt import clock
from mdt.notifications import ics
from mdt.notifications.models import Notification
from mdt.notifications.render.context import Draft
from mdt.notifications.text import one_line


def render_template_part(kind: str, ext: str, context: dict[str, Any]) -> str:
    """Render ``templates/emails/<kind>.<ext>`` with the app's Jinja environment."""
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
        return super()._fold(name, value, sanitize)  # type: ignore[misc]


_POLICY = _Policy()
#: Text parts: UTF-8, quoted-printable (readable, safe for any line length).
_UTF8_QP = Charset("utf-8")
_UTF8_QP.body_encoding = QP


def _text_part(text: str, subtype: str, charset: Charset | str = _UTF8_QP) -> MIMEText:
    # MIMEText takes a Charset too (typeshed says str only).
    part = MIMEText(text, subtype, charset, policy=_POLICY)  # type: ignore[arg-type]
    del part["MIME-Version"]  # only the top level needs it
    return part


def compose(notification: Notification, draft: Draft) -> Message:
    """Plain text and HTML alternatives; an invitation adds the calendar inline and as .ics.

    The same structure ``EmailMessage.set_content``/``add_alternative``/
    ``add_attachment`` build, with the cheaper compat32 classes.
    """
    config = current_app.config
    kind = notification.kind.value
    context = {**draft.context, "subject": draft.subject}
    body = MIMEMultipart("alternative", boundary=_boundary(), policy=_POLICY, _subparts=[
        _text_part(render_template_part(kind, "txt", context), "plain"),
        _text_part(render_template_part(kind, "html", context), "html")])
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
    # Names typed by people may hold a line break: never let one break a header.
    msg["Subject"] = one_line(draft.subject)
    msg["From"] = config["MAIL_SENDER"]
    msg["To"] = formataddr((one_line(notification.recipient.name), notification.recipient.email))
    msg["Date"] = rfc2822_date(clock.now())
    msg["Message-ID"] = _message_id(notification)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Auto-Response-Suppress"] = "All"
    return msg


def _boundary() -> str:
    """Return a random boundary, so that the generator need not search the parts for a safe one.

    No part can contain it: quoted-printable writes "=" as "=3D", base64 has
    no "=" followed by "_".
    """
    return f"=_mdt_{secrets.token_hex(16)}"


def _message_id(notification: Notification) -> str:
    """Return a Message-ID derived from the row, so a message sent twice is recognisably one."""
    domain = parseaddr(current_app.config["MAIL_SENDER"])[1].rpartition("@")[2] or "localhost"
    return f"<mdt.notification.{notification.id}@{domain}>"
