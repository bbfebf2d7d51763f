"""Fictional demo data for ``make run``. Every person and patient here is invented.

The data is built through the same services the screens use (so it carries
audit entries and notification rows), with the application clock set back
to play out one past meeting: cases referred, proposals and opinions given,
presence recorded, one consensus signed and one case carried over to the
next meeting. The upcoming meeting then has cases waiting for opinions.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, time, timedelta

from sqlalchemy import select

from mdt import clock
from mdt.auth import services as users
from mdt.auth.models import Discipline, Role, User
from mdt.auth.passwords import hash_password
from mdt.cases import services as cases
from mdt.cases.models import Case, MarkerStatus, ReferenceKind, Sex
from mdt.decisions import services as decisions
from mdt.decisions.models import Intent, Modality, Outcome, Stance
from mdt.extensions import db
from mdt.meetings import services as meetings
from mdt.meetings.models import Meeting, Presence, Triage

DEMO_PASSWORD = "demo-password-1"

PEOPLE = [
    ("admin@demo.mdt", "Alex Admin", Discipline.OTHER, [Role.ADMIN]),
    ("coordinator@demo.mdt", "Chen Jing", Discipline.NURSING, [Role.COORDINATOR]),
    ("medonc@demo.mdt", "Dr Liu Yang", Discipline.MEDICAL_ONCOLOGY,
     [Role.SPECIALIST, Role.CLINICIAN]),
    ("radonc@demo.mdt", "Dr Li Wei", Discipline.RADIATION_ONCOLOGY, [Role.SPECIALIST]),
    ("ortho@demo.mdt", "Dr Zhang Min", Discipline.ORTHOPAEDICS, [Role.SPECIALIST]),
    ("ir@demo.mdt", "Dr Wang Fang", Discipline.INTERVENTIONAL_RADIOLOGY, [Role.SPECIALIST]),
    ("radiology@demo.mdt", "Dr Zhao Lei", Discipline.RADIOLOGY, [Role.SPECIALIST]),
    ("pathology@demo.mdt", "Dr Huang Ying", Discipline.PATHOLOGY, [Role.SPECIALIST]),
    ("palliative@demo.mdt", "Dr Xu Ping", Discipline.PALLIATIVE_CARE, [Role.SPECIALIST]),
    ("clinician@demo.mdt", "Dr Sun Hui", Discipline.MEDICAL_ONCOLOGY, [Role.CLINICIAN]),
    ("nurse@demo.mdt", "Ma Li", Discipline.NURSING, [Role.CLINICIAN]),
]
ROLE_NOTES = {
    "medonc@demo.mdt": "chairs the Bone metastasis MDT",
    "clinician@demo.mdt": "refers cases, reads the consensus",
}


@dataclass
class Team:
    by_email: dict[str, User]

    def __getitem__(self, key: str) -> User:
        return self.by_email[f"{key}@demo.mdt"]


def load() -> bool:
    """Create the demo records once; return False if they already exist."""
    if db.session.scalar(select(User.id).where(User.email == PEOPLE[0][0])) is not None:
        return False
    team = _people()
    real_now = clock.now()
    with clock.frozen(real_now - timedelta(days=9)):
        series = meetings.create_series(
            name="Bone metastasis MDT", weekday=3, start_time=time(14, 0),
            time_zone="Asia/Shanghai", duration_minutes=90,
            location="Radiotherapy building, seminar room 2",
            video_url="https://meet.example.org/bone-mdt", default_chair_id=team["medonc"].id,
            actor=None)
    db.session.flush()
    past, upcoming = _first_two_meetings(series, real_now)
    _past_meeting(team, past, upcoming)
    _upcoming_meeting(team, upcoming)
    db.session.commit()
    return True


def _people() -> Team:
    by_email = {}
    shared_hash = hash_password(DEMO_PASSWORD)
    for email, name, discipline, roles in PEOPLE:
        by_email[email] = users.create_user(actor=None, email=email, name=name,
                                            discipline=discipline,
                                            roles=roles, password_hash=shared_hash)
    return Team(by_email)


def _first_two_meetings(series, now) -> tuple[Meeting, Meeting]:
    rows = list(db.session.scalars(
        select(Meeting).where(Meeting.series_id == series.id).order_by(Meeting.starts_at)))
    past = [m for m in rows if m.ends_at < now]
    future = [m for m in rows if m.starts_at > now]
    return past[-1], future[0]


def _refer(referrer: User, *, number: str, name: str, born: date, sex: Sex, imaging: list,
           **values) -> Case:
    patient = cases.PatientInput(hospital_number=number, name=name, date_of_birth=born, sex=sex)
    case = cases.create_case(patient=patient, values=values, actor=referrer)
    for kind, accession, performed_on, description in imaging:
        cases.add_reference(case, kind=kind, accession_number=accession,
                            performed_on=performed_on, description=description, actor=referrer)
    return case


def _past_meeting(team: Team, meeting: Meeting, upcoming: Meeting) -> None:
    """Play out last week's meeting: one consensus signed, one case not reached."""
    with clock.frozen(meeting.starts_at - timedelta(days=4)):
        today = clock.now().date()
        meetings.invite_core_team(meeting, actor=None)
        egfr = _refer(
            team["clinician"], number="DEMO-100231", name="Zhou Mei", born=date(1961, 3, 12),
            sex=Sex.FEMALE, primary_site="Lung", histology="Adenocarcinoma", stage="IVB",
            egfr_status=MarkerStatus.POSITIVE, egfr_variant="exon 19 deletion",
            alk_status=MarkerStatus.NEGATIVE, ros1_status=MarkerStatus.NEGATIVE,
            kras_status=MarkerStatus.NEGATIVE, pdl1_tps=5, ecog=1,
            systemic_therapy="Osimertinib", therapy_line=1,
            question="New painful T7 lesion while all other disease is stable on osimertinib "
                     "(oligoprogression). SBRT to T7 and continue osimertinib? "
                     "Bone-protective agent?",
            clinical_summary="Diagnosed 14 months ago with bone-only metastatic disease. Restaging "
                             "PET-CT: a single enlarging lytic T7 lesion, other lesions stable. "
                             "Pain 6/10 on movement, no neurological deficit. Creatinine clearance "
                             "normal. Dental review not yet done.",
            imaging=[(ReferenceKind.IMAGING, "MR-5521843", today - timedelta(days=6),
                      "MRI whole spine: lytic T7 lesion, no epidural extension"),
                     (ReferenceKind.IMAGING, "PET-3379120", today - timedelta(days=9),
                      "FDG PET-CT restaging"),
                     (ReferenceKind.PATHOLOGY, "PA-22-08812", today - timedelta(days=430),
                      "Lung biopsy: adenocarcinoma, EGFR exon 19 deletion")])
        alk = _refer(
            team["medonc"], number="DEMO-100587", name="Wu Gang", born=date(1968, 11, 2),
            sex=Sex.MALE, histology="Adenocarcinoma", stage="IVB",
            egfr_status=MarkerStatus.NEGATIVE, alk_status=MarkerStatus.POSITIVE,
            ros1_status=MarkerStatus.NEGATIVE, ecog=1, systemic_therapy="Alectinib",
            therapy_line=1,
            question="Painful lytic L2 lesion with posterior wall involvement: cementoplasty "
                     "before SBRT, or SBRT alone?",
            clinical_summary="Back pain on loading for three weeks despite analgesia. "
                             "No neurological signs.",
            imaging=[(ReferenceKind.IMAGING, "CT-7740115", today - timedelta(days=3),
                      "CT lumbar spine: lytic L2 lesion, posterior wall involved")])
        first = meetings.add_item(meeting, egfr, actor=team["coordinator"], minutes_allotted=15,
                                  presenter_id=team["clinician"].id)
        second = meetings.add_item(meeting, alk, actor=team["coordinator"], minutes_allotted=15,
                                   presenter_id=team["medonc"].id)
        meetings.triage_item(first, Triage.FOR_DISCUSSION, actor=None)
        meetings.triage_item(second, Triage.FOR_DISCUSSION, actor=None)
        sbrt = decisions.create_proposal(
            team["radonc"], first, modality=Modality.SBRT, details="24 Gy in 2 fractions to T7",
            rationale="Painful spinal lesion; oligoprogression while the rest of the disease "
                      "is controlled on osimertinib.")
        deno = decisions.create_proposal(
            team["medonc"], first, modality=Modality.DENOSUMAB,
            details="120 mg subcutaneously every 4 weeks, with calcium and vitamin D",
            rationale="Bone-protective agent; no renal dose adjustment needed.",
            alternative_group="Bone-protective agent")
        zol = decisions.create_proposal(
            team["medonc"], first, modality=Modality.ZOLEDRONIC_ACID,
            details="4 mg IV every 3–4 weeks, dose by creatinine clearance",
            rationale="Alternative bone-protective agent.",
            alternative_group="Bone-protective agent")
        cement = decisions.create_proposal(
            team["ir"], second, modality=Modality.CEMENTOPLASTY, details="L2 vertebroplasty",
            rationale="Mechanical pain; posterior wall involvement needs an experienced team "
                      "and combined radiotherapy.")
        for who in ("ortho", "ir", "medonc"):
            decisions.give_opinion(team[who], sbrt, stance=Stance.SUPPORT, comment=None)
        decisions.give_opinion(team["ortho"], deno, stance=Stance.SUPPORT, comment=None)
        decisions.give_opinion(team["radonc"], deno, stance=Stance.SUPPORT, comment=None)
        decisions.give_opinion(team["ir"], zol, stance=Stance.ABSTAIN, comment=None)
        decisions.give_opinion(team["ortho"], cement, stance=Stance.OBJECT,
                               comment="Posterior wall involved: I would like a CT review of "
                                       "the canal before any cement.")
    with clock.frozen(meeting.starts_at + timedelta(minutes=40)):
        for attendance in meeting.attendances:
            meetings.record_presence(attendance, team["coordinator"], Presence.PRESENT)
        db.session.flush()
        decisions.sign_consensus(
            team["medonc"], first, decisions.ConsensusInput(outcome=Outcome.AGREED,
            recommendation="SBRT 24 Gy in 2 fractions to T7; continue osimertinib. Start "
                           "denosumab after dental review. Re-image in 3 months.",
            adopted_ids=[sbrt.id, deno.id], intent=Intent.PALLIATIVE,
            responsible_clinician_id=team["clinician"].id,
            actions=[decisions.ActionInput("Book SBRT planning CT", team["radonc"].id,
                                           clock.now().date() + timedelta(days=5)),
                     decisions.ActionInput("Dental review before denosumab",
                                           team["clinician"].id,
                                           clock.now().date() + timedelta(days=14))]))
    with clock.frozen(meeting.ends_at + timedelta(minutes=10)):
        meetings.carry_over(second, actor=team["coordinator"])


