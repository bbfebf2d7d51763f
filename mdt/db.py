"""Declarative base, naming convention, column types, and the services' flush and load helpers."""
from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, registry
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.types import TypeDecorator

from mdt import clock

T = TypeVar("T")

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator):
    """A timezone-aware datetime stored in UTC on every backend.

    SQLite has no time zone type, so values are normalised to UTC on the way
    in and marked UTC on the way out; naive datetimes are refused.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware datetime in UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def str_enum(enum_cls: type[enum.StrEnum], name: str) -> sa.Enum:
    """Return a portable enum column type storing the members' values (VARCHAR + CHECK)."""
    return sa.Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=40,
        values_callable=lambda cls: [member.value for member in cls],
        validate_strings=True,
    )


class Base(DeclarativeBase):
    registry = registry(
        metadata=sa.MetaData(naming_convention=NAMING_CONVENTION),
        # Every ``Mapped[datetime]`` is timezone-aware and stored in UTC.
        type_annotation_map={datetime: UTCDateTime()},
    )


class TimestampMixin:
    """``created_at`` and ``updated_at`` columns, set from the app clock."""

    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=clock.now)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime(), default=clock.now, onupdate=clock.now
    )


#: What a lost optimistic-lock race says when the service has nothing more specific.
CONCURRENT_CHANGE = ("Someone else changed this record at the same moment. "
                     "Reload the page and try again.")


def flush_or_conflict(message: str = CONCURRENT_CHANGE, *,
                      integrity: bool = False) -> None:
    """Flush the session; a concurrent change becomes a ``ConflictError`` with ``message``.

    A stale ``version`` column (``StaleDataError``) always counts as a concurrent
    change; a unique-constraint violation does too when ``integrity`` is set
    (two requests inserting the same row). The caller's request rolls back.
    """
    from mdt.errors import ConflictError
    from mdt.extensions import db

    caught: tuple[type[Exception], ...] = (
        (StaleDataError, IntegrityError) if integrity else (StaleDataError,))
    try:
        db.session.flush()
    except caught as exc:
        raise ConflictError(message) from exc


def get_or_404(model: type[T], ident: Any, message: str, *,
               options: Sequence[Any] = ()) -> T:
    """Return the row of ``model`` with primary key ``ident`` or raise ``NotFoundError``.

    The services' one way to load by id: the error carries the service's own
    message ("No such meeting."), which the error handlers show with a 404.
    """
    from mdt.errors import NotFoundError
    from mdt.extensions import db

    row = db.session.get(model, ident, options=options)
    if row is None:
        raise NotFoundError(message)
    return row


def rowcount(result: Result[Any]) -> int:
    """Return how many rows an UPDATE or DELETE matched (its result is a cursor result)."""
    return cast("CursorResult[Any]", result).rowcount
