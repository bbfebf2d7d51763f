"""Proposals, opinions, the signed consensus and its amendments: the domain operations.

Who sees opinions (blinding, so early voices do not anchor later ones):

- the meeting's chair, and coordinators and admins who give no opinions (they
  hold no specialist role), always see every opinion and tally;
- a specialist sees the others' opinions on a proposal (and its tally) once
  they have given their own on it, or once the meeting has started;
- anyone else who may read the case (the referring or responsible clinician)
  sees them once the meeting has started;
- everyone who may read the item sees them once the item is decided.

A signed consensus, its actions and adopted proposals never change; amendments
are appended beneath it. The service functions refuse such changes, and a
``before_flush`` / ``do_orm_execute`` guard refuses them for any other code
path that goes through the ORM session.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Load, Session, joinedload, selectinload
from sqlalchemy.orm.exc import StaleDataError

from mdt import clock
from mdt.audit.services import changes, record
from mdt.auth.models import Discipline, Role, User
from mdt.cases.models import Case
from mdt.cases.services import Readiness, can_view_case, readiness
from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
    Intent,
    Modality,
    Opinion,
    Outcome,
    Proposal,
    Stance,
)
from mdt.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    ImmutableError,
    InvalidError,
    NotFoundError,
)
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.models import AgendaItem, ItemStatus, Meeting
from mdt.notifications import services as notifications

SIGNED_MESSAGE = ("A signed consensus cannot be changed. To correct it, add an amendment "
                  "beneath it.")
DECIDED_MESSAGE = ("This item has been decided: its proposals and opinions can no longer "
                   "change.")
CONFLICT_MESSAGE = ("Someone else changed this proposal after you opened it. Nothing of yours "
                    "was saved; the current version is shown below. Re-apply your changes "
                    "if they still make sense.")


# --- Meeting facts (from the meetings feature) -------------------------------------------

has_started = meetings.has_started
is_item_decided = meetings.is_item_decided
quorum = meetings.quorum


# --- Who may do what -----------------------------------------------------------------

def is_chair(user: User, meeting: Meeting) -> bool:
    """Return True if ``user`` chairs ``meeting``."""
    return bool(user.is_authenticated and meeting.chair_id == user.id)


def can_view_item(user: User, item: AgendaItem) -> bool:
    """Return True if ``user`` may read the item: its chair, or anyone who may read its case."""
    return is_chair(user, item.meeting) or can_view_case(user, item.case)


def sees_all_opinions(user: User, item: AgendaItem) -> bool:
    """The chair, coordinators and admins are never blinded, unless they give opinions too.

    A coordinator or admin who is also a specialist is blinded as a specialist:
    anchoring is what blinding prevents, and they may give opinions.
    """
    if is_chair(user, item.meeting):
        return True
    return user.has_role(Role.COORDINATOR, Role.ADMIN) and not user.has_role(Role.SPECIALIST)


def opinions_visible(user: User, proposal: Proposal, item: AgendaItem) -> bool:
    """Return True if ``user`` may see the opinions and tally of ``proposal``."""
    if sees_all_opinions(user, item) or has_started(item.meeting) or is_item_decided(item):
        return True
    return user.has_role(Role.SPECIALIST) and any(
        o.user_id == user.id for o in proposal.opinions)


def can_edit_proposal(user: User, proposal: Proposal) -> bool:
    """The author, or a coordinator, may edit or withdraw a proposal."""
    return proposal.author_id == user.id or user.has_role(Role.COORDINATOR)


def can_amend(user: User, consensus: Consensus) -> bool:
    """The meeting's chair or a coordinator may add an amendment."""
    return is_chair(user, consensus.agenda_item.meeting) or user.has_role(Role.COORDINATOR)


# --- Loading ---------------------------------------------------------------------------

def _consensus_options(path):
    return (
        path.joinedload(Consensus.signed_by),
        path.joinedload(Consensus.responsible_clinician),
        path.selectinload(Consensus.adopted_proposals),
        path.selectinload(Consensus.actions).joinedload(ConsensusAction.owner),
        path.selectinload(Consensus.amendments).joinedload(Amendment.author),
    )


