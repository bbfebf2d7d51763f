"""The application's clock: one place to ask the time, so tests (and developers) can set it.

Code that needs "now" calls ``clock.now()``. In-process tests use
``clock.frozen(dt)`` / ``set_now`` (or the ``frozen_clock`` fixture) instead of
sleeping. Other processes (a Celery worker started by a test, a developer's
``make run``) are given their time by settings, applied by ``create_app``
through ``configure`` and honoured in development and test only (a production
process refuses to start with them, ``mdt.config.ConfigError``):

* ``MDT_CLOCK_OFFSET_SECONDS``: the real time shifted by this many seconds;
* ``MDT_CLOCK_AT``: an ISO 8601 time with its zone; the clock shows it when
  the process starts, and runs on from there;
* ``MDT_CLOCK_FILE``: a file holding such a time (or ``+N`` / ``-N`` seconds
  of offset); the clock shows it at the moment the file was last written and
  runs on from there. The file is read again whenever it changes, so a test
  or a developer moves a *running* worker's time by rewriting it.

A frozen time (``set_now``) wins over all three. Every variant keeps running
at the real rate, so leases and retry delays behave as in production.
"""
from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

_frozen_at: datetime | None = None
#: Added to the real time (from MDT_CLOCK_OFFSET_SECONDS or MDT_CLOCK_AT).
_offset = timedelta(0)
#: MDT_CLOCK_FILE: its path, and the (identity, offset) it gave when last read.
_file: str | None = None
_file_state: tuple[tuple[int, int], timedelta] | None = None

#: The settings that move the clock, as ``MDT_*`` names (for messages).
SETTINGS = ("MDT_CLOCK_OFFSET_SECONDS", "MDT_CLOCK_AT", "MDT_CLOCK_FILE")


def now() -> datetime:
    """Return the current time, timezone-aware, in UTC."""
    if _frozen_at is not None:
        return _frozen_at
    real = datetime.now(UTC)
    if _file is not None:
        return real + _file_offset()
    return real + _offset


def set_now(moment: datetime | None) -> None:
    """Freeze the clock at ``moment`` (aware), or unfreeze it with ``None``."""
    global _frozen_at
    if moment is not None and moment.tzinfo is None:
        raise ValueError("the clock needs a timezone-aware datetime")
    _frozen_at = moment.astimezone(UTC) if moment is not None else None


@contextmanager
def frozen(moment: datetime) -> Iterator[None]:
    """Freeze the clock for the duration of a ``with`` block."""
    previous = _frozen_at
    set_now(moment)
    try:
        yield
    finally:
        set_now(previous)


def configured(config: Mapping[str, Any]) -> bool:
    """Return whether ``config`` asks for a clock other than the real one."""
    return bool(float(config.get("CLOCK_OFFSET_SECONDS") or 0) or config.get("CLOCK_AT")
                or config.get("CLOCK_FILE"))


def configure(config: Mapping[str, Any]) -> None:
    """Apply CLOCK_OFFSET_SECONDS, CLOCK_AT and CLOCK_FILE (the caller refuses them in production).

    Raises ``ValueError`` on a time without a zone or that cannot be read.
    """
    global _offset, _file, _file_state
    offset = timedelta(seconds=float(config.get("CLOCK_OFFSET_SECONDS") or 0))
    if config.get("CLOCK_AT"):
        offset = parse_time(str(config["CLOCK_AT"])) - datetime.now(UTC)
    _offset = offset
    _file = str(config["CLOCK_FILE"]) if config.get("CLOCK_FILE") else None
    _file_state = None
    if _file is not None:
        _file_offset(strict=True)


def reset() -> None:
    """Go back to the real time (tests that configured the clock call this)."""
    global _offset, _file, _file_state
    _offset, _file, _file_state = timedelta(0), None, None
    set_now(None)


def parse_time(text: str) -> datetime:
    """Read an ISO 8601 time that names its zone (``2026-12-03T09:00:00+08:00``, ``...Z``)."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add one, e.g. +00:00")
    return moment.astimezone(UTC)


def write_file(path: str | os.PathLike[str], moment: datetime) -> None:
    """Set the time of the processes reading ``path`` (MDT_CLOCK_FILE) to ``moment``, now."""
    tmp = f"{os.fspath(path)}.tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(moment.astimezone(UTC).isoformat())
    os.replace(tmp, path)  # readers never see half a time


def _file_offset(*, strict: bool = False) -> timedelta:
    """Return the offset the clock file gives; read it again when it changed."""
    global _file_state
    if _file is None:
        return timedelta(0)
    try:
        stat = os.stat(_file)
        identity = (stat.st_ino, stat.st_mtime_ns)  # write_file replaces: a new inode
        if _file_state is not None and _file_state[0] == identity:
            return _file_state[1]
        with open(_file, encoding="utf-8") as handle:
            text = handle.read().strip()
        _file_state = (identity, _offset_from(text, stat.st_mtime_ns / 1e9))
    except (OSError, ValueError):
        if strict:
            raise
        # Being rewritten or gone: keep the last time it gave (else the real time).
    return _file_state[1] if _file_state is not None else timedelta(0)


def _offset_from(text: str, mtime: float) -> timedelta:
    if text[:1] in "+-":
        return timedelta(seconds=float(text))
    written = datetime.fromtimestamp(mtime, UTC)
    return parse_time(text) - written
