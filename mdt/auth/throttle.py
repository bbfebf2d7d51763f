"""Count attempts atomically: at most ``limit`` per key in a window, then wait a whole window.

One row per key in ``throttle_counters``. ``take`` counts an attempt with a
single conditional ``UPDATE … WHERE hits < limit``, which the database runs
one at a time for a row: on PostgreSQL the second of two concurrent updates
waits for the first to commit and then re-checks the condition; on SQLite the
write lock does the same. The row stays locked until the caller's transaction
ends, so work done between ``take`` and the commit (a password check) is
counted before anyone else may start it: 24 simultaneous guesses cannot check
more than ``limit`` passwords. Nothing here commits: the caller's request does.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, cast

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mdt import clock
from mdt.auth.models import ThrottleCounter
from mdt.db import UTCDateTime, rowcount
from mdt.extensions import db

_table = cast(sa.Table, ThrottleCounter.__table__)


def take(key: str, limit: int, window: timedelta) -> bool:
    """Count one attempt under ``key``; return False, counting nothing, when the limit is reached.

    ``limit`` attempts are allowed in a window; the one that reaches the limit
    starts the window again, so the next attempt waits a whole ``window``.
    """
    now = clock.now()
    _insert_if_missing(key, now)
    stamp = sa.literal(now, UTCDateTime())
    expired = _table.c.window_started_at <= sa.literal(now - window, UTCDateTime())
    statement = sa.update(_table).where(
        _table.c.key == key, sa.or_(_table.c.hits < limit, expired),
    ).values(
        hits=sa.case((expired, 1), else_=_table.c.hits + 1),
        window_started_at=sa.case((expired, stamp), (_table.c.hits + 1 >= limit, stamp),
                                  else_=_table.c.window_started_at),
    )
    return rowcount(db.session.execute(statement)) == 1


def reset(key: str) -> None:
    """Forget the attempts counted under ``key`` (a successful sign-in, a password reset)."""
    db.session.execute(sa.update(_table).where(_table.c.key == key).values(hits=0))


def _insert_if_missing(key: str, now: datetime) -> None:
    """Create the key's row unless it exists (``ON CONFLICT DO NOTHING``: never a violation)."""
    dialect = db.session.get_bind().dialect.name
    insert: Any = postgresql.insert if dialect == "postgresql" else sqlite.insert
    db.session.execute(insert(_table).values(key=key, hits=0, window_started_at=now)
                       .on_conflict_do_nothing(index_elements=["key"]))
