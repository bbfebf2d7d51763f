"""The whole MDT flow, through the pages, ending with a real worker sending the reminder.

Coordinator schedules the meeting → clinician refers a case → coordinator
puts it on the agenda → two specialists propose and give opinions → the
24 h reminder reaches the mail sink through a real ``celery worker`` process
(embedded SQLite broker, then Redis) → chair signs → clinician reads the
report. The application clock is set, not slept through: the meeting is a
few hours ahead in real time (so the worker, which runs on real time, finds
the 24 h reminder due and the meeting still ahead), and the web steps run
with the clock set to before the reminder was due, then to the meeting.
"""
from __future__ import annotations

import email
import uuid
from datetime import timedelta
from email import policy
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from mdt import clock
from mdt.auth.models import Discipline
from mdt.cases.models import Case
from mdt.decisions.models import Consensus, Proposal
from mdt.delivery import dispatcher
from mdt.extensions import db
from mdt.meetings.models import AgendaItem, Attendance, Meeting
from mdt.notifications.models import Notification, NotificationKind, NotificationStatus

from .conftest import need_server
from .helpers.processes import Worker, redis_reachable, wait_for, worker_env

pytestmark = pytest.mark.worker
SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.fixture(params=["embedded", "redis"])
def broker_url(request, tmp_path):
    if request.param == "redis":
        if not redis_reachable():
            need_server("Redis", "127.0.0.1:6379")
        return "redis://127.0.0.1:6379/14"
    return f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"


def _post(client, url, data, expect=302):
    response = client.post(url, data=data)
    assert response.status_code == expect, (url, response.status_code,
                                            response.get_data(as_text=True)[:2000])
    return response


def _one(model, *where):
    db.session.rollback()
    return db.session.scalars(select(model).where(*where)).one()