def _item_options():
    consensus = selectinload(AgendaItem.consensus)
    return (
        joinedload(AgendaItem.meeting).joinedload(Meeting.series),
        joinedload(AgendaItem.meeting).joinedload(Meeting.chair),
        joinedload(AgendaItem.case).joinedload(Case.patient),
        joinedload(AgendaItem.case).joinedload(Case.referring_clinician),
        joinedload(AgendaItem.case).selectinload(Case.references),
        joinedload(AgendaItem.presenter),
        selectinload(AgendaItem.proposals).joinedload(Proposal.author),
        selectinload(AgendaItem.proposals).selectinload(Proposal.opinions)
        .joinedload(Opinion.user),
        *_consensus_options(consensus),
    )


def get_item(item_id: int) -> AgendaItem:
    """Return an agenda item with its case, proposals, opinions and consensus, or 404."""
    item = db.session.scalars(
        select(AgendaItem).where(AgendaItem.id == item_id).options(*_item_options())
    ).unique().one_or_none()
    if item is None:
        raise NotFoundError("No such agenda item.")
    return item


def get_visible_item(user: User, item_id: int) -> AgendaItem:
    """Return the item if ``user`` may read it; 404 otherwise (existence must not leak)."""
    item = get_item(item_id)
    if not can_view_item(user, item):
        raise NotFoundError("No such agenda item.")
    return item


def get_proposal(proposal_id: int) -> Proposal:
    """Return a proposal with its item, meeting and case, or 404."""
    proposal = db.session.scalars(
        select(Proposal).where(Proposal.id == proposal_id).options(
            joinedload(Proposal.agenda_item).joinedload(AgendaItem.meeting),
            joinedload(Proposal.agenda_item).joinedload(AgendaItem.case),
            joinedload(Proposal.agenda_item).selectinload(AgendaItem.consensus),
            joinedload(Proposal.author),
            selectinload(Proposal.opinions),
        )).unique().one_or_none()
    if proposal is None:
        raise NotFoundError("No such proposal.")
    return proposal


def get_consensus(consensus_id: int) -> Consensus:
    """Return a consensus with its item and meeting, or 404."""
    consensus = db.session.scalars(
        select(Consensus).where(Consensus.id == consensus_id).options(
            joinedload(Consensus.agenda_item).joinedload(AgendaItem.meeting),
            joinedload(Consensus.agenda_item).joinedload(AgendaItem.case),
            *_consensus_options(Load(Consensus)),
        )).unique().one_or_none()
    if consensus is None:
        raise NotFoundError("No such consensus.")
    return consensus


# --- The item page ---------------------------------------------------------------------

@dataclass
class Tally:
    support: int = 0
    object: int = 0
    abstain: int = 0

    def add(self, stance: Stance) -> None:
        setattr(self, stance.value, getattr(self, stance.value) + 1)

    @property
    def total(self) -> int:
        return self.support + self.object + self.abstain


@dataclass
class ProposalView:
    proposal: Proposal
    visible: bool
    tally: Tally
    by_discipline: list[tuple[Discipline, Tally]]
    own_opinion: Opinion | None


@dataclass
class ProposalGroup:
    #: The alternative group's label; None for a proposal that stands alone.
    label: str | None
    proposals: list[ProposalView] = field(default_factory=list)


@dataclass
class ItemPage:
    item: AgendaItem
    readiness: Readiness
    groups: list[ProposalGroup]
    decided: bool
    started: bool
    carried_from: AgendaItem | None
    carried_to: AgendaItem | None


def tally(opinions: list[Opinion]) -> tuple[Tally, list[tuple[Discipline, Tally]]]:
    """Count stances overall and per discipline (disciplines in their listed order)."""
    total, per = Tally(), defaultdict(Tally)
    for opinion in opinions:
        total.add(opinion.stance)
        per[opinion.discipline].add(opinion.stance)
    return total, [(d, per[d]) for d in Discipline if d in per]


def group_proposals(user: User, item: AgendaItem) -> list[ProposalGroup]:
    """Group the item's proposals: alternatives sharing a label together, in first-seen order."""
    groups: dict[str, ProposalGroup] = {}
    for proposal in item.proposals:
        key = _group_key(proposal.alternative_group) or f"#{proposal.id}"
        group = groups.setdefault(key, ProposalGroup(proposal.alternative_group))
        overall, per_discipline = tally(proposal.opinions)
        own = next((o for o in proposal.opinions if o.user_id == user.id), None)
        group.proposals.append(ProposalView(proposal, opinions_visible(user, proposal, item),
                                            overall, per_discipline, own))
    return list(groups.values())


