"""Meeting pages through the test client: series, meetings, agenda, attendance."""
from __future__ import annotations

from datetime import time, timedelta

from sqlalchemy import select

from mdt.audit.models import AuditEntry
from mdt.auth.models import Discipline
from mdt.extensions import db
from mdt.meetings.models import (
    AgendaItem,
    Attendance,
    ItemStatus,
    Meeting,
    MeetingSeries,
    MeetingStatus,
    Presence,
    Response,
    Triage,
)

from .factories import utc

NOW = utc(2026, 11, 2, 2, 0)  # Monday 10:00 in Shanghai


def test_smoke_detail(client, make, login_as, frozen_clock):
    frozen_clock(NOW)
    coordinator = make.coordinator()
    meeting = make.meeting(starts_at=NOW + timedelta(days=3))
    make.item(meeting=meeting)
    make.attendance(meeting, make.specialist())
    login_as(coordinator)
    response = client.get(f"/meetings/{meeting.id}")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert client.get("/meetings").status_code == 200
    assert client.get("/series").status_code == 200
    assert client.get("/series/new").status_code == 200
    assert client.get(f"/meetings/{meeting.id}/edit").status_code == 200
    assert client.get(f"/meetings/{meeting.id}/items/new").status_code == 200
