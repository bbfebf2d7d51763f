"""HTML views for the item page, proposals, opinions, the consensus and its report."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from mdt.auth import permissions
from mdt.auth.models import Role
from mdt.auth.permissions import roles_required
from mdt.decisions import services
from mdt.decisions.forms import AmendmentForm, ConsensusForm, OpinionForm, ProposalForm
from mdt.decisions.models import Intent, Modality, Outcome, Stance
from mdt.errors import (
    ConflictError,
    InvalidError,
    NotFoundError,
)
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.forms import StatusForm
from mdt.meetings.models import ItemStatus
from mdt.web import apply_field_errors

bp = Blueprint("decisions", __name__)


# --- The item page ---------------------------------------------------------------------

def _opinion_form(view: services.ProposalView) -> OpinionForm:
    form = OpinionForm(prefix=f"p{view.proposal.id}", formdata=None)
    if view.own_opinion is not None:
        form.stance.data = view.own_opinion.stance.value
        form.comment.data = view.own_opinion.comment
    return form


def _render_item(page: services.ItemPage, bound: dict[int, OpinionForm] | None = None,
                 status: int = 200):
    item = page.item
    can_propose = services.can_propose(current_user, item)
    forms = {}
    if can_propose:
        forms = {view.proposal.id: _opinion_form(view) for group in page.groups
                 for view in group.proposals if not view.proposal.is_withdrawn}
        forms.update(bound or {})
    can_coordinate = permissions.can_coordinate(current_user)
    return render_template(
        "decisions/item.html", page=page, item=item, case=item.case, meeting=item.meeting,
        consensus=item.consensus, opinion_forms=forms, can_propose=can_propose,
        is_chair=meetings.is_chair(current_user, item.meeting),
        can_sign=services.can_sign(current_user, item),
        can_amend=item.consensus is not None and services.can_amend(current_user, item.consensus),
        can_set_status=can_coordinate and item.status == ItemStatus.PENDING,
        can_carry_over=can_coordinate and meetings.can_carry_over(item),
        can_edit={view.proposal.id: services.can_edit_proposal(current_user, view.proposal)
                  for group in page.groups for view in group.proposals},
        status_form=StatusForm(formdata=None),
    ), status


@bp.get("/items/<int:item_id>")
@login_required
def item(item_id: int):
    """Show an agenda item: the case, its proposals and opinions, and the consensus."""
    return _render_item(services.item_page(current_user, item_id))


# --- Proposals -------------------------------------------------------------------------

def _proposal_values(form: ProposalForm) -> dict:
    return dict(modality=Modality(form.modality.data), details=form.details.data,
                rationale=form.rationale.data, alternative_group=form.alternative_group.data)


@bp.route("/items/<int:item_id>/proposals/new", methods=["GET", "POST"])
@roles_required(Role.SPECIALIST)
def new_proposal(item_id: int):
    """Attach a treatment proposal to an agenda item."""
    item = services.get_visible_item(current_user, item_id)
    services.check_can_propose(current_user, item)
    form = ProposalForm()
    if form.validate_on_submit():
        try:
            services.create_proposal(current_user, item, **_proposal_values(form))
            db.session.commit()
            flash("Proposal added.", "success")
            return redirect(url_for("decisions.item", item_id=item.id))
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("decisions/proposal_form.html", form=form, item=item, proposal=None)


def _visible_proposal(proposal_id: int):
    proposal = services.get_proposal(proposal_id)
    if not services.can_view_item(current_user, proposal.agenda_item):
        raise NotFoundError("No such proposal.")
    return proposal


def _set_version(form: ProposalForm, version: int) -> None:
    form.version.raw_data = []
    form.version.data = version


@bp.route("/proposals/<int:proposal_id>/edit", methods=["GET", "POST"])
@roles_required(Role.SPECIALIST, Role.COORDINATOR)
def edit_proposal(proposal_id: int):
    """Edit a proposal; an edit based on a stale version ends in a conflict message."""
    proposal = _visible_proposal(proposal_id)
    services.check_can_edit_proposal(current_user, proposal)
    form = ProposalForm(obj=proposal)
    if not form.is_submitted():
        form.modality.data = proposal.modality.value
        _set_version(form, proposal.version)
    elif form.validate():
        try:
            services.update_proposal(current_user, proposal, version=form.version.data or 0,
                                     **_proposal_values(form))
            db.session.commit()
            flash("Proposal saved.", "success")
            return redirect(url_for("decisions.item", item_id=proposal.agenda_item_id))
        except ConflictError as exc:
            db.session.rollback()
            current = services.get_proposal(proposal_id)
            _set_version(form, current.version)
            return render_template("decisions/proposal_form.html", form=form,
                                   item=current.agenda_item, proposal=current,
                                   conflict=exc.message), 409
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("decisions/proposal_form.html", form=form, item=proposal.agenda_item,
                           proposal=proposal)


@bp.post("/proposals/<int:proposal_id>/withdraw")
@roles_required(Role.SPECIALIST, Role.COORDINATOR)
def withdraw_proposal(proposal_id: int):
    """Withdraw a proposal (it stays on record)."""
    proposal = _visible_proposal(proposal_id)
    services.withdraw_proposal(current_user, proposal)
    db.session.commit()
    flash("Proposal withdrawn.", "success")
    return redirect(url_for("decisions.item", item_id=proposal.agenda_item_id))


# --- Opinions --------------------------------------------------------------------------

@bp.post("/proposals/<int:proposal_id>/opinion")
@roles_required(Role.SPECIALIST)
def give_opinion(proposal_id: int):
    """Give or change the signed-in specialist's opinion on a proposal."""
    proposal = _visible_proposal(proposal_id)
    item_id = proposal.agenda_item_id
    form = OpinionForm(prefix=f"p{proposal.id}")
    if form.validate_on_submit():
        try:
            services.give_opinion(current_user, proposal, stance=Stance(form.stance.data),
                                  comment=form.comment.data)
            db.session.commit()
            flash("Your opinion was recorded.", "success")
            return redirect(url_for("decisions.item", item_id=item_id,
                                    _anchor=f"proposal-{proposal_id}"))
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return _render_item(services.item_page(current_user, item_id), {proposal_id: form}, 400)