def _carried_items(item: AgendaItem) -> dict[int, AgendaItem]:
    ids = [i for i in (item.carried_from_id, item.carried_to_id) if i]
    if not ids:
        return {}
    rows = db.session.scalars(select(AgendaItem).where(AgendaItem.id.in_(ids))
                              .options(joinedload(AgendaItem.meeting)))
    return {row.id: row for row in rows}


def item_page(user: User, item_id: int) -> ItemPage:
    """Gather everything the item page shows, in a fixed number of queries."""
    item = get_visible_item(user, item_id)
    carried = _carried_items(item)
    return ItemPage(
        item=item, readiness=readiness(item.case), groups=group_proposals(user, item),
        decided=is_item_decided(item), started=has_started(item.meeting),
        carried_from=carried.get(item.carried_from_id or 0),
        carried_to=carried.get(item.carried_to_id or 0),
    )


# --- Proposals -------------------------------------------------------------------------

def _clean(text: str | None) -> str | None:
    text = (text or "").strip()
    return text or None


def _group_label(label: str | None) -> str | None:
    """Normalise spacing so "Bone  agent " and "Bone agent" are one group."""
    return " ".join((label or "").split())[:40] or None


def _group_key(label: str | None) -> str:
    """Labels that differ only in case or spacing name the same group."""
    return " ".join((label or "").split()).casefold()


def _require_open(item: AgendaItem) -> None:
    if is_item_decided(item):
        raise ImmutableError(DECIDED_MESSAGE)


def _require_specialist(user: User) -> None:
    if not user.has_role(Role.SPECIALIST):
        raise ForbiddenError("Only specialists propose treatments and give opinions.")


def create_proposal(user: User, item: AgendaItem, *, modality: Modality, details: str | None,
                    rationale: str | None, alternative_group: str | None = None) -> Proposal:
    """Attach a specialist's treatment proposal to an agenda item."""
    _require_specialist(user)
    _require_open(item)
    proposal = Proposal(agenda_item=item, author=user, modality=Modality(modality),
                        details=_clean(details), rationale=_clean(rationale),
                        alternative_group=_group_label(alternative_group))
    db.session.add(proposal)
    db.session.flush()
    record("proposal.created", f"Proposal {proposal.id} ({proposal.modality.label}) added to "
           f"agenda item {item.id}", obj=proposal, case_id=item.case_id,
           data={"modality": proposal.modality, "alternative_group": proposal.alternative_group},
           actor_id=user.id)
    return proposal


def update_proposal(user: User, proposal: Proposal, *, version: int, modality: Modality,
                    details: str | None, rationale: str | None,
                    alternative_group: str | None) -> Proposal:
    """Edit a proposal, refusing an edit based on a version someone else has since changed."""
    _check_editable(user, proposal)
    if version != proposal.version:
        raise ConflictError(CONFLICT_MESSAGE)
    diff = changes(proposal, {
        "modality": Modality(modality), "details": _clean(details),
        "rationale": _clean(rationale), "alternative_group": _group_label(alternative_group)})
    if not diff:
        return proposal
    _flush_versioned()
    record("proposal.changed", f"Proposal {proposal.id} changed", obj=proposal,
           case_id=proposal.agenda_item.case_id, data=diff, actor_id=user.id)
    return proposal


def withdraw_proposal(user: User, proposal: Proposal) -> Proposal:
    """Withdraw a proposal: it stays on record, struck through, and takes no more opinions."""
    _check_editable(user, proposal)
    proposal.is_withdrawn = True
    _flush_versioned()
    record("proposal.withdrawn", f"Proposal {proposal.id} withdrawn", obj=proposal,
           case_id=proposal.agenda_item.case_id, data={"is_withdrawn": [False, True]},
           actor_id=user.id)
    return proposal


def _check_editable(user: User, proposal: Proposal) -> None:
    if not can_edit_proposal(user, proposal):
        raise ForbiddenError("Only the proposal's author or a coordinator may change it.")
    _require_open(proposal.agenda_item)
    if proposal.is_withdrawn:
        raise InvalidError("This proposal has been withdrawn; it can no longer change.")


