"""Projection audit against tampering; the timeline an auditor reads; policy what-if."""

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from rules.loader import DEFAULT_POLICY_DIR, parse_policy
from service import audit_log
from service.audit import history, projection_audit, timeline, whatif
from service.models import LedgerEntry

from ..workflows.helpers import running_worker
from ..world import build
from .histories import run_some


@pytest.fixture
async def audited(time_env, engine):
    """Four applications run to their ends; the worker stays up so queries can replay them."""
    world = build(engine)
    async with running_worker(time_env.client, engine) as tq:
        ids = await run_some(time_env.client, engine, world, tq)
        records = [history.decode(await history.fetch_one(time_env.client, i)) for i in ids.values()]
        yield world, ids, records


async def test_untouched_database_matches_the_histories(audited, engine, time_env):
    _, _, records = audited
    report = await projection_audit.audit(engine, time_env.client, records, funds=True)
    assert report.ok, [(f.subject, f.what, f.expected, f.found) for f in report.findings]


@pytest.mark.parametrize(
    ("tamper", "what"),
    [
        ("UPDATE ledgerentry SET amount_fen = amount_fen + 100 WHERE application_id = :paid AND kind = 'disburse'", "ledger.disburse"),
        ("DELETE FROM ledgerentry WHERE application_id = :paid AND kind = 'reserve'", "ledger.reserve"),
        ("INSERT INTO ledgerentry (idempotency_key, fund_id, application_id, kind, amount_fen, created_at) "
         "SELECT 'extra', fund_id, application_id, 'disburse', amount_fen, created_at FROM ledgerentry "
         "WHERE application_id = :paid AND kind = 'disburse'", "ledger.disburse"),
        ("UPDATE application SET approved_fen = 99999 WHERE id = :paid", "approved_fen"),
        ("UPDATE application SET status = 'closed' WHERE id = :rejected", "status"),
        ("UPDATE fund SET spent_fen = spent_fen - 1000 WHERE code = 'member_welfare'", "spent_fen"),
        ("UPDATE fund SET budget_fen = budget_fen + 1000 WHERE code = 'member_welfare'", "budget_fen"),
    ],
)
async def test_tampering_shows_up(audited, engine, time_env, tamper, what):
    _, ids, records = audited
    with Session(engine) as s, s.begin():
        s.execute(text(tamper), {"paid": ids["wedding_paid"], "rejected": ids["wedding_rejected"]})
    report = await projection_audit.audit(engine, time_env.client, records, funds=True)
    assert what in {f.what for f in report.findings}, [(f.subject, f.what) for f in report.findings]
    assert all(f.zh and f.en for f in report.findings)


async def test_timeline_reads_as_a_story(audited, engine):
    world, ids, records = audited
    rec = next(r for r in records if r.workflow_id == ids["wedding_paid"])
    audit_log.append_with_retry(engine, "refused:test", rec.workflow_id, "alice", "refused",
                                {"attempted": "approve", "code": "own_application", "reason_zh": "不能审批本人的申请",
                                 "reason_en": "You may not act on your own application"})
    entries = timeline.build(engine, rec)
    actions = [e.action for e in entries]
    # The refusal is written now, in real time; the history's times are the time-skipping server's, which
    # earlier tests of the session may have moved days ahead: only the history's own order is fixed.
    story = [a for a in actions if a != "refused"]
    assert story[0] == "filed" and story[-1] == "finished"
    assert {"rules_evaluated", "task_approve", "reserve", "disburse", "refused"} <= set(actions)
    rules = next(e for e in entries if e.action == "rules_evaluated")
    assert "wedding.eligible" in rules.zh and "wenzhou-2019" in rules.en and rules.detail["approved_fen"] == 50_000
    assert "上限" in rules.zh  # the reason text of the cap that applied
    approvals = [e for e in entries if e.action == "task_approve"]
    assert [e.actor for e in approvals] == ["clerk2", "chair", "clerk", "auditor"]
    refused = next(e for e in entries if e.action == "refused")
    assert refused.source == "audit_log" and "不能审批本人" in refused.zh
    assert [e.at for e in entries] == sorted(e.at for e in entries)
    assert all(e.zh and e.en for e in entries)


async def test_what_if_a_birthday_cap_of_400(audited):
    _, ids, records = audited
    text_ = (DEFAULT_POLICY_DIR / "wenzhou-2019.yaml").read_text(encoding="utf-8")
    proposed = parse_policy(text_.replace("cap_fen: 30000", "cap_fen: 40000").replace("version: wenzhou-2019", "version: proposal-400"))
    report = whatif.what_if(records, proposed)
    birthday = report.benefits["birthday"]
    assert (birthday.decisions, birthday.amount_changed, birthday.outcome_changed) == (1, 1, 0)
    assert (birthday.recorded_fen, birthday.proposed_fen, birthday.difference_fen) == (30_000, 35_000, 5_000)
    assert birthday.changed[0]["application_id"] == ids["birthday"]
    assert report.benefits["wedding"].difference_fen == 0  # untouched benefits do not move
    assert report.difference_fen == 5_000


async def test_what_if_touches_no_data(audited, engine):
    _, _, records = audited
    with Session(engine) as s:
        before = len(s.exec(select(LedgerEntry)).all())
    proposed = parse_policy((DEFAULT_POLICY_DIR / "wenzhou-2019.yaml").read_text(encoding="utf-8").replace("cap_fen: 50000", "cap_fen: 1"))
    report = whatif.what_if(records, proposed)
    assert report.benefits["wedding"].difference_fen < 0
    with Session(engine) as s:
        assert len(s.exec(select(LedgerEntry)).all()) == before
