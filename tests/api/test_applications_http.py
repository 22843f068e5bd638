"""The API over real HTTP, a real worker and a real Temporal dev server."""

import datetime as dt

import pytest

from rules.loader import default_registry
from workflows.application import CHINA

TODAY = dt.datetime.now(CHINA).date()
RECENT = (TODAY - dt.timedelta(days=3)).isoformat()

# One filing per benefit of the default policy, with what each needs.
FILINGS = {
    "hospitalization": {"requested_fen": 120_000, "evidence": ["hospital_papers"], "event_key": "人民医院 住院"},
    "bereavement": {"requested_fen": 100_000, "evidence": ["death_certificate", "relationship_proof"], "relative": "alice_mother"},
    "family_hardship_visit": {"evidence": ["visit_notes"]},
    "family_mediation": {"evidence": ["visit_notes"], "requested_fen": 500},
    "member_conflict": {"evidence": ["visit_notes"]},
    "birthday": {"requested_fen": 30_000},
    "wedding": {"requested_fen": 50_000, "evidence": ["marriage_certificate"]},
    "childbirth": {"requested_fen": 50_000, "evidence": ["birth_certificate"], "event_key": "小明"},
    "child_university": {"requested_fen": 50_000, "evidence": ["admission_letter"], "event_key": "小红"},
    "retirement": {"requested_fen": 100_000, "evidence": ["retirement_approval"]},
    "holiday_gift": {"requested_fen": 50_000, "evidence": ["festival_list"], "event_key": "春节"},
    "hardship_assistance": {"requested_fen": 200_000, "evidence": ["assistance_request"]},
    "education_grant": {"requested_fen": 300_000, "evidence": ["admission_letter"], "event_key": "小红", "school_level": "university"},
}
EXPECTED = {
    "hospitalization": ("eligible", 100_000, "pending_approval", "officer_check"),
    "bereavement": ("eligible", 100_000, "pending_approval", "officer_check"),
    "family_hardship_visit": ("eligible", 0, "pending_approval", "officer_check"),
    "family_mediation": ("eligible", 0, "pending_approval", "officer_check"),
    "member_conflict": ("eligible", 0, "pending_approval", "officer_check"),
    "birthday": ("eligible", 30_000, None, None),  # auto route: straight on to payment
    "wedding": ("eligible", 50_000, "pending_approval", "officer_check"),
    "childbirth": ("eligible", 50_000, "pending_approval", "officer_check"),
    "child_university": ("eligible", 50_000, "pending_approval", "committee_vote"),
    "retirement": ("eligible", 100_000, "pending_approval", "officer_check"),
    "holiday_gift": ("eligible", 50_000, None, None),
    "hardship_assistance": ("ineligible", 0, "rejected", None),  # no hardship file: 先建档、后帮扶
    "education_grant": ("eligible", 100_000, "pending_approval", "committee_vote"),  # no file: the lower amount
}


def body(service, benefit: str, member: str = "alice") -> dict:
    spec = dict(FILINGS[benefit])
    relative = spec.pop("relative", None)
    out = {"benefit": benefit, "member_id": service.world.members[member], "event_date": RECENT, **spec}
    if relative:
        out["relative_id"] = service.world.relatives[relative]
    return out


def test_every_benefit_of_the_default_policy_has_a_filing():
    assert set(FILINGS) == {b.code for b in default_registry().for_date(TODAY).policy.benefits}


async def test_filing_every_benefit_type(service):
    for benefit in FILINGS:
        r = await service.call("POST", "/api/applications", "clerk", json=body(service, benefit))
        assert r.status_code == 201, (benefit, r.text)
        app = r.json()
        outcome, approved, status, stage = EXPECTED[benefit]
        d = app["decision"]
        assert d["outcome"] == outcome and d["approved_fen"] == approved, (benefit, d)
        assert d["policy_version"] == "wenzhou-2019" and d["fired"] and d["reasons"][0]["zh"] and d["reasons"][0]["en"]
        if status is not None:
            assert app["status"] == status, (benefit, app["status"])
            assert app["stage"] == stage, benefit
        else:
            assert app["status"] in ("submitted", "approved", "disbursed"), (benefit, app["status"])
        got = await service.call("GET", f"/api/applications/{app['id']}", "clerk")
        assert got.status_code == 200 and got.json()["decision"]["fired"] == d["fired"]
    listing = await service.call("GET", "/api/applications?page_size=50", "clerk")
    assert listing.json()["total"] == len(FILINGS)
    created = [item["created_at"] for item in listing.json()["items"]]
    assert created == sorted(created, reverse=True)


async def test_form_post_goes_through_the_same_handler(service):
    form = {"benefit": "wedding", "member_id": str(service.world.members["bob"]), "event_date": RECENT,
            "requested_fen": "50000", "evidence": "marriage_certificate"}
    r = await service.call("POST", "/api/applications", "clerk", data=form)
    assert r.status_code == 201, r.text
    assert r.json()["decision"]["approved_fen"] == 50_000


