"""Pages not covered by their feature's tests load in a fixed number of queries."""
from __future__ import annotations

from datetime import timedelta

from mdt import clock
from mdt.auth.models import Discipline


def test_signing_page_queries_do_not_grow_with_attendees(client, make, login_as, count_queries,
                                                         frozen_clock):
    chair = make.specialist(discipline=Discipline.MEDICAL_ONCOLOGY)
    meeting = make.meeting(chair=chair, starts_at=clock.now() - timedelta(minutes=10))
    item = make.item(meeting=meeting)
    make.proposal(item=item)
    login_as(chair)
    make.attendance(meeting, chair)

    def page():
        with count_queries() as queries:
            response = client.get(f"/items/{item.id}/consensus")
        assert response.status_code == 200
        return len(queries)

    few = page()
    for discipline in list(Discipline) * 2:
        make.attendance(meeting, make.specialist(discipline=discipline))
    assert page() == few