def _upcoming_meeting(team: Team, meeting: Meeting) -> None:
    """Next week's meeting: cases on the agenda, opinions still awaited."""
    today = clock.now().date()
    meetings.invite_core_team(meeting, actor=None)
    for who in ("radiology", "palliative"):
        meetings.invite(meeting, team[who], actor=None)
    femur = _refer(
        team["clinician"], number="DEMO-101344", name="Qian Jun", born=date(1955, 7, 21),
        sex=Sex.MALE, histology="Squamous cell carcinoma", stage="IVA",
        egfr_status=MarkerStatus.NOT_TESTED, pdl1_tps=80, ecog=1,
        systemic_therapy="Pembrolizumab", therapy_line=1,
        question="Lytic lesion of the right proximal femur with pain on weight-bearing: "
                 "prophylactic fixation before radiotherapy?",
        clinical_summary="Walking with a stick. Lesion destroys about two thirds of the cortex "
                         "on CT. Responding elsewhere on pembrolizumab.",
        imaging=[(ReferenceKind.IMAGING, "XR-9911023", today - timedelta(days=2),
                  "X-ray right femur"),
                 (ReferenceKind.IMAGING, "CT-9911077", today - timedelta(days=1),
                  "CT right femur: lytic peritrochanteric lesion")])
    rib = _refer(
        team["medonc"], number="DEMO-101502", name="Feng Lan", born=date(1963, 1, 30),
        sex=Sex.FEMALE, histology="Adenocarcinoma", stage="IVB", ecog=0,
        egfr_status=MarkerStatus.NEGATIVE, alk_status=MarkerStatus.NEGATIVE,
        kras_status=MarkerStatus.POSITIVE, kras_variant="G12C",
        systemic_therapy="Carboplatin–pemetrexed–pembrolizumab", therapy_line=1,
        question="Single painful left rib lesion: palliative radiotherapy per local protocol.",
        imaging=[(ReferenceKind.IMAGING, "CT-9920451", today - timedelta(days=4),
                  "CT chest: lytic left 7th rib lesion")])
    _refer(team["nurse"], number="DEMO-101760", name="Tang Hua", born=date(1959, 9, 9),
           sex=Sex.FEMALE, histology="Adenocarcinoma", stage="IVB",
           kras_status=MarkerStatus.POSITIVE, kras_variant="G12C",
           question="Several new bone lesions on bone scan: bone-protective therapy, and "
                    "radiotherapy to the symptomatic ones?",
           imaging=[])
    femur_item = meetings.add_item(meeting, femur, actor=team["coordinator"], minutes_allotted=15,
                                   presenter_id=team["ortho"].id)
    rib_item = meetings.add_item(meeting, rib, actor=team["coordinator"], minutes_allotted=5)
    meetings.triage_item(femur_item, Triage.FOR_DISCUSSION, actor=None)
    meetings.triage_item(rib_item, Triage.STANDARD_OF_CARE, actor=None)
    fixation = decisions.create_proposal(
        team["ortho"], femur_item, modality=Modality.SURGERY,
        details="Prophylactic intramedullary fixation of the right femur",
        rationale="Impending fracture risk in a weight-bearing bone (Mirels to be scored at "
                  "the meeting).")
    decisions.create_proposal(
        team["radonc"], femur_item, modality=Modality.CONVENTIONAL_RT,
        details="Post-operative radiotherapy to the fixed femur",
        rationale="Radiotherapy after fixation.")
    decisions.give_opinion(team["medonc"], fixation, stance=Stance.SUPPORT, comment=None)


def sign_in_help() -> str:
    """Return the demo sign-ins as printable lines."""
    lines = [f"Demo sign-ins (password for all: {DEMO_PASSWORD}):"]
    for email, name, _discipline, roles in PEOPLE:
        note = ROLE_NOTES.get(email, "")
        role_list = ", ".join(r.value for r in roles)
        lines.append(f"  {email:<24} {role_list:<22} {name}{'  (' + note + ')' if note else ''}")
    return "\n".join(lines)