# --- Consensus -------------------------------------------------------------------------

def _action_inputs(form: ConsensusForm) -> list[services.ActionInput]:
    return [services.ActionInput(entry.form.description.data, entry.form.owner_id.data,
                                 entry.form.due_on.data) for entry in form.actions]


def _consensus_input(form: ConsensusForm) -> services.ConsensusInput:
    return services.ConsensusInput(
        outcome=Outcome(form.outcome.data), recommendation=form.recommendation.data,
        reason=form.reason.data, adopted_ids=form.adopted.data or [],
        intent=Intent(form.intent.data),
        responsible_clinician_id=form.responsible_clinician_id.data,
        actions=_action_inputs(form), dissent=form.dissent.data,
        non_quorate_reason=form.non_quorate_reason.data)


def _prefill_consensus(form: ConsensusForm, item) -> None:
    form.dissent.data = services.dissent_from_objections(item)
    referrer = item.case.referring_clinician
    if referrer.has_role(Role.CLINICIAN) and referrer.is_active:
        form.responsible_clinician_id.data = referrer.id


@bp.route("/items/<int:item_id>/consensus", methods=["GET", "POST"])
@login_required
def consensus(item_id: int):
    """Let the meeting's chair record and sign the item's consensus, once."""
    item = services.get_visible_item(current_user, item_id)
    services.check_can_sign(current_user, item)
    form = ConsensusForm()
    form.set_choices(item.proposals, services.responsible_clinicians(), services.action_owners())
    if not form.is_submitted():
        _prefill_consensus(form, item)
    actions_error = None
    if form.validate_on_submit():
        try:
            services.sign_consensus(current_user, item, _consensus_input(form))
            db.session.commit()
            flash("Consensus signed.", "success")
            return redirect(url_for("decisions.item", item_id=item_id))
        except InvalidError as exc:
            db.session.rollback()
            actions_error = exc.fields.pop("actions", None)
            apply_field_errors(form, exc)
    return render_template("decisions/consensus_form.html", form=form, item=item,
                           quorum=meetings.quorum(item.meeting), actions_error=actions_error)


@bp.route("/consensus/<int:consensus_id>/amend", methods=["GET", "POST"])
@login_required
def amend(consensus_id: int):
    """Add an amendment (why and what) beneath a signed consensus."""
    signed = services.get_consensus(consensus_id)
    if not services.can_view_item(current_user, signed.agenda_item):
        raise NotFoundError("No such consensus.")
    services.check_can_amend(current_user, signed)
    form = AmendmentForm()
    if form.validate_on_submit():
        try:
            services.add_amendment(current_user, signed, reason=form.reason.data,
                                   correction=form.correction.data)
            db.session.commit()
            flash("Amendment added.", "success")
            return redirect(url_for("decisions.item", item_id=signed.agenda_item_id))
        except InvalidError as exc:
            db.session.rollback()
            apply_field_errors(form, exc)
    return render_template("decisions/amend_form.html", form=form, consensus=signed,
                           item=signed.agenda_item)


# --- The report ------------------------------------------------------------------------

@bp.get("/cases/<int:case_id>/report")
@login_required
def report(case_id: int):
    """Show the consensus report of a case, readable and printable on its own."""
    return render_template("decisions/report.html",
                           report=services.case_report(current_user, case_id))
