"""The consensus report per case: complete on its own, printable, visible as the case is."""
from __future__ import annotations

from datetime import date

from mdt.decisions import services
from mdt.decisions.models import Intent, Modality, Outcome, Stance
from mdt.extensions import db

from .decisions_scene import build_scene

DISCLAIMER = ("This record documents the team's recommendation; treatment decisions rest with "
              "the responsible clinician and the patient.")


def _signed_scene(make):
    s = build_scene(make, started=True)
    case = s.item.case
    case.egfr_status, case.egfr_variant, case.pdl1_tps = "positive", "exon 19 deletion", 40
    make.reference(case, kind="pathology", accession_number="PATH-77",
                   description="CT-guided biopsy", performed_on=date(2026, 10, 2))
    sbrt = make.proposal(item=s.item, author=s.radonc, details="24 Gy in 2 fractions")
    deno = make.proposal(item=s.item, author=s.medonc, modality=Modality.DENOSUMAB,
                         alternative_group="Bone agent", details="120 mg SC 4-weekly")
    make.proposal(item=s.item, author=s.medonc, modality=Modality.ZOLEDRONIC_ACID,
                  alternative_group="Bone agent")
    make.opinion(sbrt, s.radonc, Stance.SUPPORT)
    make.opinion(sbrt, s.ortho, Stance.OBJECT, "Posterior wall")
    consensus = services.sign_consensus(
        s.chair, s.item,
        services.ConsensusInput(outcome=Outcome.AGREED, recommendation="SBRT then denosumab",
                                intent=Intent.PALLIATIVE, responsible_clinician_id=s.referrer.id,
                                adopted_ids=[sbrt.id, deno.id],
                                dissent="Ortho (Orthopaedics): posterior wall",
                                actions=[services.ActionInput("Dental review", s.medonc.id,
                                                              date(2026, 12, 10))]))
    services.add_amendment(s.chair, consensus, reason="Dose clarified",
                           correction="SBRT 24 Gy in 2 fractions")
    db.session.commit()
    return s


def test_report_holds_everything_the_referrer_needs(client, make, login_as):
    s = _signed_scene(make)
    case = s.item.case
    login_as(s.referrer)
    response = client.get(f"/cases/{case.id}/report")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    expected = [
        case.patient.name, case.patient.hospital_number, "17 May 1960",  # identification
        "Bone metastasis MDT", "Room 3", "Chair Person",  # meeting, place, chair
        "5 present, quorate",  # attendance and quorum at signing
        case.question, "ECOG", "exon 19 deletion", "PD-L1 TPS 40%", "MRI whole spine",
        "PATH-77", "CT-guided biopsy",  # key data presented
        "24 Gy in 2 fractions", "Alternatives — choose one of: Bone agent",
        "Zoledronic acid (bisphosphonate)", "Support 1", "Object 1",  # options, tallies
        "SBRT then denosumab", "Palliative", "Referring Doctor",  # recommendation etc.
        "Dental review", "10 Dec 2026",  # actions with owners and due dates
        "Ortho (Orthopaedics): posterior wall",  # dissent
        "Dose clarified", "SBRT 24 Gy in 2 fractions",  # amendments
        "by Chair Person",  # signed by/at
        DISCLAIMER,
    ]
    for text in expected:
        assert text in html, text
    assert html.count("Adopted") == 2
    assert 'href="/static/css/print.css' in html and 'media="print"' in html


def test_report_without_a_consensus_says_so(client, make, login_as):
    s = build_scene(make)
    login_as(s.referrer)
    html = client.get(f"/cases/{s.item.case_id}/report").get_data(as_text=True)
    assert "No consensus has been signed for this case yet." in html
    assert "Other listings of this case" in html and "Pending" in html


def test_report_access_follows_the_case(client, make, login_as):
    s = _signed_scene(make)
    url = f"/cases/{s.item.case_id}/report"
    for user in (s.referrer, s.coordinator, s.radonc, s.admin):
        login_as(user)
        assert client.get(url).status_code == 200
    login_as(s.other_clinician)
    assert client.get(url).status_code == 404
    assert client.get("/cases/999999/report").status_code == 404


def test_responsible_clinician_who_did_not_refer_reads_the_report(client, make, login_as):
    s = build_scene(make, started=True)
    services.sign_consensus(s.chair, s.item,
                            services.ConsensusInput(outcome=Outcome.AGREED, recommendation="SBRT",
                                                    responsible_clinician_id=s.other_clinician.id))
    db.session.commit()
    login_as(s.other_clinician)
    assert client.get(f"/cases/{s.item.case_id}/report").status_code == 200
    assert client.get(f"/items/{s.item.id}").status_code == 200


def test_report_runs_a_fixed_number_of_queries(client, make, login_as, count_queries):
    small, large = _signed_scene(make), _signed_scene(make)
    for _k in range(8):
        p = make.proposal(item=large.item, author=large.radonc, modality=Modality.OTHER)
        make.opinion(p, large.ortho, Stance.ABSTAIN)
    counts = []
    for s in (small, large):
        login_as(s.referrer)
        with count_queries() as q:
            assert client.get(f"/cases/{s.item.case_id}/report").status_code == 200
        counts.append(len(q))
    assert counts[0] == counts[1]


def test_flow_propose_opine_sign_read(client, make, login_as, frozen_clock):
    """Two specialists propose and give opinions, the chair signs, the referrer reads."""
    from datetime import timedelta

    from sqlalchemy import select

    from mdt.decisions.models import Proposal

    s = build_scene(make)
    item = f"/items/{s.item.id}"
    login_as(s.radonc)
    client.post(f"{item}/proposals/new", data={"modality": "sbrt", "details": "24 Gy / 2"})
    login_as(s.medonc)
    client.post(f"{item}/proposals/new", data={"modality": "denosumab",
                                               "alternative_group": "Bone agent"})
    client.post(f"{item}/proposals/new", data={"modality": "zoledronic_acid",
                                               "alternative_group": "Bone agent"})
    sbrt, deno, zol = db.session.scalars(select(Proposal).order_by(Proposal.id)).all()
    client.post(f"/proposals/{sbrt.id}/opinion", data={f"p{sbrt.id}-stance": "support"})
    login_as(s.radonc)
    client.post(f"/proposals/{deno.id}/opinion", data={f"p{deno.id}-stance": "support"})
    client.post(f"/proposals/{zol.id}/opinion",
                data={f"p{zol.id}-stance": "object", f"p{zol.id}-comment": "Renal function"})
    frozen_clock(s.meeting.starts_at + timedelta(minutes=30))
    login_as(s.chair)
    page = client.get(f"{item}/consensus").get_data(as_text=True)
    dissent = f"{s.radonc.name} (Radiation oncology), on Zoledronic acid (bisphosphonate): " \
              "Renal function"
    assert dissent in page
    response = client.post(f"{item}/consensus", data={
        "outcome": "agreed", "recommendation": "SBRT, then denosumab.", "intent": "palliative",
        "adopted": [str(sbrt.id), str(deno.id)], "responsible_clinician_id": str(s.referrer.id),
        "actions-0-description": "Dental review", "actions-0-owner_id": str(s.referrer.id),
        "actions-0-due_on": "2026-12-20", "dissent": dissent, "confirm": "y"})
    assert response.status_code == 302
    login_as(s.referrer)
    html = client.get(f"/cases/{s.item.case_id}/report").get_data(as_text=True)
    for text in ("SBRT, then denosumab.", "Dental review", "20 Dec 2026", "Renal function",
                 "Support 1", "Object 1", "by Chair Person", DISCLAIMER):
        assert text in html, text
