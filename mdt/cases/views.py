"""HTML views for cases: list and search, refer, read, edit, references."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from mdt.auth import services as users
from mdt.auth.models import Role
from mdt.auth.permissions import roles_required
from mdt.cases import services
from mdt.cases.forms import (
    CaseEditForm,
    CaseSearchForm,
    ReferenceForm,
    ReferralForm,
    RetractForm,
)
from mdt.cases.models import ECOG_GRADES, Case, ReferenceKind, Sex
from mdt.errors import ConflictError, DomainError, NotFoundError, ThrottledError
from mdt.extensions import db
from mdt.forms import choices
from mdt.meetings import services as meetings
from mdt.web import apply_field_errors

bp = Blueprint("cases", __name__, url_prefix="/cases")

ALL_ROLES = tuple(Role)


# --- List and search --------------------------------------------------------

@bp.route("", methods=["GET", "POST"])
@roles_required(*ALL_ROLES)
def index():
    """List the open cases the user may see; POST searches by hospital number."""
    form = CaseSearchForm()
    include_closed = request.args.get("closed") == "1"
    searched = form.validate_on_submit()
    cases = services.list_cases(current_user, include_closed=include_closed or searched,
                                hospital_number=form.hospital_number.data if searched else None,
                                page=1 if searched else request.args.get("page", 1, type=int))
    return render_template("cases/index.html", cases=cases, form=form, searched=searched,
                           include_closed=include_closed, readiness=services.readiness)


# --- Refer ------------------------------------------------------------------

def _referral_form() -> ReferralForm:
    form = ReferralForm()
    if services.can_choose_referrer(current_user):
        candidates = services.referrer_candidates()
        form.referrer_id.choices = _referrer_choices(candidates, blank="— choose —")
        if not form.is_submitted() and current_user.has_role(*services.REFERRER_ROLES):
            form.referrer_id.data = current_user.id
    else:
        del form.referrer_id
    return form


def _referrer_choices(candidates, blank: str | None = None):
    return choices(((str(u.id), f"{u.name} ({u.discipline.label})") for u in candidates), blank)


def _patient_input(form: ReferralForm) -> services.PatientInput:
    return services.PatientInput(
        hospital_number=form.hospital_number.data or "",
        name=form.patient_name.data, date_of_birth=form.date_of_birth.data,
        sex=Sex(form.sex.data) if form.sex.data else None)


def _needs_confirmation(form: ReferralForm, lookup: services.PatientLookup,
                        confirmed: str | None) -> bool:
    """Return True until a reader has seen the known patient or typed matching details."""
    if lookup.shown is None:
        return False  # new patient; or one they may not read, whose details they must type
    typed_both = bool(form.patient_name.data and form.date_of_birth.data)
    return not typed_both and confirmed != str(lookup.shown.id)


@bp.route("/new", methods=["GET", "POST"])
@roles_required(*services.REFERRING_ROLES)
def new():
    """Refer a case to the MDT, registering the patient if new.

    Every submitted hospital number is a look-up (``services.look_up_patient``):
    counted, audited, and answered with only what the referrer may read.
    """
    form = _referral_form()
    if not form.is_submitted():
        return _referral_page(form)
    confirmed = form.confirmed_patient_id.data
    if not (form.hospital_number.data or "").strip():
        if form.lookup.data:
            form.hospital_number.errors = ["Type a hospital number to look up."]
        else:
            form.validate()
        return _referral_page(form)
    lookup = _look_up(form)
    if not isinstance(lookup, services.PatientLookup):
        return lookup
    if form.lookup.data or not form.validate():
        db.session.commit()  # the look-up's audit entry and count
        if form.lookup.data and not lookup.registered:
            flash("No patient has this hospital number yet: fill in their details to register "
                  "them.", "info")
        return _referral_page(form, lookup)
    if _needs_confirmation(form, lookup, confirmed):
        db.session.commit()
        flash("This hospital number belongs to a registered patient. Check that this is the "
              "right person, then submit again.", "warning")
        return _referral_page(form, lookup)
    return _refer(form)


def _look_up(form: ReferralForm):
    """Count and audit a look-up of the typed number; the refusal page when over the limit."""
    try:
        lookup = services.look_up_patient(current_user, _patient_input(form))
    except ThrottledError as exc:
        db.session.commit()  # keep the audit entry of the refused look-up
        apply_field_errors(form, exc)
        return _referral_page(form), exc.status_code
    # A page that shows a reader the patient makes the next submit a confirmation.
    form.confirmed_patient_id.data = str(lookup.shown.id) if lookup.shown else ""
    return lookup


def _refer(form: ReferralForm):
    """Create the case; on refusal keep what was typed, and the look-up on record."""
    try:
        case = services.create_case(patient=_patient_input(form), values=form.case_values(),
                                    actor=current_user, referrer=_chosen_referrer(form))
        db.session.commit()
    except DomainError as exc:
        db.session.rollback()
        apply_field_errors(form, exc)
        again = _look_up(form)  # the rollback took the look-up's audit entry and count with it
        if not isinstance(again, services.PatientLookup):
            return again
        db.session.commit()
        return _referral_page(form, again)
    flash(f"Case {case.id} referred.", "success")
    return redirect(url_for("cases.detail", case_id=case.id))


def _referral_page(form: ReferralForm, lookup: services.PatientLookup | None = None):
    return render_template("cases/new.html", form=form, lookup=lookup)


def _chosen_referrer(form):
    field = getattr(form, "referrer_id", None)
    if field is None or field.data is None:
        return None
    return users.get_user(field.data)


# --- Read -------------------------------------------------------------------

@bp.get("/<int:case_id>")
@roles_required(*ALL_ROLES)
def detail(case_id: int):
    """Show a case: patient, diagnosis, readiness, references and its agenda items."""
    return _render_detail(case_id)


def _render_detail(case_id: int, reference_form: ReferenceForm | None = None, status: int = 200):
    page = services.case_page(current_user, case_id)
    return render_template(
        "cases/detail.html", page=page, case=page.case,
        can_edit=services.can_edit_case(current_user, page.case),
        can_add_to_meeting=meetings.can_propose_cases(current_user, page.case),
        reference_form=reference_form or ReferenceForm(formdata=None),
        ecog_grades=ECOG_GRADES,
    ), status


# --- Edit -------------------------------------------------------------------

def _edit_form(case: Case) -> CaseEditForm:
    form = CaseEditForm(obj=case)
    if not form.is_submitted():
        form.version.data = str(case.version)
        form.referrer_id.data = case.referring_clinician_id
        for name in ("egfr_status", "alk_status", "ros1_status", "kras_status"):
            getattr(form, name).data = getattr(case, name).value
    if services.can_choose_referrer(current_user):
        candidates = services.referrer_candidates()
        if case.referring_clinician not in candidates:
            candidates.insert(0, case.referring_clinician)
        form.referrer_id.choices = _referrer_choices(candidates)
    else:
        del form.referrer_id
    return form


@bp.route("/<int:case_id>/edit", methods=["GET", "POST"])
@roles_required(*ALL_ROLES)
def edit(case_id: int):
    """Edit a case's clinical details; an edit based on an old version is refused."""
    case = services.get_editable_case(current_user, case_id)
    form = _edit_form(case)
    conflict = None
    if form.validate_on_submit():
        try:
            diff = services.update_case(
                case, expected_version=_int(form.version.data), values=form.case_values(),
                actor=current_user, referrer=_chosen_referrer(form))
            db.session.commit()
        except ConflictError as exc:
            db.session.rollback()
            conflict = _conflict(case_id, form, exc)
        except DomainError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
        else:
            flash(f"Case {case_id} saved." if diff else "Nothing changed.", "success")
            return redirect(url_for("cases.detail", case_id=case_id))
    return render_template("cases/edit.html", form=form, case=case, conflict=conflict)