def test_whole_flow_from_scheduling_to_report(app, make, login_as, frozen_clock, broker_url,
                                              tmp_path, database_url, monkeypatch):
    real_now = clock.now().replace(second=0, microsecond=0)
    starts_local = (real_now + timedelta(hours=3)).astimezone(SHANGHAI)
    frozen_clock(real_now - timedelta(days=3))

    coordinator = make.coordinator()
    chair = make.specialist(discipline=Discipline.MEDICAL_ONCOLOGY, name="Dr Chair")
    team = make.core_team()
    radonc, ortho = team[Discipline.RADIATION_ONCOLOGY], team[Discipline.ORTHOPAEDICS]
    referrer = make.clinician(name="Dr Referrer")
    people = {"coordinator": coordinator, "chair": chair, "radonc": radonc, "ortho": ortho,
              "referrer": referrer}
    clients = {who: login_as(user, on=app.test_client()) for who, user in people.items()}

    # The coordinator schedules the weekly series; its first meeting is in three days.
    _post(clients["coordinator"], "/series/new", {
        "name": "Bone metastasis MDT", "weekday": str(starts_local.weekday()),
        "start_time": starts_local.strftime("%H:%M"), "time_zone": "Asia/Shanghai",
        "duration_minutes": "90", "location": "Seminar room 2", "default_chair_id": str(chair.id),
        "core_disciplines": ["radiation_oncology", "orthopaedics", "interventional_radiology",
                             "medical_oncology"],
        "cutoff_hours": "24", "reminder_offsets": "1440, 60"})
    meeting = _one(Meeting, Meeting.starts_at == starts_local)
    _post(clients["coordinator"], f"/meetings/{meeting.id}/attendees", {"core_team": "1"})

    # The clinician refers a case.
    _post(clients["referrer"], "/cases/new", {
        "hospital_number": "FLOW-0001", "patient_name": "Flow Patient",
        "date_of_birth": "1960-02-03", "sex": "female", "primary_site": "Lung",
        "histology": "Adenocarcinoma", "stage": "IVB", "egfr_status": "positive",
        "egfr_variant": "exon 19 deletion", "alk_status": "negative", "ros1_status": "negative",
        "kras_status": "not_tested", "ecog": "1", "question": "SBRT to the painful T7 lesion?",
        "submit": "Refer case"})
    case = _one(Case, Case.referring_clinician_id == referrer.id)
    _post(clients["referrer"], f"/cases/{case.id}/references", {
        "kind": "imaging", "accession_number": "MR-1", "performed_on": "2026-01-01",
        "description": "MRI whole spine"})

    # The coordinator puts it on the agenda and triages it for discussion.
    _post(clients["coordinator"], f"/meetings/{meeting.id}/items/new", {
        "case_id": str(case.id), "minutes_allotted": "15", "presenter_id": str(referrer.id)})
    item = _one(AgendaItem, AgendaItem.case_id == case.id)
    _post(clients["coordinator"], f"/items/{item.id}/triage", {"triage": "for_discussion"})

    # Two specialists propose and give their opinions.
    _post(clients["radonc"], f"/items/{item.id}/proposals/new", {
        "modality": "sbrt", "details": "24 Gy in 2 fractions", "rationale": "Painful lesion"})
    _post(clients["ortho"], f"/items/{item.id}/proposals/new", {
        "modality": "cementoplasty", "details": "T7 vertebroplasty", "rationale": "Stability"})
    sbrt = _one(Proposal, Proposal.modality == "sbrt")
    cement = _one(Proposal, Proposal.modality == "cementoplasty")
    _post(clients["ortho"], f"/proposals/{sbrt.id}/opinion", {f"p{sbrt.id}-stance": "support"})
    _post(clients["radonc"], f"/proposals/{cement.id}/opinion",
          {f"p{cement.id}-stance": "object", f"p{cement.id}-comment": "No instability on MRI"})

    # The 24 h reminder goes out through a real worker into the mail sink.
    clock.set_now(None)
    sink = tmp_path / "mail"
    reminders = _deliver_reminders(app, meeting, broker_url, sink, tmp_path, database_url,
                                   monkeypatch)
    attendees = {a.user.email for a in db.session.scalars(
        select(Attendance).where(Attendance.meeting_id == meeting.id))}
    assert {r["To"].addresses[0].addr_spec for r in reminders} == attendees
    assert len(reminders) == len(attendees)  # one each, none doubled
    local = meeting.starts_at.astimezone(SHANGHAI)
    for message in reminders:
        assert " ".join(message["Subject"].split()) == (
            f"Reminder: Bone metastasis MDT, {local:%a %d %b %Y, %H:%M} CST (Asia/Shanghai)")
        text = message.get_body(preferencelist=("plain",)).get_content()
        assert "F.P." in text and "Flow Patient" not in text and "FLOW-0001" not in text

    # At the meeting, three days on (everyone signs in again: sessions end after 30 idle
    # minutes): presence, then the chair signs.
    frozen_clock(meeting.starts_at + timedelta(minutes=30))
    for who, user in people.items():
        login_as(user, on=clients[who])
    for attendance in db.session.scalars(select(Attendance)
                                         .where(Attendance.meeting_id == meeting.id)):
        _post(clients["coordinator"], f"/attendances/{attendance.id}/presence",
              {"presence": "present"})
    _post(clients["chair"], f"/items/{item.id}/consensus", {
        "outcome": "agreed", "recommendation": "SBRT 24 Gy in 2 fractions to T7.",
        "adopted": [str(sbrt.id)], "intent": "palliative",
        "responsible_clinician_id": str(referrer.id),
        "actions-0-description": "Book planning CT", "actions-0-owner_id": str(radonc.id),
        "actions-0-due_on": (meeting.starts_at + timedelta(days=5)).date().isoformat(),
        "dissent": "Dr Radonc objected to cementoplasty: no instability on MRI",
        "confirm": "y"})
    consensus = _one(Consensus, Consensus.agenda_item_id == item.id)
    assert consensus.was_quorate and [p.id for p in consensus.adopted_proposals] == [sbrt.id]

    # The referring clinician reads the report and acts on it.
    report = clients["referrer"].get(f"/cases/{case.id}/report")
    body = report.get_data(as_text=True)
    assert report.status_code == 200
    assert "SBRT 24 Gy in 2 fractions to T7." in body
    assert "Book planning CT" in body and "Palliative" in body and "Quorate" in body
    signed = db.session.scalars(select(Notification).where(
        Notification.kind == NotificationKind.CONSENSUS_SIGNED)).all()
    assert [n.recipient_id for n in signed] == [referrer.id]


def _deliver_reminders(app, meeting, broker_url, sink: Path, tmp_path, database_url, monkeypatch):
    """Run the dispatcher here and a real worker there; return the reminder e-mails."""
    queue = f"mdt-flow-{uuid.uuid4().hex[:8]}"
    monkeypatch.setitem(app.config, "BROKER_URL", broker_url)
    monkeypatch.setitem(app.config, "BROKER_QUEUE", queue)
    app.extensions.pop("mdt_publisher", None)
    env = worker_env(database_url=database_url, broker_url=broker_url, instance=tmp_path,
                     smtp_port=0, queue=queue, MDT_MAIL_BACKEND="file",
                     MDT_MAIL_SINK_DIR=str(sink))
    worker = Worker(env, tmp_path / "worker.log").start()
    try:
        due = db.session.scalars(select(Notification.id).where(
            Notification.kind == NotificationKind.MEETING_REMINDER,
            Notification.meeting_id == meeting.id, Notification.due_at <= clock.now())).all()
        assert due, "the 24 h reminders should be due by now"
        dispatcher.dispatch()
        db.session.commit()

        def all_sent():
            db.session.rollback()
            return set(db.session.scalars(select(Notification.status).where(
                Notification.id.in_(due)))) == {NotificationStatus.SENT}

        try:
            wait_for(all_sent, 30, "the reminders to be sent")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\nworker log:\n{worker.log()}") from None
    finally:
        worker.stop()
        publisher = app.extensions.pop("mdt_publisher", None)
        if publisher is not None:
            publisher.close()
    messages = [email.message_from_bytes(path.read_bytes(), policy=policy.default)
                for path in sorted(sink.glob("*.eml"))]
    return [m for m in messages if str(m["Subject"]).strip().startswith("Reminder:")]
