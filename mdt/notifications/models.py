"""The notification table: a notification is a row before it is a message."""
from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from mdt.auth.models import User
from mdt.db import Base, TimestampMixin, UTCDateTime, str_enum

if TYPE_CHECKING:
    from mdt.meetings.models import Meeting


def _due_at(context: DefaultExecutionContext) -> Any:
    """Default ``next_attempt_at`` of a row inserted without the ORM: its due time."""
    return context.get_current_parameters()["due_at"]


class NotificationKind(enum.StrEnum):
    INVITATION = "invitation"
    MEETING_REMINDER = "meeting_reminder"
    AGENDA_CLOSING = "agenda_closing"
    OPINION_PENDING = "opinion_pending"
    CONSENSUS_SIGNED = "consensus_signed"
    AMENDMENT = "amendment"
    ACTION_DUE = "action_due"
    CASE_DEFERRED = "case_deferred"


class NotificationStatus(enum.StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Notification(TimestampMixin, Base):
    """One message to one person, due at a time, sent at most once.

    Written in the same transaction as the change that causes it; the beat
    dispatcher hands due rows to the worker, which claims a row with a
    conditional UPDATE (pending → sending) and sends only if it won.
    """

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[NotificationKind] = mapped_column(str_enum(NotificationKind, "notification_kind"))
    recipient_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="RESTRICT"),
                                              index=True)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    #: When the dispatcher may publish the row: its due time, or after a failed
    #: attempt the time of the next one (mdt.delivery.retry). Follows ``due_at``
    #: whenever that is set or moved.
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=_due_at)
    #: When the current run of failed attempts began (None once sent, or never failed);
    #: a row is retried until NOTIFY_RETRY_HORIZON after it.
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: e.g. ``meeting_reminder:m12:u4:1440``; unique, so the same reason never
    #: produces two rows.
    dedup_key: Mapped[str] = mapped_column(sa.String(200), unique=True)
    status: Mapped[NotificationStatus] = mapped_column(
        str_enum(NotificationStatus, "notification_status"), default=NotificationStatus.PENDING
    )
    attempts: Mapped[int] = mapped_column(default=0)
    #: When a worker claimed the row; a stale claim is released by the dispatcher.
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: When the dispatcher last published a deliver task for the row.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Until when the row belongs to a task: published and queued (10 min),
    #: held by the worker whose batch it is in, or claimed (``sending``; both
    #: the claim lease, sized to the mail timeout). Past it, the dispatcher
    #: releases a claim and publishes a pending row again.
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    #: Whether the message also goes out by e-mail (preferences, at creation).
    send_email: Mapped[bool] = mapped_column(default=True)
    #: When the recipient marked it read in the in-app notification centre.
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    meeting_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("meetings.id", ondelete="RESTRICT"))
    case_id: Mapped[int | None] = mapped_column(sa.ForeignKey("cases.id", ondelete="RESTRICT"))
    #: Kind-specific parameters (offset, calendar method, action id...). Ids only.
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)

    recipient: Mapped[User] = relationship()
    meeting: Mapped[Meeting | None] = relationship()

    __table_args__ = (
        sa.CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        # Pending rows by due time (the oldest pending one, the centre's filters).
        sa.Index("ix_notifications_pending_due", "status", "due_at"),
        # The dispatcher's scan: pending rows whose next attempt has come. Rows
        # waiting for a retry, and future reminders, are outside the range read.
        sa.Index("ix_notifications_pending_next_attempt", "status", "next_attempt_at"),
        # The few rows waiting for a retry (the probe, the page, bringing them forward).
        sa.Index("ix_notifications_failing_since", "failing_since"),
    )

    @validates("due_at")
    def _next_attempt_follows_due(self, _key: str, due_at: datetime) -> datetime:
        """Set or move the next attempt with the due time (a moved row waits for its new time)."""
        if due_at != self.due_at:
            self.next_attempt_at = due_at
        return due_at


class NotificationPreference(Base):
    """One person's choice to receive (or not) one kind of notification by e-mail.

    No row means the default: e-mailed. The in-app centre shows every kind.
    """

    __tablename__ = "notification_preferences"

    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         primary_key=True)
    kind: Mapped[NotificationKind] = mapped_column(
        str_enum(NotificationKind, "notification_preference_kind"), primary_key=True)
    send_email: Mapped[bool] = mapped_column(default=True)


class CalendarFeedToken(TimestampMixin, Base):
    """The secret behind a person's private calendar feed URL; one per person.

    Only the SHA-256 of the token is stored, so a database leak does not
    expose feeds; the URL is shown once, when the token is made. Revoking
    deletes the row; regenerating replaces the hash.
    """

    __tablename__ = "calendar_feed_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                         unique=True)
    #: Hex SHA-256 of the secret token.
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship()