def _int(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        abort(400)


def _conflict(case_id: int, form: CaseEditForm, exc: ConflictError) -> dict:
    """Keep the user's input, show what is saved now, and base a new attempt on the latter."""
    flash(exc.message, "error")
    current = services.get_case(case_id)
    saved = {name: getattr(current, name) for name in services.CASE_FIELDS}
    mine = form.case_values()
    differs = {name: (saved[name], mine[name]) for name in services.CASE_FIELDS
               if str(getattr(saved[name], "value", saved[name]) or "") != str(mine[name] or "")}
    form.version.data = str(current.version)
    return {"version": current.version, "fields": differs, "labels": {
        name: getattr(form, name).label.text for name in differs}}


# --- References -------------------------------------------------------------

@bp.post("/<int:case_id>/references")
@roles_required(*ALL_ROLES)
def add_reference(case_id: int):
    """Attach an imaging or pathology reference to a case."""
    case = services.get_editable_case(current_user, case_id)
    form = ReferenceForm()
    if form.validate_on_submit():
        try:
            services.add_reference(case, kind=ReferenceKind(form.kind.data),
                                   accession_number=form.accession_number.data,
                                   performed_on=form.performed_on.data,
                                   description=form.description.data, url=form.url.data,
                                   actor=current_user)
            db.session.commit()
        except DomainError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
        else:
            flash("Reference added.", "success")
            return redirect(url_for("cases.detail", case_id=case_id) + "#references")
    return _render_detail(case_id, reference_form=form)


@bp.post("/<int:case_id>/references/<int:reference_id>/retract")
@roles_required(*ALL_ROLES)
def retract_reference(case_id: int, reference_id: int):
    """Retract a reference entered by mistake (it stays on record, struck out)."""
    case = services.get_editable_case(current_user, case_id)
    form = RetractForm()
    if not form.validate_on_submit():
        flash("Say why the reference is retracted.", "error")
        return redirect(url_for("cases.detail", case_id=case_id) + "#references")
    try:
        services.retract_reference(case, reference_id, reason=form.reason.data, actor=current_user)
        db.session.commit()
    except NotFoundError:
        raise  # no such reference on this case: the 404 page, not a flash
    except DomainError as exc:
        db.session.rollback()
        flash(exc.message, "error")
    else:
        flash("Reference retracted.", "success")
    return redirect(url_for("cases.detail", case_id=case_id) + "#references")
