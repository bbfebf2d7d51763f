"""HTML views for meeting series, meetings, agendas and attendance."""
from __future__ import annotations

from collections.abc import Callable

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response as WerkzeugResponse

from mdt import clock, timezones
from mdt.auth import services as users
from mdt.auth.models import Role
from mdt.auth.permissions import roles_required
from mdt.cases import services as cases
from mdt.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    ImmutableError,
    InvalidError,
    NotFoundError,
)
from mdt.extensions import db
from mdt.forms import choices
from mdt.meetings import forms as f
from mdt.meetings import services
from mdt.meetings.models import AgendaItem, ItemStatus, Meeting
from mdt.web import apply_field_errors, format_datetime

bp = Blueprint("meetings", __name__)

MANAGERS = (Role.COORDINATOR, Role.ADMIN)
EVERYONE = (Role.ADMIN, Role.COORDINATOR, Role.SPECIALIST, Role.CLINICIAN)


# --- helpers ----------------------------------------------------------------

def _people_choices(blank: str = "— none —"):
    return choices(((str(u.id), f"{u.name} ({u.discipline.label})")
                    for u in users.list_users(active_only=True)), blank=blank)


def _int_or_none(value: str | None) -> int | None:
    return int(value) if value not in (None, "") else None


def _to_meeting(meeting_id: int, anchor: str | None = None) -> WerkzeugResponse:
    target = url_for("meetings.detail", meeting_id=meeting_id)
    return redirect(f"{target}#{anchor}" if anchor else target)


def _back_to(meeting_id: int, item_id: int) -> WerkzeugResponse:
    """Return to the item page when the form came from it, else to the meeting's agenda."""
    if request.form.get("return_to") == "item":
        return redirect(url_for("decisions.item", item_id=item_id))
    return _to_meeting(meeting_id, f"item-{item_id}")


def _fail(exc: DomainError) -> None:
    """Undo the request's changes and show why (forbidden and not-found propagate)."""
    db.session.rollback()
    if isinstance(exc, (ForbiddenError, NotFoundError)):
        raise exc
    flash(exc.message, "error")


def _conflict(exc: ConflictError | ImmutableError) -> int:
    """Undo the request's changes, say what happened above the form kept as typed: 409."""
    db.session.rollback()
    flash(exc.message, "error")
    return 409


def _form_errors(form) -> str:
    return " ".join(f"{getattr(form, name).label.text}: {'; '.join(errors)}"
                    for name, errors in form.errors.items())


# --- series -----------------------------------------------------------------

@bp.get("/series")
@roles_required(*MANAGERS)
def series_list():
    """List the meeting series."""
    return render_template("meetings/series_list.html", series=services.list_series())


def _series_values(form: f.SeriesForm) -> dict:
    return dict(
        name=form.name.data, weekday=int(form.weekday.data), start_time=form.start_time.data,
        time_zone=form.time_zone.data.strip(), duration_minutes=form.duration_minutes.data,
        location=form.location.data, video_url=form.video_url.data,
        default_chair_id=_int_or_none(form.default_chair_id.data),
        core_disciplines=form.core_disciplines.data, cutoff_hours=form.cutoff_hours.data,
        reminder_offsets_minutes=f.parse_offsets(form.reminder_offsets.data))


