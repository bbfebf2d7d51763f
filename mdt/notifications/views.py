"""HTML views for notifications: the in-app centre, e-mail preferences, the calendar feed."""
from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    flash,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required

from mdt.errors import NotFoundError
from mdt.extensions import db
from mdt.notifications import ics, render, services
from mdt.notifications.models import NotificationKind

bp = Blueprint("notifications", __name__)

#: What each kind is, for the preferences page.
KIND_HELP = {
    NotificationKind.INVITATION: "Invitations to meetings, their changes and cancellations "
                                 "(with a calendar file). Always sent: your calendar depends "
                                 "on them.",
    NotificationKind.MEETING_REMINDER: ("Reminders before meetings you are invited to, with "
                                        "the agenda."),
    NotificationKind.AGENDA_CLOSING: "The agenda closes: sent the day before the submission "
                                     "cutoff to coordinators and to referrers with cases waiting.",
    NotificationKind.OPINION_PENDING: "Proposals still waiting for your opinion, sent the day "
                                      "before the meeting.",
    NotificationKind.CONSENSUS_SIGNED: "A consensus is signed for a case you referred. Always "
                                       "sent when you are the responsible clinician.",
    NotificationKind.AMENDMENT: "A signed consensus for a case you referred is amended.",
    NotificationKind.ACTION_DUE: "An action you own is due (08:00 on the due date) or overdue "
                                 "(the day after).",
    NotificationKind.CASE_DEFERRED: "A case you referred is deferred or carried over.",
}


@bp.app_context_processor
def unread_notifications() -> dict[str, Any]:
    """Give every page the signed-in person's unread count (one query)."""
    if not has_request_context() or not current_user or not current_user.is_authenticated:
        return {}
    return {"unread_notifications": services.unread_count(current_user)}


def _zone() -> str:
    return render.recipient_zone(current_user)


@bp.get("/notifications")
@login_required
def index():
    """List the signed-in person's recent notifications, newest first."""
    rows = services.recent_for(current_user)
    zone = _zone()
    entries = [(row, *render.headline(row, zone)) for row in rows]
    return render_template("notifications/index.html", entries=entries, zone=zone)


@bp.post("/notifications/<int:notification_id>/read")
@login_required
def mark_read(notification_id: int):
    """Mark one notification read and go where it points (or back to the list)."""
    try:
        row = services.mark_read(current_user, notification_id)
    except NotFoundError:
        abort(404)
    db.session.commit()
    path = render.headline(row, _zone())[2] if request.form.get("open") else None
    return redirect(path or url_for("notifications.index"))


@bp.post("/notifications/read-all")
@login_required
def mark_all_read():
    """Mark every notification of the signed-in person read."""
    count = services.mark_all_read(current_user)
    db.session.commit()
    flash(f"{count} notification{'' if count == 1 else 's'} marked as read.", "success")
    return redirect(url_for("notifications.index"))


@bp.get("/notifications/preferences")
@login_required
def preferences():
    """Show which kinds of notification reach the signed-in person by e-mail."""
    return _preferences_page()


@bp.post("/notifications/preferences")
@login_required
def save_preferences():
    """Store the kinds the signed-in person wants by e-mail (mandatory ones stay on)."""
    chosen = []
    for value in request.form.getlist("email"):
        try:
            chosen.append(NotificationKind(value))
        except ValueError:
            abort(400)
    services.set_email_preferences(current_user, chosen)
    db.session.commit()
    flash("Your e-mail preferences are saved.", "success")
    return redirect(url_for("notifications.preferences"))


@bp.post("/notifications/calendar-feed")
@login_required
def regenerate_feed():
    """Create or replace the signed-in person's private calendar feed address."""
    token = services.regenerate_feed_token(current_user)
    db.session.commit()
    flash("A new private calendar address was made; any earlier one no longer works.", "success")
    # Shown once, never stored in clear: render rather than redirect.
    return _preferences_page(feed_url=url_for("notifications.feed", token=token, _external=True))


@bp.post("/notifications/calendar-feed/revoke")
@login_required
def revoke_feed():
    """Stop the signed-in person's private calendar feed address from working."""
    if services.revoke_feed_token(current_user):
        db.session.commit()
        flash("Your private calendar address no longer works.", "success")
    return redirect(url_for("notifications.preferences"))


@bp.get("/calendar/<token>.ics")
def feed(token: str):
    """Serve a person's meetings as an iCalendar feed, to whoever holds the secret URL."""
    try:
        user, meetings = services.feed_for_token(token)
    except NotFoundError:
        abort(404)
    body = ics.feed(f"MDT meetings: {user.name}", meetings)
    db.session.commit()  # last_used_at
    response = Response(body, mimetype="text/calendar")
    response.headers["Content-Disposition"] = 'inline; filename="mdt.ics"'
    return response


def _preferences_page(feed_url: str | None = None):
    prefs = services.email_preferences(current_user)
    kinds = [(kind, render.KIND_LABELS[kind], KIND_HELP[kind], prefs[kind],
              kind in services.ALWAYS_EMAILED) for kind in NotificationKind]
    return render_template("notifications/preferences.html", kinds=kinds,
                           feed_token=services.feed_token_of(current_user), feed_url=feed_url)

