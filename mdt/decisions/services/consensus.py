"""The consensus: the chair signs it once, with the attendance and quorum at that moment."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from mdt import clock
from mdt.audit.services import changes, record
from mdt.auth.models import Role, User
from mdt.db import flush_or_conflict
from mdt.decisions.models import (
    Amendment,
    Consensus,
    ConsensusAction,
    Intent,
    Outcome,
    Proposal,
    Stance,
)
from mdt.decisions.services.proposals import clean, group_key
from mdt.decisions.services.visibility import check_can_amend
from mdt.errors import (
    ConflictError,
    DomainError,
    ForbiddenError,
    InvalidError,
)
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.models import AgendaItem, ItemStatus
from mdt.meetings.services import Quorum, has_started, is_chair, quorum
from mdt.notifications import services as notifications


@dataclass(frozen=True)
class ActionInput:
    """One follow-up action as typed: what, who owns it, by when."""

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


def can_sign(user: User, item: AgendaItem) -> bool:
    """Return True if ``user`` may sign the item's consensus now."""
    try:
        check_can_sign(user, item)
    except DomainError:
        return False
    return True


@dataclass(frozen=True)
class ConsensusInput:
    """What the chair records when signing: the form's fields, cleaned by ``cleaned()``."""

    outcome: Outcome | str
    recommendation: str | None = None
    reason: str | None = None
    adopted_ids: Sequence[int] = ()
    intent: Intent | str = Intent.NOT_KNOWN
    responsible_clinician_id: int | None = None
    actions: Sequence[ActionInput] = ()
    dissent: str | None = None
    non_quorate_reason: str | None = None

    def cleaned(self) -> ConsensusInput:
        """Return a copy with enums parsed, blank texts as None and sorted, unique proposal ids."""
        return replace(self, outcome=Outcome(self.outcome), intent=Intent(self.intent),
                       recommendation=clean(self.recommendation), reason=clean(self.reason),
                       dissent=clean(self.dissent),
                       non_quorate_reason=clean(self.non_quorate_reason),
                       adopted_ids=sorted(set(self.adopted_ids)), actions=list(self.actions))


def sign_consensus(user: User, item: AgendaItem, decision: ConsensusInput) -> Consensus:
    """Sign the item's consensus once, with the attendance and quorum at this moment.

    The meeting's row is held first, so that signing and cancelling or
    re-dating the meeting (refused once something is signed) never cross.
    """
    meetings.lock_meeting(item.meeting)
    check_can_sign(user, item)
    decision = decision.cleaned()
    at_signing = quorum(item.meeting)
    errors = _consensus_errors(item, decision)
    if not at_signing.is_quorate and not decision.non_quorate_reason:
        missing = ", ".join(d.label for d in at_signing.missing_disciplines)
        errors["non_quorate_reason"] = (f"The meeting is not quorate (missing: {missing}); "
                                        "say why the consensus is signed anyway.")
    if errors:
        raise InvalidError("The consensus was not signed: please correct the marked fields.",
                           fields=errors)
    consensus = _build_consensus(user, item, decision, at_signing)
    try:
        db.session.flush()
    except IntegrityError as exc:  # another request signed it between our check and flush
        raise ConflictError("This item's consensus has just been signed by another request; "
                            "it cannot be signed twice.") from exc
    _set_item_status(user, item, Outcome(decision.outcome), decision.reason)
    record("consensus.signed", f"Consensus signed for agenda item {item.id}: {decision.outcome}",
           actor=user, obj=consensus, case_id=item.case_id,
           data={"outcome": decision.outcome, "intent": consensus.intent,
                 "was_quorate": consensus.was_quorate,
                 "adopted_proposals": list(decision.adopted_ids),
                 "actions": len(consensus.actions)})
    notifications.on_consensus_signed(consensus)
    return consensus


