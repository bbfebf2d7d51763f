"""Time zones: the one module that looks zones up, converts local↔UTC and validates names.

Instants are stored and compared in UTC (``mdt.clock``, ``mdt.db.UTCDateTime``);
a zone is an IANA name (``Asia/Shanghai``) kept on a series, a meeting or a
user. Everything that turns a name into a zone, a wall-clock time into an
instant or an instant into a wall-clock time goes through here, so the rules
(unknown names, the app's default zone, DST) live in one place.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, time
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from flask import current_app

from mdt import clock
from mdt.errors import InvalidError

#: What a form or service says next to a field holding an unknown zone name.
UNKNOWN_ZONE_MESSAGE = "Unknown time zone; use an IANA name such as Asia/Shanghai."


@lru_cache(maxsize=1)
def _known_names() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_zone(name: str | None) -> bool:
    """Return True if ``name`` is an IANA zone name this machine knows."""
    return name is not None and name.strip() in _known_names()


def zone(name: str) -> ZoneInfo:
    """Return the IANA zone ``name`` or raise InvalidError naming the ``time_zone`` field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidError(f"Unknown time zone {name!r}.",
                           fields={"time_zone": UNKNOWN_ZONE_MESSAGE}) from exc


def default_zone_name() -> str:
    """Return the installation's zone (``MDT_DEFAULT_TIME_ZONE``)."""
    return current_app.config["DEFAULT_TIME_ZONE"]


def first_valid(*names: str | None) -> str:
    """Return the first valid zone name of ``names``, else the installation's zone."""
    for name in names:
        if name and is_valid_zone(name):
            return name
    return default_zone_name()


def to_local(moment: datetime, zone_name: str | None = None) -> datetime:
    """Return the aware ``moment`` on ``zone_name``'s wall clock (default: the app's zone)."""
    return moment.astimezone(zone(zone_name or default_zone_name()))


def local_to_utc(day: date, at: time, zone_name: str) -> datetime:
    """Return the UTC instant of the wall-clock time ``at`` on ``day`` in ``zone_name``."""
    return datetime.combine(day, at, tzinfo=zone(zone_name)).astimezone(UTC)


def local_now(zone_name: str | None = None) -> datetime:
    """Return now on ``zone_name``'s wall clock (default: the app's zone)."""
    return to_local(clock.now(), zone_name)


def local_today(zone_name: str | None = None) -> date:
    """Return today's date in ``zone_name`` (default: the app's zone)."""
    return local_now(zone_name).date()