async def test_idempotent_retry_returns_the_same_application(service):
    headers = {"Idempotency-Key": "form-7f3a"}
    first = await service.call("POST", "/api/applications", "clerk", json=body(service, "wedding"), headers=headers)
    again = await service.call("POST", "/api/applications", "clerk", json=body(service, "wedding"), headers=headers)
    assert first.status_code == 201 and again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    listing = await service.call("GET", "/api/applications", "clerk")
    assert listing.json()["total"] == 1


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"requested_fen": 100.5}, "requested_fen"),
        ({"requested_fen": -1}, "requested_fen"),
        ({"requested_fen": "100"}, "requested_fen"),
        ({"benefit": "free_lunch"}, "benefit"),
        ({"event_date": "2999-01-01"}, "event_date"),
        ({"event_date": "not a date"}, "event_date"),
        ({"evidence": ["selfie"]}, "evidence"),
        ({"colour": "red"}, "colour"),
        ({"member_id": 999_999}, "member_id"),
    ],
)
async def test_bad_input_is_a_422_with_field_and_reasons_and_changes_nothing(service, change, field):
    r = await service.call("POST", "/api/applications", "clerk", json=body(service, "wedding") | change)
    assert r.status_code == 422, r.text
    err = r.json()
    assert err["field"] == field and err["reason_zh"] and err["reason_en"]
    listing = await service.call("GET", "/api/applications", "clerk")
    assert listing.json()["total"] == 0


async def test_approval_refusals_over_http(service):
    # Alice files for herself; the officer check, then the chair.
    r = await service.call("POST", "/api/applications", "alice", json=body(service, "wedding"))
    app = r.json()
    inbox = await service.call("GET", "/api/tasks", "clerk2")
    task = inbox.json()["items"][0]
    assert task["application_id"] == app["id"] and task["stage"] == "officer_check"
    # Heidi (clerk2) is Alice's registered cousin: refused, and the refusal is in the audit log.
    refused = await service.call("POST", f"/api/tasks/{task['id']}/decision", "clerk2", json={"action": "approve"})
    assert refused.status_code == 403 and refused.json()["error"] == "relative" and refused.json()["reason_zh"]
    # The wrong role cannot even see the task, and cannot act on it.
    wrong = await service.call("POST", f"/api/tasks/{task['id']}/decision", "auditor", json={"action": "approve"})
    assert wrong.status_code == 403 and wrong.json()["error"] == "wrong_role"
    ok = await service.call("POST", f"/api/tasks/{task['id']}/decision", "clerk", json={"action": "approve", "comment": "齐全"})
    assert ok.status_code == 200
    again = await service.call("POST", f"/api/tasks/{task['id']}/decision", "clerk", json={"action": "approve"})
    assert again.status_code == 409 and again.json()["error"] == "wrong_stage"
    # Alice cannot approve her own application, whatever roles she had.
    chair_task = (await service.call("GET", "/api/tasks", "chair")).json()["items"][0]
    own = await service.call("POST", f"/api/tasks/{chair_task['id']}/decision", "alice", json={"action": "approve"})
    assert own.status_code == 403 and own.json()["error"] in ("wrong_role", "own_application")
    from sqlmodel import Session, select

    from service.models import AuditEvent

    with Session(service.engine) as s:
        refusals = s.exec(select(AuditEvent).where(AuditEvent.action == "refused")).all()
    assert {e.detail["code"] for e in refusals} >= {"relative", "wrong_role", "wrong_stage"}


async def test_second_committee_vote_refused_over_http(service):
    r = await service.call("POST", "/api/applications", "clerk", json=body(service, "child_university", member="bob"))
    assert r.status_code == 201
    inbox = (await service.call("GET", "/api/tasks", "committee1")).json()
    assert inbox["total"] == 1  # only their own vote
    vote = inbox["items"][0]
    first = await service.call("POST", f"/api/tasks/{vote['id']}/decision", "committee1", json={"action": "approve"})
    second = await service.call("POST", f"/api/tasks/{vote['id']}/decision", "committee1", json={"action": "approve"})
    assert first.status_code == 200 and second.status_code == 409


async def test_withdraw_and_resubmit_over_http(service):
    r = await service.call("POST", "/api/applications", "alice", json=body(service, "bereavement"))
    app_id = r.json()["id"]
    task = (await service.call("GET", "/api/tasks", "clerk")).json()["items"][0]
    back = await service.call("POST", f"/api/tasks/{task['id']}/decision", "clerk", json={"action": "return", "comment": "补充"})
    assert back.status_code == 200
    amended = {"requested_fen": 80_000, "evidence": ["death_certificate", "relationship_proof"],
               "relative_id": service.world.relatives["alice_mother"]}
    stranger = await service.call("POST", f"/api/applications/{app_id}/resubmit", "chair", json=amended)
    assert stranger.status_code == 403
    ok = await service.call("POST", f"/api/applications/{app_id}/resubmit", "alice", json=amended)
    assert ok.status_code == 200, ok.text
    assert ok.json()["decision"]["approved_fen"] == 80_000 and ok.json()["status"] == "pending_approval"
    gone = await service.call("POST", f"/api/applications/{app_id}/withdraw", "alice")
    assert gone.status_code == 200 and gone.json()["status"] == "withdrawn"
    late = await service.call("POST", f"/api/applications/{app_id}/withdraw", "alice")
    assert late.status_code == 409


async def test_unauthenticated_and_bad_tokens(service):
    assert (await service.call("GET", "/api/tasks")).status_code == 401
    r = await service.http.get("/api/tasks", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["reason_zh"]
    bad = await service.http.post("/api/auth/token", json={"username": "clerk", "password": "wrong"})
    assert bad.status_code == 401
