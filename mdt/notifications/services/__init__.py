"""What people are told: notification rows, preferences, the in-app centre, the calendar feed.

Modules: ``hooks`` (the ``on_*`` functions), ``rows`` (scheduling, moving and
cancelling rows, their timing), ``preferences``, ``centre`` (in-app) and
``feed`` (private calendar feed). How rows become e-mails is ``mdt.delivery``.

Other features call the ``on_*`` hooks from their services, inside the same
transaction as the change that causes them (a notification is a row before
it is a message). They only add or update rows and flush; nothing here
talks to the broker, so a web request never waits on Redis, and nothing
commits. The worker's dispatcher (``mdt.delivery``) sends due
rows, calling ``render.build_email`` which drops rows no longer relevant.

Each row has a unique ``dedup_key`` naming its reason, so running a hook
twice creates nothing twice (checked in the session first; the unique
constraint is the backstop). Keys:

- ``invitation:m{meeting}:u{user}:r{round}:s{sequence}`` (REQUEST) and
  ``calendar_cancel:m{meeting}:u{user}:r{round}`` (CANCEL), where the round
  counts the cancellations already sent to the person for the meeting, so
  that someone removed and invited again is invited again (attendance ids
  can be reused by SQLite once the row is deleted),
- ``meeting_reminder:m{meeting}:u{user}:{offset}`` (``:s{sequence}`` added
  when a reschedule needs a new one after the first was sent),
- ``agenda_closing:m{meeting}:u{user}``, ``opinion_pending:m{meeting}:u{user}``
  (same suffix rule),
- ``case_deferred:i{item}``, ``case_deferred:i{item}:to{new_item}``,
- ``consensus_signed:c{consensus}:u{user}``, ``amendment:a{amendment}:u{user}``,
- ``action_due:a{action}`` and ``action_overdue:a{action}``.

Timing choices (documented in docs and the preferences page):

- meeting reminders at the series' ``reminder_offsets_minutes`` (default
  24 h and 1 h); whole days are counted in the meeting's local calendar, so
  a 24 h reminder across a daylight-saving change still goes at the
  meeting's local hour the day before;
- agenda closing ``AGENDA_CLOSING_NOTICE`` (24 h) before the submission cutoff;
- opinion pending ``OPINION_PENDING_NOTICE`` (24 h) before the meeting, one
  message per specialist per meeting listing the items still waiting for them;
- action due at ``ACTION_HOUR`` (08:00) on the due date in the owner's zone,
  overdue at the same hour the day after.
"""
from mdt.notifications.services.centre import (
    mark_all_read,
    mark_read,
    recent_for,
    unread_count,
)
from mdt.notifications.services.feed import (
    FEED_HISTORY,
    feed_for_token,
    feed_token_of,
    regenerate_feed_token,
    revoke_feed_token,
)
from mdt.notifications.services.hooks import (
    on_amendment_added,
    on_attendee_added,
    on_attendee_removed,
    on_consensus_signed,
    on_item_added,
    on_item_deferred,
    on_item_withdrawn,
    on_meeting_cancelled,
    on_meeting_created,
    on_meeting_rescheduled,
)
from mdt.notifications.services.preferences import (
    ALWAYS_EMAILED,
    MANDATORY_FOR_ROLE,
    email_preferences,
    is_mandatory,
    set_email_preferences,
)
from mdt.notifications.services.rows import (
    ACTION_HOUR,
    AGENDA_CLOSING_NOTICE,
    MEETING_TIMED,
    OPINION_PENDING_NOTICE,
    agenda_closing_recipient_ids,
    before,
    morning_of,
    schedule,
)

__all__ = [
    "ACTION_HOUR", "AGENDA_CLOSING_NOTICE", "ALWAYS_EMAILED", "FEED_HISTORY", "MANDATORY_FOR_ROLE",
    "MEETING_TIMED", "OPINION_PENDING_NOTICE", "agenda_closing_recipient_ids", "before",
    "email_preferences", "feed_for_token", "feed_token_of", "is_mandatory", "mark_all_read",
    "mark_read", "morning_of", "on_amendment_added", "on_attendee_added", "on_attendee_removed",
    "on_consensus_signed", "on_item_added", "on_item_deferred", "on_item_withdrawn",
    "on_meeting_cancelled", "on_meeting_created", "on_meeting_rescheduled", "recent_for",
    "regenerate_feed_token", "revoke_feed_token", "schedule", "set_email_preferences",
    "unread_count",
]
