"""Bookkeeping of the notification dispatcher: its runs and its lease."""
from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from mdt.db import Base, UTCDateTime


class DispatcherRun(Base):
    """One pass of the dispatcher, kept so operators can see it is alive."""

    __tablename__ = "dispatcher_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    #: Who ran it (host:pid:random), to tell two dispatchers apart in the log.
    holder: Mapped[str] = mapped_column(sa.String(120))
    #: Stale ``sending`` rows put back to ``pending``.
    released: Mapped[int] = mapped_column(default=0)
    #: Deliver tasks published.
    published: Mapped[int] = mapped_column(default=0)
    #: Rows left pending because publishing failed (broker down).
    unpublished: Mapped[int] = mapped_column(default=0)
    error: Mapped[str | None] = mapped_column(sa.Text)


class Lease(Base):
    """A named lease held by one process until ``expires_at`` (single dispatcher)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    holder: Mapped[str | None] = mapped_column(sa.String(120))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
