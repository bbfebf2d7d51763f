"""The delivery operator page, ``/admin/notifications``: counts, retries, failures, resend."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_login import current_user

from mdt.auth.models import Role
from mdt.auth.permissions import roles_required
from mdt.delivery import operations, retry
from mdt.errors import DomainError
from mdt.extensions import db

bp = Blueprint("delivery", __name__, url_prefix="/admin/notifications")


@bp.get("")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def index():
    """Show delivery counts, the dispatcher's last run, and the notifications retrying or failed."""
    return render_template(
        "delivery/status.html", status=operations.delivery_status(),
        retrying=operations.retrying_notifications(), failed=operations.failed_notifications(),
        stale_minutes=int(operations.DISPATCHER_STALE_AFTER.total_seconds() // 60),
        stale_cause=operations.stale_dispatcher_cause(current_app.config["BROKER_URL"]),
        horizon=retry.describe(retry.horizon()),
        max_delay=retry.describe(timedelta(seconds=current_app.config["NOTIFY_RETRY_MAX_DELAY"])))


@bp.post("/<int:notification_id>/resend")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def resend(notification_id: int):
    """Queue a failed, cancelled or sent notification again."""
    try:
        operations.resend(notification_id, actor=current_user)
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        if exc.status_code == 404:
            raise
        flash(exc.message, "error")
    else:
        flash(f"Notification {notification_id} will be sent again within a minute.", "success")
    return redirect(url_for("delivery.index"))


@bp.post("/resend-failed")
@roles_required(Role.ADMIN, Role.COORDINATOR)
def resend_failed():
    """Queue every failed notification again."""
    count = operations.resend_all_failed(actor=current_user)
    db.session.commit()
    if count:
        flash(f"{count} failed notification{'' if count == 1 else 's'} will be sent again "
              "within a minute.", "success")
    else:
        flash("There are no failed notifications to resend.", "info")
    return redirect(url_for("delivery.index"))
