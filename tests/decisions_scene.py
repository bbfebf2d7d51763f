"""A ready-made MDT scene for the decisions tests (meeting, chair, team, case, item)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from mdt import clock
from mdt.auth.models import Discipline, Role, User
from mdt.decisions.models import Intent, Modality, Outcome, Stance
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, Meeting


@dataclass
class Scene:
    meeting: Meeting
    item: AgendaItem
    chair: User
    team: dict[Discipline, User]
    referrer: User
    coordinator: User
    admin: User
    other_clinician: User
    #: Set by ``sign_agreed``: the consensus, its adopted and its other proposal.
    consensus: Any = None
    consensus_id: int | None = None
    adopted: Any = None
    other: Any = None

    @property
    def radonc(self) -> User:
        return self.team[Discipline.RADIATION_ONCOLOGY]

    @property
    def ortho(self) -> User:
        return self.team[Discipline.ORTHOPAEDICS]

    @property
    def medonc(self) -> User:
        return self.team[Discipline.MEDICAL_ONCOLOGY]


def build_scene(make, *, started: bool = False, present: bool = True) -> Scene:
    """A meeting (future, or started an hour ago) with its core team, a chair and one case."""
    chair = make.user(roles=(Role.SPECIALIST,), discipline=Discipline.RADIOLOGY,
                      name="Chair Person")
    starts_at = (clock.now() + (timedelta(hours=-1) if started else timedelta(days=3))).replace(
        microsecond=0)
    meeting = make.meeting(chair=chair, starts_at=starts_at)
    team = make.core_team()
    if present:
        for user in [chair, *team.values()]:
            make.attendance(meeting, user)
    referrer = make.clinician(name="Referring Doctor")
    item = make.item(meeting=meeting, case=make.case(referrer=referrer))
    return Scene(meeting=meeting, item=item, chair=chair, team=team, referrer=referrer,
                 coordinator=make.coordinator(), admin=make.admin(),
                 other_clinician=make.clinician(name="Other Doctor"))


def sign_agreed(make) -> Scene:
    """A started scene whose item has a signed, agreed consensus with one action and one
    adopted proposal (SBRT) beside one that was not adopted (cementoplasty)."""
    from mdt.decisions import services

    s = build_scene(make, started=True)
    s.adopted = make.proposal(item=s.item, author=s.radonc)
    s.other = make.proposal(item=s.item, author=s.ortho, modality=Modality.CEMENTOPLASTY)
    make.opinion(s.adopted, s.ortho, Stance.SUPPORT)
    s.consensus = services.sign_consensus(
        s.chair, s.item,
        services.ConsensusInput(outcome=Outcome.AGREED, recommendation="SBRT to T7",
                                intent=Intent.PALLIATIVE, responsible_clinician_id=s.referrer.id,
                                adopted_ids=[s.adopted.id],
                                actions=[services.ActionInput("Book planning CT", s.radonc.id,
                                                              date(2026, 12, 4))]))
    db.session.commit()
    s.consensus_id = s.consensus.id
    return s
