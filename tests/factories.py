"""Callable factories for tests (Indico style): ``make.user(roles=[...])``.

They build rows directly (fast, no audit entries) and commit, so the
request under test, which has its own session, sees them. Tests of a
service call the service itself.
"""
from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta

from mdt import clock
from mdt.auth.models import Discipline, Role, User, UserRole
from mdt.auth.passwords import hash_password
from mdt.cases.models import Case, CaseReference, Patient, ReferenceKind, Sex
from mdt.decisions.models import Modality, Opinion, Proposal, Stance
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    Meeting,
    MeetingSeries,
    Presence,
    Response,
    Triage,
)

PASSWORD = "correct horse battery"
_PASSWORD_HASH = hash_password(PASSWORD)  # hashed once: Argon2 is slow by design
_seq = itertools.count(1)


def _save(obj):
    db.session.add(obj)
    db.session.commit()
    return obj


class Factories:
    def user(self, *, roles=(Role.SPECIALIST,), discipline=Discipline.RADIATION_ONCOLOGY,
             name=None, email=None, is_active=True, **extra) -> User:
        n = next(_seq)
        user = User(email=(email or f"user{n}@example.org").lower(), name=name or f"Person {n}",
                    discipline=Discipline(discipline), password_hash=_PASSWORD_HASH,
                    is_active=is_active, **extra)
        user.role_rows = [UserRole(role=Role(r)) for r in roles]
        return _save(user)

    def coordinator(self, **kw) -> User:
        return self.user(roles=(Role.COORDINATOR,), discipline=Discipline.NURSING, **kw)

    def clinician(self, **kw) -> User:
        kw.setdefault("discipline", Discipline.MEDICAL_ONCOLOGY)
        return self.user(roles=(Role.CLINICIAN,), **kw)

    def admin(self, **kw) -> User:
        return self.user(roles=(Role.ADMIN,), discipline=Discipline.OTHER, **kw)

    def specialist(self, discipline=Discipline.RADIATION_ONCOLOGY, **kw) -> User:
        return self.user(roles=(Role.SPECIALIST,), discipline=discipline, **kw)

    def core_team(self) -> dict[Discipline, User]:
        """One specialist of each default core discipline."""
        return {d: self.specialist(discipline=d) for d in (
            Discipline.RADIATION_ONCOLOGY, Discipline.ORTHOPAEDICS,
            Discipline.INTERVENTIONAL_RADIOLOGY, Discipline.MEDICAL_ONCOLOGY)}

    def patient(self, **kw) -> Patient:
        n = next(_seq)
        values = dict(hospital_number=f"H{n:07d}", name=f"Test Patient {n}",
                      date_of_birth=date(1960, 5, 17), sex=Sex.FEMALE)
        values.update(kw)
        return _save(Patient(**values))

    def case(self, *, patient=None, referrer=None, ready=True, **kw) -> Case:
        values = dict(
            patient=patient or self.patient(),
            referring_clinician=referrer or self.clinician(),
            histology="Adenocarcinoma", stage="IVB",
            question="SBRT to the painful T7 lesion, or cementoplasty first?",
            ecog=1 if ready else None,
        )
        values.update(kw)
        case = _save(Case(**values))
        if ready:
            self.reference(case)
        return case

    def reference(self, case, kind=ReferenceKind.IMAGING, **kw) -> CaseReference:
        values = dict(case=case, kind=kind, accession_number=f"ACC{next(_seq)}",
                      performed_on=date(2026, 11, 1), description="MRI whole spine")
        values.update(kw)
        return _save(CaseReference(**values))

    def series(self, *, chair=None, **kw) -> MeetingSeries:
        values = dict(name="Bone metastasis MDT", weekday=3, start_time=time(14, 0),
                      time_zone="Asia/Shanghai", duration_minutes=90, location="Room 3",
                      default_chair=chair)
        values.update(kw)
        return _save(MeetingSeries(**values))

    def meeting(self, *, series=None, starts_at=None, chair=None, **kw) -> Meeting:
        series = series or self.series(chair=chair)
        starts_at = starts_at or (clock.now() + timedelta(days=3)).replace(microsecond=0)
        values = dict(series=series, starts_at=starts_at, occurrence_date=starts_at.date(),
                      duration_minutes=series.duration_minutes, time_zone=series.time_zone,
                      location=series.location, chair=chair or series.default_chair)
        values.update(kw)
        return _save(Meeting(**values))

    def item(self, *, meeting=None, case=None, position=None, triage=Triage.FOR_DISCUSSION,
             **kw) -> AgendaItem:
        meeting = meeting or self.meeting()
        if position is None:
            position = len(meeting.items) + 1
        values = dict(meeting=meeting, case=case or self.case(), position=position, triage=triage)
        values.update(kw)
        return _save(AgendaItem(**values))

    def attendance(self, meeting, user, *, present=True, **kw) -> Attendance:
        values = dict(meeting=meeting, user=user, response=Response.ACCEPTED,
                      presence=Presence.PRESENT if present else Presence.UNKNOWN)
        values.update(kw)
        return _save(Attendance(**values))

    def proposal(self, *, item=None, author=None, modality=Modality.SBRT, **kw) -> Proposal:
        values = dict(agenda_item=item or self.item(), author=author or self.specialist(),
                      modality=modality, details="24 Gy in 2 fractions", rationale="Painful lesion")
        values.update(kw)
        return _save(Proposal(**values))

    def opinion(self, proposal, user, stance=Stance.SUPPORT, comment=None) -> Opinion:
        return _save(Opinion(proposal=proposal, user=user, discipline=user.discipline,
                             stance=stance, comment=comment))


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)