def _consensus_errors(item: AgendaItem, decision: ConsensusInput) -> dict[str, str]:
    errors: dict[str, str] = {}
    outcome = Outcome(decision.outcome)
    if outcome == Outcome.AGREED:
        if not decision.recommendation:
            errors["recommendation"] = "An agreed outcome needs the recommendation."
        if decision.responsible_clinician_id is None:
            errors["responsible_clinician_id"] = "Name the clinician responsible for acting."
    elif not decision.reason:
        errors["reason"] = f"Say why the outcome is \u201c{outcome.label.lower()}\u201d."
    adopted_error = _adopted_error(item, outcome, list(decision.adopted_ids))
    if adopted_error:
        errors["adopted"] = adopted_error
    if decision.responsible_clinician_id is not None and decision.responsible_clinician_id \
            not in {u.id for u in responsible_clinicians()}:
        errors["responsible_clinician_id"] = "Choose an active clinician."
    action_error = _actions_error(list(decision.actions))
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
        key = group_key(open_proposals[pid].alternative_group)
        if key:
            chosen[key].append(open_proposals[pid])
    clashes = sorted(str(group[0].alternative_group) for group in chosen.values()
                     if len(group) > 1)
    if clashes:
        return ("Choose one of the alternatives in " + ", ".join(f"\u201c{c}\u201d"
                                                                  for c in clashes) + ".")
    return None


def _actions_error(actions: list[ActionInput]) -> str | None:
    owners = {u.id for u in action_owners()}
    for n, action in enumerate(actions, start=1):
        if not clean(action.description):
            if action.owner_id or action.due_on:
                return f"Action {n}: say what is to be done."
            continue
        if len(action.description or "") > 500:
            return f"Action {n}: keep it under 500 characters."
        if action.owner_id is not None and action.owner_id not in owners:
            return f"Action {n}: choose an active person as owner."
    return None


def _build_consensus(user: User, item: AgendaItem, decision: ConsensusInput,
                     at_signing: Quorum) -> Consensus:
    by_id = {p.id: p for p in item.proposals}
    consensus = Consensus(
        agenda_item=item, outcome=decision.outcome, recommendation=decision.recommendation,
        reason=decision.reason, intent=decision.intent,
        responsible_clinician_id=decision.responsible_clinician_id, dissent=decision.dissent,
        attendees_snapshot=[{"user_id": a.user.id, "name": a.user.name,
                             "discipline": a.user.discipline.value}
                            for a in at_signing.present_attendees],
        was_quorate=at_signing.is_quorate,
        non_quorate_reason=None if at_signing.is_quorate else decision.non_quorate_reason,
        signed_by=user, signed_by_name=user.name, signed_by_discipline=user.discipline,
        signed_at=clock.now(),
        adopted_proposals=[by_id[pid] for pid in decision.adopted_ids],
        actions=[ConsensusAction(description=clean(a.description), owner_id=a.owner_id,
                                 due_on=a.due_on) for a in decision.actions
                 if clean(a.description)],
    )
    db.session.add(consensus)
    return consensus


def _set_item_status(user: User, item: AgendaItem, outcome: Outcome,
                     reason: str | None) -> None:
    """Discussed (agreed, no consensus) or deferred (with the reason), as the outcome says."""
    new = ItemStatus.DEFERRED if outcome == Outcome.DEFERRED else ItemStatus.DISCUSSED
    if item.status == ItemStatus.PENDING:
        meetings.set_item_status(item, new, reason if new == ItemStatus.DEFERRED else None,
                                 actor=user)
        return
    # A coordinator already marked it discussed; the chair's outcome has the last word.
    diff = changes(item, {"status": new,
                          "status_reason": reason if new == ItemStatus.DEFERRED else None})
    if diff:
        flush_or_conflict("The agenda item was changed meanwhile; reload and sign again.")
        record(f"agenda_item.{new.value}", f"Agenda item {item.id} {new.value} at signing",
               obj=item, case_id=item.case_id, data=diff, actor=user)


def add_amendment(user: User, consensus: Consensus, *, reason: str | None,
                  correction: str | None) -> Amendment:
    """Append a correction (why and what) beneath a signed consensus."""
    check_can_amend(user, consensus)
    reason, correction = clean(reason), clean(correction)
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
           data={"consensus_id": consensus.id}, actor=user)
    notifications.on_amendment_added(amendment)
    return amendment