def _flush_versioned() -> None:
    """Flush; a concurrent change caught by the version column becomes a ConflictError."""
    try:
        db.session.flush()
    except StaleDataError as exc:
        raise ConflictError(CONFLICT_MESSAGE) from exc


# --- Opinions --------------------------------------------------------------------------

def give_opinion(user: User, proposal: Proposal, *, stance: Stance,
                 comment: str | None) -> Opinion:
    """Record or change a specialist's opinion on a proposal (one per person per proposal)."""
    _require_specialist(user)
    _require_open(proposal.agenda_item)
    if proposal.is_withdrawn:
        raise InvalidError("This proposal has been withdrawn; it takes no more opinions.")
    stance, comment = Stance(stance), _clean(comment)
    if stance == Stance.OBJECT and not comment:
        raise InvalidError("An objection needs a reason.",
                           fields={"comment": "An objection needs a reason: say why you object."})
    opinion = _find_opinion(proposal.id, user.id)
    if opinion is None:
        opinion = _insert_opinion(proposal, user, stance, comment)
        if opinion is not None:
            record("opinion.given", f"Opinion {stance} on proposal {proposal.id}", obj=opinion,
                   case_id=proposal.agenda_item.case_id, data={"stance": [None, stance]},
                   actor_id=user.id)
            return opinion
        # Someone (this person, in another tab) inserted between our read and our
        # insert; the database kept one row, so this becomes a change to it.
        opinion = _find_opinion(proposal.id, user.id)
    return _change_opinion(opinion, user, stance, comment)


def _find_opinion(proposal_id: int, user_id: int) -> Opinion | None:
    return db.session.scalars(
        select(Opinion).where(Opinion.proposal_id == proposal_id, Opinion.user_id == user_id)
        .with_for_update().execution_options(populate_existing=True)).one_or_none()


def _insert_opinion(proposal: Proposal, user: User, stance: Stance,
                    comment: str | None) -> Opinion | None:
    """Insert unless the row exists; None when another transaction inserted it first.

    ``ON CONFLICT DO NOTHING`` waits for a concurrent insert of the same key to
    commit and then does nothing, so the unique constraint is never violated
    and the transaction stays usable (no savepoint, which pysqlite commits on
    release when it opens the transaction).
    """
    insert = postgresql.insert if db.session.get_bind().dialect.name == "postgresql" \
        else sqlite.insert
    now = clock.now()
    statement = insert(Opinion.__table__).values(
        proposal_id=proposal.id, user_id=user.id, discipline=user.discipline, stance=stance,
        comment=comment, created_at=now, updated_at=now,
    ).on_conflict_do_nothing(index_elements=["proposal_id", "user_id"]).returning(
        Opinion.__table__.c.id)
    new_id = db.session.execute(statement).scalar_one_or_none()
    return db.session.get(Opinion, new_id) if new_id is not None else None


def _change_opinion(opinion: Opinion, user: User, stance: Stance,
                    comment: str | None) -> Opinion:
    old_stance = opinion.stance
    diff = changes(opinion, {"stance": stance, "comment": comment,
                             "discipline": user.discipline})
    if diff:
        db.session.flush()
        record("opinion.changed", f"Opinion on proposal {opinion.proposal_id} changed from "
               f"{old_stance} to {stance}", obj=opinion, case_id=opinion.proposal.agenda_item
               .case_id, data={"stance": [old_stance, stance],
                               **{k: v for k, v in diff.items() if k != "stance"}},
               actor_id=user.id)
    return opinion


# --- Consensus -------------------------------------------------------------------------

@dataclass(frozen=True)
class ActionInput:
    description: str | None
    owner_id: int | None = None
    due_on: date | None = None


def dissent_from_objections(item: AgendaItem) -> str:
    """Draft the dissent text from the objections: "Name (discipline), on option: reason"."""
    lines = []
    for proposal in item.proposals:
        if proposal.is_withdrawn:
            continue
        for opinion in proposal.opinions:
            if opinion.stance == Stance.OBJECT:
                lines.append(f"{opinion.user.name} ({opinion.discipline.label}), on "
                             f"{proposal.modality.label}: {opinion.comment}")
    return "\n".join(lines)