@bp.route("/series/new", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def new_series():
    """Create a meeting series and its upcoming meetings."""
    form = f.SeriesForm()
    form.default_chair_id.choices = _people_choices()
    if not form.is_submitted():
        form.time_zone.data = current_app.config["DEFAULT_TIME_ZONE"]
    if form.validate_on_submit():
        try:
            series = services.create_series(**_series_values(form), actor=current_user)
            db.session.commit()
            flash(f"Series {series.name} created with {len(series.meetings)} upcoming meetings.",
                  "success")
            return redirect(url_for("meetings.series_list"))
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("meetings/series_form.html", form=form, series=None)


@bp.route("/series/<int:series_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_series(series_id: int):
    """Edit a series (meetings already generated keep their time and place)."""
    series = services.get_series(series_id)
    form = f.SeriesForm(obj=series)
    form.default_chair_id.choices = _people_choices()
    if not form.is_submitted():
        form.weekday.data = str(series.weekday)
        form.default_chair_id.data = str(series.default_chair_id or "")
        form.reminder_offsets.data = ", ".join(str(m) for m in series.reminder_offsets_minutes)
    if form.validate_on_submit():
        try:
            services.update_series(series, **_series_values(form), actor=current_user)
            db.session.commit()
            flash(f"Series {series.name} saved. Meetings already scheduled keep their time "
                  "and place; change them one by one if needed.", "success")
            return redirect(url_for("meetings.series_list"))
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("meetings/series_form.html", form=form, series=series)


@bp.post("/series/<int:series_id>/generate")
@roles_required(*MANAGERS)
def generate(series_id: int):
    """Create the series' missing upcoming meetings."""
    series = services.get_series(series_id)
    created = services.generate_meetings(series)
    db.session.commit()
    flash(f"{len(created)} meeting(s) added." if created
          else "The next eight weeks were already scheduled.", "success")
    return redirect(url_for("meetings.index"))


# --- meetings ---------------------------------------------------------------

@bp.get("/meetings")
@roles_required(*EVERYONE)
def index():
    """List upcoming and recent meetings."""
    return render_template("meetings/index.html", listing=services.list_meetings(),
                           can_manage=current_user.has_role(*MANAGERS))


@bp.get("/meetings/<int:meeting_id>")
@roles_required(*EVERYONE)
def detail(meeting_id: int):
    """Show a meeting: header, agenda, attendance and quorum."""
    meeting = services.get_meeting_page(meeting_id)
    can_manage = current_user.has_role(*MANAGERS)
    invite_form = f.InviteForm()
    if can_manage:
        invited = {a.user_id for a in meeting.attendances}
        invite_form.user_id.choices = choices(
            ((str(u.id), f"{u.name} ({u.discipline.label})")
             for u in users.list_users(active_only=True) if u.id not in invited),
            blank="— choose a person —")
    own = next((a for a in meeting.attendances if a.user_id == current_user.id), None)
    response_form = f.ResponseForm(formdata=None, data={
        "response": own.response.value if own is not None else None})
    return render_template(
        "meetings/detail.html", meeting=meeting, quorum=services.quorum(meeting),
        readiness={i.id: cases.readiness(i.case) for i in meeting.items},
        visible=cases.visible_case_ids(current_user, (i.case_id for i in meeting.items)),
        cutoff=services.cutoff_at(meeting), started=services.has_started(meeting),
        can_manage=can_manage, can_add_case=services.can_add_cases(current_user, meeting),
        can_record_presence=(services.can_record_presence(current_user, meeting)
                             and services.presence_open(meeting)),
        can_carry={i.id: services.can_carry_over(i) for i in meeting.items},
        can_edit_item={i.id: services.can_edit_item(i) for i in meeting.items},
        signed=services.has_signed_items(meeting),
        can_remove={i.id: services.can_remove_item(i) for i in meeting.items},
        invite_form=invite_form, triage_form=f.TriageForm(formdata=None),
        status_form=f.StatusForm(formdata=None), response_form=response_form,
        ItemStatus=ItemStatus)


def _meeting_form(meeting: Meeting, form_class: type[f.MeetingForm] = f.MeetingForm
                  ) -> f.MeetingForm:
    form = form_class(obj=meeting)
    form.chair_id.choices = _people_choices()
    if not form.is_submitted():
        local = meeting.starts_at.astimezone(timezones.zone(meeting.time_zone))
        form.day.data, form.start_time.data = local.date(), local.time().replace(tzinfo=None)
        form.chair_id.data = str(meeting.chair_id or "")
        form.version.data = str(meeting.version)
    return form


def _meeting_values(form: f.MeetingForm, meeting: Meeting) -> dict:
    return dict(
        expected_version=_int_or_none(form.version.data),
        starts_at=timezones.local_to_utc(form.day.data, form.start_time.data, meeting.time_zone),
        duration_minutes=form.duration_minutes.data, location=form.location.data,
        video_url=form.video_url.data, chair_id=_int_or_none(form.chair_id.data))


def _meeting_page(meeting_id: int, *, form: f.MeetingForm | None = None,
                  cancel_form: f.CancelForm | None = None, status: int = 200):
    """Render the edit page: edit and cancel forms, or, once decisions are signed, the
    correction form with the reason why."""
    meeting = services.get_meeting(meeting_id)
    signed = services.has_signed_items(meeting)
    if signed and not isinstance(form, f.CorrectionForm):
        form = _meeting_form(meeting, f.CorrectionForm)
    return render_template(
        "meetings/meeting_form.html", meeting=meeting, signed=signed,
        form=form or _meeting_form(meeting),
        cancel_form=cancel_form or f.CancelForm(formdata=None, version=str(meeting.version)),
        frozen_message=services.SIGNED_AT_MEETING,
        first_signed_at=services.first_signed_at(meeting) if signed else None), status


@bp.route("/meetings/<int:meeting_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_meeting(meeting_id: int):
    """Reschedule, re-chair or move one meeting (or, once signed, show how to correct it)."""
    meeting = services.get_meeting(meeting_id)
    form = _meeting_form(meeting)
    status = 200
    if form.validate_on_submit():
        try:
            services.update_meeting(meeting, **_meeting_values(form, meeting),
                                    actor=current_user)
            db.session.commit()
            flash("Meeting saved.", "success")
            return _to_meeting(meeting.id)
        except (ConflictError, ImmutableError) as exc:
            status = _conflict(exc)
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return _meeting_page(meeting_id, form=form, status=status)


@bp.post("/meetings/<int:meeting_id>/cancel")
@roles_required(*MANAGERS)
def cancel_meeting(meeting_id: int):
    """Cancel a meeting, with a reason."""
    meeting = services.get_meeting(meeting_id)
    cancel_form = f.CancelForm()
    status = 200
    if cancel_form.validate_on_submit():
        try:
            services.cancel_meeting(meeting, reason=cancel_form.reason.data,
                                    expected_version=_int_or_none(cancel_form.version.data),
                                    actor=current_user)
            db.session.commit()
            flash("Meeting cancelled.", "success")
            return _to_meeting(meeting.id)
        except (ConflictError, ImmutableError) as exc:
            status = _conflict(exc)
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(cancel_form, exc)
    else:
        status = 400
    return _meeting_page(meeting_id, cancel_form=cancel_form, status=status)


@bp.post("/meetings/<int:meeting_id>/corrections")
@roles_required(*MANAGERS)
def correct_meeting(meeting_id: int):
    """Record a correction to a meeting at which decisions were signed, with the reason."""
    meeting = services.get_meeting(meeting_id)
    form = _meeting_form(meeting, f.CorrectionForm)
    status = 400
    if form.validate_on_submit():
        status = 200
        try:
            services.correct_meeting(meeting, **_meeting_values(form, meeting),
                                     reason=form.reason.data, actor=current_user)
            db.session.commit()
            flash("Correction recorded. It is shown with the meeting and with the decisions "
                  "signed at it.", "success")
            return _to_meeting(meeting_id, f"corrections-{meeting_id}")
        except ConflictError as exc:
            status = _conflict(exc)
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return _meeting_page(meeting_id, form=form, status=status)


# --- agenda -----------------------------------------------------------------

@bp.route("/meetings/<int:meeting_id>/items/new", methods=["GET", "POST"])
@roles_required(*EVERYONE)
def new_item(meeting_id: int):
    """Put a case on a meeting's agenda."""
    meeting = services.get_meeting(meeting_id)
    late = services.check_can_add(current_user, None, meeting)
    form = f.AddItemForm()
    form.case_id.choices = choices(
        ((str(c.id), f"{c.patient.initials} · {c.patient.hospital_number} · case {c.id}: "
                     f"{c.question[:60]}") for c in services.addable_cases(current_user, meeting)),
        blank="— choose a case —")
    form.presenter_id.choices = _people_choices()
    status = 200
    if form.validate_on_submit():
        try:
            case = cases.get_visible_case(current_user, int(form.case_id.data))
            item = services.add_item(meeting, case, actor=current_user,
                                     minutes_allotted=form.minutes_allotted.data,
                                     presenter_id=_int_or_none(form.presenter_id.data))
            db.session.commit()
            flash("Case added to the agenda" + (" (late: after the cutoff)." if item.is_late
                                                else "."), "success")
            return _to_meeting(meeting.id, "agenda")
        except ConflictError as exc:
            status = _conflict(exc)
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("meetings/item_new.html", form=form, meeting=meeting, late=late,
                           cutoff=services.cutoff_at(meeting)), status


@bp.route("/cases/<int:case_id>/agenda", methods=["GET", "POST"])
@roles_required(*EVERYONE)
def add_case_to_meeting(case_id: int):
    """Put one case on an upcoming meeting's agenda."""
    case = cases.get_visible_case(current_user, case_id)
    if not services.can_propose_cases(current_user, case):
        abort(403)
    meetings = services.meetings_open_for_case(current_user, case)
    form = f.AddToMeetingForm()
    form.meeting_id.choices = choices(
        ((str(m.id), f"{m.series.name}, {_local(m)}"
          + (" — after the cutoff: late" if clock.now() >= services.cutoff_at(m) else ""))
         for m in meetings), blank="— choose a meeting —")
    form.presenter_id.choices = _people_choices()
    status = 200
    if form.validate_on_submit():
        try:
            meeting = services.get_meeting(int(form.meeting_id.data))
            item = services.add_item(meeting, case, actor=current_user,
                                     minutes_allotted=form.minutes_allotted.data,
                                     presenter_id=_int_or_none(form.presenter_id.data))
            db.session.commit()
            flash("Case added to the agenda" + (" (late: after the cutoff)." if item.is_late
                                                else "."), "success")
            return _to_meeting(meeting.id, "agenda")
        except ConflictError as exc:
            status = _conflict(exc)
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("meetings/add_case.html", form=form, case=case,
                           meetings=meetings), status


def _local(meeting: Meeting) -> str:
    return format_datetime(meeting.starts_at, meeting.time_zone)


@bp.route("/items/<int:item_id>/edit", methods=["GET", "POST"])
@roles_required(*MANAGERS)
def edit_item(item_id: int):
    """Change an item's minutes allotted or presenter."""
    item = services.get_item(item_id)
    form = f.ItemForm(obj=item)
    form.presenter_id.choices = _people_choices()
    if not form.is_submitted():
        form.presenter_id.data = str(item.presenter_id or "")
        form.version.data = str(item.version)
    status = 200
    if form.validate_on_submit():
        try:
            services.update_item(item, expected_version=_int_or_none(form.version.data),
                                 minutes_allotted=form.minutes_allotted.data,
                                 presenter_id=_int_or_none(form.presenter_id.data),
                                 actor=current_user)
            db.session.commit()
            flash("Agenda item saved.", "success")
            return _to_meeting(item.meeting_id, f"item-{item.id}")
        except (ConflictError, ImmutableError) as exc:
            status = _conflict(exc)
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    item = services.get_item(item_id)
    return render_template("meetings/item_form.html", form=form, item=item,
                           can_edit=services.can_edit_item(item)), status


def _item_action(item_id: int, action: Callable[[AgendaItem], str | None],
                 form: FlaskForm | None = None) -> WerkzeugResponse:
    """Run ``action(item)`` for a POST button on the meeting page; commit or explain.

    With a ``form``, the action runs only once the form validates.
    """
    item = services.get_item(item_id)
    meeting_id = item.meeting_id
    try:
        if form is not None and not form.validate():
            raise InvalidError(_form_errors(form))
        message = action(item)
        db.session.commit()
        if message:
            flash(message, "success")
    except DomainError as exc:
        _fail(exc)
    return _back_to(meeting_id, item_id)


@bp.post("/items/<int:item_id>/remove")
@roles_required(*MANAGERS)
def remove_item(item_id: int):
    """Take a pending item off the agenda."""
    def act(item):
        services.remove_item(item, actor=current_user)
        return "Case removed from the agenda."
    return _item_action(item_id, act)


@bp.post("/items/<int:item_id>/move")
@roles_required(*MANAGERS)
def move_item(item_id: int):
    """Move an item up or down the agenda."""
    def act(item):
        moved = services.move_item(item, request.form.get("direction", ""), actor=current_user)
        return "Agenda reordered." if moved else None
    return _item_action(item_id, act)


@bp.post("/items/<int:item_id>/triage")
@roles_required(*MANAGERS)
def triage(item_id: int):
    """Triage an item for discussion or as standard of care."""
    form = f.TriageForm()

    def act(item):
        services.triage_item(item, form.triage.data, actor=current_user)
        return f"Triaged: {item.triage.label}."
    return _item_action(item_id, act, form)


@bp.post("/items/<int:item_id>/status")
@roles_required(*MANAGERS)
def item_status(item_id: int):
    """Mark an item discussed, deferred or withdrawn."""
    form = f.StatusForm()

    def act(item):
        services.set_item_status(item, form.status.data, form.reason.data, actor=current_user)
        return f"Item marked {item.status.label.lower()}."
    return _item_action(item_id, act)


@bp.post("/items/<int:item_id>/carry-over")
@roles_required(*MANAGERS)
def carry_over(item_id: int):
    """Carry a deferred or not-reached item to the series' next meeting."""
    item = services.get_item(item_id)
    meeting_id = item.meeting_id
    try:
        new_item = services.carry_over(item, actor=current_user)
        db.session.commit()
        flash(f"Case carried over to the meeting of {_local(new_item.meeting)}, "
              "with its proposals and opinions.", "success")
        return _back_to(new_item.meeting_id, new_item.id)
    except DomainError as exc:
        _fail(exc)
        return _back_to(meeting_id, item_id)


# --- attendance -------------------------------------------------------------

@bp.post("/meetings/<int:meeting_id>/attendees")
@roles_required(*MANAGERS)
def invite(meeting_id: int):
    """Invite one person, or the core team, to a meeting."""
    meeting = services.get_meeting(meeting_id)
    try:
        if request.form.get("core_team"):
            invited = services.invite_core_team(meeting, actor=current_user)
            message = (f"{len(invited)} member(s) of the core team invited." if invited
                       else "The core team was already invited.")
        else:
            user_id = _int_or_none(request.form.get("user_id"))
            if user_id is None:
                raise InvalidError("Choose a person to invite.")
            attendance = services.invite(meeting, users.get_user(user_id), actor=current_user)
            message = ("Invitation sent." if attendance is not None
                       else "That person was already invited.")
        db.session.commit()
        flash(message, "success")
    except DomainError as exc:
        _fail(exc)
    return _to_meeting(meeting_id, "attendance")


@bp.post("/attendances/<int:attendance_id>/remove")
@roles_required(*MANAGERS)
def remove_attendee(attendance_id: int):
    """Uninvite a person from a meeting."""
    attendance = services.get_attendance(attendance_id)
    meeting_id = attendance.meeting_id
    services.remove_attendee(attendance, actor=current_user)
    db.session.commit()
    flash("Attendee removed.", "success")
    return _to_meeting(meeting_id, "attendance")


@bp.post("/attendances/<int:attendance_id>/response")
@roles_required(*EVERYONE)
def respond(attendance_id: int):
    """Answer one's own invitation: accepted, declined or apologies."""
    attendance = services.get_attendance(attendance_id)
    if attendance.user_id != current_user.id:
        abort(403)
    meeting_id = attendance.meeting_id
    form = f.ResponseForm()
    try:
        if not form.validate():
            raise InvalidError(_form_errors(form))
        services.respond(attendance, current_user, form.response.data)
        db.session.commit()
        flash("Your answer is recorded.", "success")
    except DomainError as exc:
        _fail(exc)
    return _to_meeting(meeting_id, "attendance")


@bp.post("/attendances/<int:attendance_id>/presence")
@roles_required(*EVERYONE)
def presence(attendance_id: int):
    """Record whether an attendee is present (coordinators or the chair)."""
    attendance = services.get_attendance(attendance_id)
    meeting_id = attendance.meeting_id
    if not services.can_record_presence(current_user, attendance.meeting):
        abort(403)
    form = f.PresenceForm()
    try:
        if not form.validate():
            raise InvalidError(_form_errors(form))
        services.record_presence(attendance, current_user, form.presence.data)
        db.session.commit()
        flash("Presence recorded.", "success")
    except DomainError as exc:
        _fail(exc)
    return _to_meeting(meeting_id, "attendance")
