"""A ready-made MDT scene for the decisions tests (meeting, chair, team, case, item)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from mdt import clock
from mdt.auth.models import Discipline, Role, User
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
