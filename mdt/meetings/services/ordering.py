"""The order of an agenda: one item per place, kept so when requests race or items move."""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select

from mdt.audit import services as audit
from mdt.auth.models import User
from mdt.db import flush_or_conflict
from mdt.errors import InvalidError
from mdt.meetings.models import AgendaItem, Meeting
from mdt.meetings.services.meetings import lock_meeting

#: What the loser of a race on one agenda is told (the unique constraints caught it).
AGENDA_CHANGED = ("Someone else changed this meeting's agenda at the same moment. Nothing "
                  "was saved: look at the agenda, then try again.")


def next_position(meeting: Meeting) -> Any:
    """Return the position after the meeting's last item, as SQL for the INSERT to evaluate.

    Read by the statement that inserts the row, so two requests adding at once
    never both read the same last position (SQLite runs one INSERT at a time;
    on PostgreSQL ``lock_meeting`` orders them). The unique constraint on
    (meeting, position) refuses anything that still slips through.
    """
    return (select(func.coalesce(func.max(AgendaItem.position), 0) + 1)
            .where(AgendaItem.meeting_id == meeting.id).scalar_subquery())


def renumber(items: Sequence[AgendaItem]) -> None:
    """Give ``items`` the positions 1, 2, ... in their order, never two rows at one place.

    The database checks the unique (meeting, position) row by row, so the rows
    that move first step aside to a temporary negative position (minus their id).
    """
    moving = [(item, n) for n, item in enumerate(items, start=1) if item.position != n]
    for item, _ in moving:
        item.position = -item.id
    flush_or_conflict(AGENDA_CHANGED, integrity=True)
    for item, n in moving:
        item.position = n
    flush_or_conflict(AGENDA_CHANGED, integrity=True)


def move_item(item: AgendaItem, direction: str, *, actor: User | None) -> bool:
    """Swap an item with its neighbour ("up" or "down"); return False at either end."""
    if direction not in ("up", "down"):
        raise InvalidError("Move an item up or down.")
    lock_meeting(item.meeting, with_items=True)
    items = sorted(item.meeting.items, key=lambda i: (i.position, i.id))
    index = items.index(item)
    other_index = index - 1 if direction == "up" else index + 1
    if not 0 <= other_index < len(items):
        return False
    other = items[other_index]
    items[index], items[other_index] = other, item
    renumber(items)
    audit.record("agenda_item.moved", f"Agenda item {item.id} moved {direction}", actor=actor,
                 obj=item, case_id=item.case_id,
                 data={"position": item.position, "direction": direction})
    return True
