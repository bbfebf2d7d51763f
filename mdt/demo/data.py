"""Fictional demo people and records. Every name here is invented."""
from __future__ import annotations

from sqlalchemy import select

from mdt.auth import services as users
from mdt.auth.models import Discipline, Role, User
from mdt.extensions import db

DEMO_PASSWORD = "demo-password-1"

PEOPLE = [
    ("admin@demo.mdt", "Alex Admin", Discipline.OTHER, [Role.ADMIN]),
    ("coordinator@demo.mdt", "Chen Jing (MDT coordinator)", Discipline.NURSING, [Role.COORDINATOR]),
    ("radonc@demo.mdt", "Dr Li Wei", Discipline.RADIATION_ONCOLOGY, [Role.SPECIALIST]),
    ("ortho@demo.mdt", "Dr Zhang Min", Discipline.ORTHOPAEDICS, [Role.SPECIALIST]),
    ("ir@demo.mdt", "Dr Wang Fang", Discipline.INTERVENTIONAL_RADIOLOGY, [Role.SPECIALIST]),
    ("medonc@demo.mdt", "Dr Liu Yang", Discipline.MEDICAL_ONCOLOGY, [Role.SPECIALIST, Role.CLINICIAN]),
    ("radiology@demo.mdt", "Dr Zhao Lei", Discipline.RADIOLOGY, [Role.SPECIALIST]),
    ("clinician@demo.mdt", "Dr Sun Hui", Discipline.MEDICAL_ONCOLOGY, [Role.CLINICIAN]),
]


def load() -> bool:
    """Create the demo records once; return False if they already exist."""
    if db.session.scalar(select(User).where(User.email == PEOPLE[0][0])) is not None:
        return False
    for email, name, discipline, roles in PEOPLE:
        users.create_user(email=email, name=name, discipline=discipline, roles=roles,
                          password=DEMO_PASSWORD)
    db.session.commit()
    return True


def sign_in_help() -> str:
    lines = [f"Demo sign-ins (password for all: {DEMO_PASSWORD}):"]
    lines += [f"  {email:<24} {', '.join(r.value for r in roles):<24} {name}"
              for email, name, _d, roles in PEOPLE]
    return "\n".join(lines)