def responsible_clinicians() -> list[User]:
    """Active users who hold the clinician role, by name."""
    from mdt.auth.models import UserRole

    return list(db.session.scalars(
        select(User).join(UserRole).where(UserRole.role == Role.CLINICIAN, User.is_active)
        .order_by(User.name)))


def action_owners() -> list[User]:
    """Active users who may own a follow-up action, by name."""
    return list(db.session.scalars(select(User).where(User.is_active).order_by(User.name)))


def check_can_sign(user: User, item: AgendaItem) -> None:
    """Raise unless ``user`` may sign the item's consensus now."""
    if not is_chair(user, item.meeting):
        raise ForbiddenError("Only the meeting's chair signs its consensus.")
    if item.consensus is not None:
        raise ConflictError("This item's consensus has already been signed and cannot be "
                            "signed again. To correct it, add an amendment.")
    if item.meeting.is_cancelled:
        raise InvalidError("The meeting was cancelled; no consensus can be signed for it.")
    if item.status not in (ItemStatus.PENDING, ItemStatus.DISCUSSED):
        raise InvalidError(f"The item is {item.status.label.lower()}; no consensus can be "
                           "signed for it.")
    if not has_started(item.meeting):
        raise InvalidError("The consensus is signed at the meeting: it has not started yet.")


def may_sign(user: User, item: AgendaItem) -> bool:
    """Return True if ``user`` may sign the item's consensus now."""
    try:
        check_can_sign(user, item)
    except DomainError:
        return False
    return True


def sign_consensus(user: User, item: AgendaItem, *, outcome: Outcome,
                   recommendation: str | None = None, reason: str | None = None,
                   adopted_ids: list[int] = (), intent: Intent = Intent.NOT_KNOWN,
                   responsible_clinician_id: int | None = None,
                   actions: list[ActionInput] = (), dissent: str | None = None,
                   non_quorate_reason: str | None = None) -> Consensus:
    """Sign the item's consensus once, with the attendance and quorum at this moment."""
    check_can_sign(user, item)
    outcome = Outcome(outcome)
    recommendation, reason = _clean(recommendation), _clean(reason)
    non_quorate_reason = _clean(non_quorate_reason)
    at_signing = quorum(item.meeting)
    errors = _consensus_errors(item, outcome, recommendation, reason, list(adopted_ids),
                               responsible_clinician_id, list(actions))
    if not at_signing.is_quorate and not non_quorate_reason:
        missing = ", ".join(d.label for d in at_signing.missing_disciplines)
        errors["non_quorate_reason"] = (f"The meeting is not quorate (missing: {missing}); "
                                        "say why the consensus is signed anyway.")
    if errors:
        raise InvalidError("The consensus was not signed: please correct the marked fields.",
                           fields=errors)
    consensus = _build_consensus(user, item, outcome, recommendation, reason, list(adopted_ids),
                                 Intent(intent), responsible_clinician_id, list(actions),
                                 _clean(dissent), at_signing, non_quorate_reason)
    try:
        db.session.flush()
    except IntegrityError as exc:  # another request signed it between our check and flush
        raise ConflictError("This item's consensus has just been signed by another request; "
                            "it cannot be signed twice.") from exc
    _set_item_status(user, item, outcome, reason)
    record("consensus.signed", f"Consensus signed for agenda item {item.id}: {outcome}",
           obj=consensus, case_id=item.case_id,
           data={"outcome": outcome, "intent": consensus.intent, "was_quorate":
                 consensus.was_quorate, "adopted_proposals": sorted(adopted_ids),
                 "actions": len(consensus.actions)}, actor_id=user.id)
    notifications.on_consensus_signed(consensus)
    return consensus


