"""Domain operations on meeting series, meetings, agendas and attendance.

One module per use case; callers import the package
(``from mdt.meetings import services as meetings``) and find every public
operation here. Services take the acting user as ``actor`` (``None`` for the
system: worker, CLI), change objects and flush; the caller commits. Every
change writes an audit entry in the same transaction.
"""
from mdt.meetings.services.agenda import (
    add_item,
    addable_cases,
    can_add_cases,
    can_edit_item,
    can_propose_cases,
    can_remove_item,
    check_can_add,
    check_can_edit_item,
    get_item,
    is_item_decided,
    remove_item,
    set_item_status,
    triage_item,
    update_item,
    waiting_for_agenda_clause,
)
from mdt.meetings.services.attendance import (
    can_record_presence,
    core_team,
    get_attendance,
    invite,
    invite_core_team,
    presence_open,
    record_presence,
    remove_attendee,
    respond,
)
from mdt.meetings.services.carry_over import (
    NOT_REACHED,
    can_carry_over,
    carry_over,
    next_meeting_after,
)
from mdt.meetings.services.corrections import (
    CORRECTABLE,
    correct_meeting,
    decided_case_ids,
    first_signed_at,
)
from mdt.meetings.services.meetings import (
    SIGNED_AT_MEETING,
    MeetingList,
    cancel_meeting,
    check_meeting_editable,
    check_not_into_the_past,
    cutoff_at,
    get_meeting,
    get_meeting_page,
    has_signed_items,
    has_started,
    is_chair,
    list_meetings,
    lock_meeting,
    meetings_open_for_case,
    upcoming_clause,
    upcoming_meetings_for,
    update_meeting,
)
from mdt.meetings.services.ordering import move_item
from mdt.meetings.services.quorum import Quorum, quorum
from mdt.meetings.services.series import (
    SERIES_FIELDS,
    create_series,
    generate_meetings,
    get_series,
    list_series,
    occurrence_dates,
    update_series,
)

__all__ = [
    "CORRECTABLE", "NOT_REACHED", "SERIES_FIELDS", "SIGNED_AT_MEETING", "MeetingList", "Quorum",
    "add_item", "addable_cases", "can_add_cases", "can_carry_over", "can_edit_item",
    "can_remove_item", "can_propose_cases", "can_record_presence", "cancel_meeting",
    "carry_over", "check_can_add", "check_can_edit_item", "check_meeting_editable",
    "check_not_into_the_past", "core_team", "correct_meeting", "create_series", "cutoff_at",
    "decided_case_ids", "first_signed_at", "upcoming_clause", "generate_meetings",
    "get_attendance", "get_item", "get_meeting", "get_meeting_page", "get_series",
    "has_signed_items", "has_started", "invite", "invite_core_team", "is_chair",
    "is_item_decided", "list_meetings", "list_series", "lock_meeting",
    "meetings_open_for_case", "move_item", "next_meeting_after", "occurrence_dates",
    "presence_open", "quorum", "record_presence", "remove_attendee", "remove_item", "respond",
    "set_item_status", "triage_item", "update_item", "update_meeting", "update_series",
    "upcoming_meetings_for", "waiting_for_agenda_clause",
]