def _consensus_errors(item: AgendaItem, outcome: Outcome, recommendation: str | None,
                      reason: str | None, adopted_ids: list[int],
                      responsible_clinician_id: int | None,
                      actions: list[ActionInput]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if outcome == Outcome.AGREED:
        if not recommendation:
            errors["recommendation"] = "An agreed outcome needs the recommendation."
        if responsible_clinician_id is None:
            errors["responsible_clinician_id"] = "Name the clinician responsible for acting."
    elif not reason:
        errors["reason"] = f"Say why the outcome is \u201c{outcome.label.lower()}\u201d."
    adopted_error = _adopted_error(item, outcome, adopted_ids)
    if adopted_error:
        errors["adopted"] = adopted_error
    if responsible_clinician_id is not None and responsible_clinician_id not in {
            u.id for u in responsible_clinicians()}:
        errors["responsible_clinician_id"] = "Choose an active clinician."
    action_error = _actions_error(actions)
    if action_error:
        errors["actions"] = action_error
    return errors


def _adopted_error(item: AgendaItem, outcome: Outcome, adopted_ids: list[int]) -> str | None:
    if not adopted_ids:
        return None
    if outcome != Outcome.AGREED:
        return "Only an agreed recommendation adopts proposals."
    open_proposals = {p.id: p for p in item.proposals if not p.is_withdrawn}
    if any(pid not in open_proposals for pid in adopted_ids):
        return "Adopt only proposals of this item that have not been withdrawn."
    chosen: dict[str, list[Proposal]] = defaultdict(list)
    for pid in set(adopted_ids):
        key = _group_key(open_proposals[pid].alternative_group)
        if key:
            chosen[key].append(open_proposals[pid])
    clashes = sorted(group[0].alternative_group for group in chosen.values() if len(group) > 1)
    if clashes:
        return ("Choose one of the alternatives in " + ", ".join(f"\u201c{c}\u201d"
                                                                  for c in clashes) + ".")
    return None


def _actions_error(actions: list[ActionInput]) -> str | None:
    owners = {u.id for u in action_owners()}
    for n, action in enumerate(actions, start=1):
        if not _clean(action.description):
            if action.owner_id or action.due_on:
                return f"Action {n}: say what is to be done."
            continue
        if len(action.description) > 500:
            return f"Action {n}: keep it under 500 characters."
        if action.owner_id is not None and action.owner_id not in owners:
            return f"Action {n}: choose an active person as owner."
    return None


def _build_consensus(user: User, item: AgendaItem, outcome: Outcome, recommendation: str | None,
                     reason: str | None, adopted_ids: list[int], intent: Intent,
                     responsible_clinician_id: int | None, actions: list[ActionInput],
                     dissent: str | None, at_signing: meetings.Quorum,
                     non_quorate_reason: str | None) -> Consensus:
    by_id = {p.id: p for p in item.proposals}
    consensus = Consensus(
        agenda_item=item, outcome=outcome, recommendation=recommendation, reason=reason,
        intent=intent, responsible_clinician_id=responsible_clinician_id, dissent=dissent,
        attendees_snapshot=[{"user_id": a.user.id, "name": a.user.name,
                             "discipline": a.user.discipline.value}
                            for a in at_signing.present_attendees],
        was_quorate=at_signing.is_quorate,
        non_quorate_reason=None if at_signing.is_quorate else non_quorate_reason,
        signed_by=user, signed_at=clock.now(),
        adopted_proposals=[by_id[pid] for pid in sorted(set(adopted_ids))],
        actions=[ConsensusAction(description=_clean(a.description), owner_id=a.owner_id,
                                 due_on=a.due_on) for a in actions if _clean(a.description)],
    )
    db.session.add(consensus)
    return consensus


def _set_item_status(user: User, item: AgendaItem, outcome: Outcome,
                     reason: str | None) -> None:
    """Discussed (agreed, no consensus) or deferred (with the reason), as the outcome says."""
    new = ItemStatus.DEFERRED if outcome == Outcome.DEFERRED else ItemStatus.DISCUSSED
    if item.status == ItemStatus.PENDING:
        meetings.set_item_status(item, new, reason if new == ItemStatus.DEFERRED else None)
        return
    # A coordinator already marked it discussed; the chair's outcome has the last word.
    diff = changes(item, {"status": new,
                          "status_reason": reason if new == ItemStatus.DEFERRED else None})
    if diff:
        try:
            db.session.flush()
        except StaleDataError as exc:
            raise ConflictError("The agenda item was changed meanwhile; reload and sign "
                                "again.") from exc
        record(f"agenda_item.{new.value}", f"Agenda item {item.id} {new.value} at signing",
               obj=item, case_id=item.case_id, data=diff, actor_id=user.id)


# --- Amendments ------------------------------------------------------------------------

def add_amendment(user: User, consensus: Consensus, *, reason: str | None,
                  correction: str | None) -> Amendment:
    """Append a correction (why and what) beneath a signed consensus."""
    if not can_amend(user, consensus):
        raise ForbiddenError("Only the meeting's chair or a coordinator may amend a consensus.")
    reason, correction = _clean(reason), _clean(correction)
    errors = {}
    if not reason:
        errors["reason"] = "Say why the record is corrected."
    if not correction:
        errors["correction"] = "Say what the correction is."
    if errors:
        raise InvalidError("The amendment was not added.", fields=errors)
    amendment = Amendment(consensus=consensus, author=user, created_at=clock.now(),
                          reason=reason, correction=correction)
    db.session.add(amendment)
    db.session.flush()
    record("consensus.amended", f"Amendment {amendment.id} added to consensus {consensus.id}",
           obj=amendment, case_id=consensus.agenda_item.case_id,
           data={"consensus_id": consensus.id}, actor_id=user.id)
    notifications.on_amendment_added(amendment)
    return amendment


# --- The consensus report --------------------------------------------------------------

@dataclass
class ReportEntry:
    item: AgendaItem
    consensus: Consensus
    options: list[ProposalGroup]
    quorum_missing: list[str]


@dataclass
class CaseReport:
    case: Case
    entries: list[ReportEntry]
    other_items: list[AgendaItem]


def case_report(user: User, case_id: int) -> CaseReport:
    """Gather every signed consensus of a case and what the referrer needs to act on it."""
    case = db.session.scalars(select(Case).where(Case.id == case_id).options(
        joinedload(Case.patient), joinedload(Case.referring_clinician),
        selectinload(Case.references))).unique().one_or_none()
    if case is None or not can_view_case(user, case):
        raise NotFoundError("No such case.")
    items = db.session.scalars(
        select(AgendaItem).join(AgendaItem.meeting).where(AgendaItem.case_id == case.id)
        .order_by(Meeting.starts_at, AgendaItem.id).options(*_item_options())).unique().all()
    entries, others = [], []
    for item in items:
        if item.consensus is None:
            others.append(item)
            continue
        snapshot = {a["discipline"] for a in item.consensus.attendees_snapshot}
        missing = [Discipline(d).label for d in item.meeting.series.core_disciplines
                   if d not in snapshot]
        entries.append(ReportEntry(item, item.consensus, group_proposals(user, item), missing))
    return CaseReport(case, entries, others)


# --- The guard: signed records never change ---------------------------------------------

_GUARDED = (Consensus, ConsensusAction, Amendment)
_GUARDED_TABLES = {"consensuses", "consensus_actions", "amendments", "consensus_proposals"}
#: Attributes that may change on a persistent guarded row: appending an
#: amendment touches the consensus's ``amendments`` collection.
_APPEND_ONLY = {"amendments"}


def _changed_attributes(obj: Any) -> list[str]:
    state = sa.inspect(obj)
    return [attr.key for attr in state.attrs
            if attr.key not in _APPEND_ONLY and attr.history.has_changes()]


def _joins_signed_consensus(session: Session, action: ConsensusAction) -> bool:
    parent = action.consensus
    if parent is not None:
        return parent not in session.new
    return action.consensus_id is not None


@event.listens_for(Session, "before_flush")
def _refuse_changes_to_signed_records(session: Session, _context, _instances) -> None:
    """Refuse any update or delete of a signed consensus, its actions or amendments."""
    for obj in session.deleted:
        if isinstance(obj, _GUARDED):
            raise ImmutableError(SIGNED_MESSAGE)
    for obj in session.dirty:
        if isinstance(obj, _GUARDED) and _changed_attributes(obj):
            raise ImmutableError(SIGNED_MESSAGE)
    for obj in session.new:
        if isinstance(obj, ConsensusAction) and _joins_signed_consensus(session, obj):
            raise ImmutableError(SIGNED_MESSAGE)


@event.listens_for(Session, "do_orm_execute")
def _refuse_bulk_changes_to_signed_records(state) -> None:
    """Refuse UPDATE/DELETE statements (and late INSERTs of links) on signed records."""
    if not (state.is_update or state.is_delete or state.is_insert):
        return
    table = getattr(state.statement, "table", None)
    name = getattr(table, "name", None)
    if state.is_insert and name not in {"consensus_proposals", "consensus_actions"}:
        return
    if name in _GUARDED_TABLES:
        raise ImmutableError(SIGNED_MESSAGE)
