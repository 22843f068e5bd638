"""The other branches: reminders and escalation, waiting for funds, revocation, objections, referral."""

import datetime as dt
import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError

from service.models import HardshipFile, Notification
from workflows.application import ApplicationWorkflow

from ..world import build, fund
from .helpers import act, approve_stage, file, ledger, open_tasks, row, running_worker, skip_days, until


def give_file(engine, world, member="alice", tier="relative"):
    with Session(engine) as s, s.begin():
        s.add(HardshipFile(member_id=world.members[member], tier=tier, active_from=dt.date(2000, 1, 1),
                           active_until=dt.date(2100, 1, 1)))


async def committee_approves(h, world):
    snap = await until(h, lambda s: len(open_tasks(s, "committee_vote")) >= 3)
    for task in open_tasks(snap, "committee_vote"):
        voter = next(u for u, a in world.users.items() if a.user_id == task.assignee_user_id)
        await act(h, world, voter, task.task_id)


async def test_reminder_then_escalation_to_the_chair(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "wedding", member="ivan", requested_fen=50_000,
                       evidence=["marriage_certificate"])
        await until(h, lambda s: bool(open_tasks(s, "officer_check")))
        await skip_days(time_env, 3.05)  # policy: remind after 3 days
        snap = await until(h, lambda s: any(e.action == "reminder" for e in s.history))
        assert all(t.reminded and not t.escalated for t in open_tasks(snap, "officer_check"))
        await skip_days(time_env, 4)  # escalate after 7 days
        snap = await until(h, lambda s: any(e.action == "escalation" for e in s.history))
        chair_task = next(t for t in open_tasks(snap) if t.role == "chair")
        assert chair_task.escalated
        await act(h, world, "chair", chair_task.task_id)  # the chair acts in the officer's place
        snap = await until(h, lambda s: bool(open_tasks(s, "chair_approval")))
    with Session(engine) as s:
        kinds = [(n.kind, n.recipient_role) for n in s.exec(select(Notification).where(Notification.application_id == h.id))]
    assert kinds == [("reminder", "clerk"), ("escalation", "chair")]


async def test_awaiting_funds_until_the_policy_gives_up(time_env, engine):
    world = build(engine, welfare_fen=10_000)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "birthday", member="ivan", requested_fen=30_000)
        snap = await until(h, lambda s: s.status == "awaiting_funds")
        assert row(engine, h.id).status == "awaiting_funds"
        await skip_days(time_env, 31)  # policy: 30 days
        await until(h, lambda s: s.status == "rejected")
        snap = await h.query(ApplicationWorkflow.snapshot)
        assert snap.history[-1].action == "rejected_funds" and snap.history[-1].detail["zh"]
    assert ledger(engine, h.id) == []


async def test_funds_raised_while_waiting(time_env, engine):
    from service import ledger as money

    world = build(engine, welfare_fen=10_000)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "birthday", member="ivan", requested_fen=30_000)
        await until(h, lambda s: s.status == "awaiting_funds")
        money.raise_budget(engine, world.funds["member_welfare"], 50_000, "test-raise", "admin")
        await h.signal(ApplicationWorkflow.funds_available)
        snap = await until(h, lambda s: s.status == "disbursed")
        assert snap.approved_fen == 30_000
    assert fund(engine, world.funds["member_welfare"]).spent_fen == 30_000


async def test_public_notice_objection_goes_back_to_the_committee(time_env, engine):
    world = build(engine)
    give_file(engine, world)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "hardship_assistance", requested_fen=200_000, evidence=["assistance_request"])
        await committee_approves(h, world)
        await until(h, lambda s: s.stage == "public_notice")
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update(ApplicationWorkflow.object, args=[world.users["clerk"], "  "])
        await h.execute_update(ApplicationWorkflow.object, args=[world.users["clerk"], "申请人家中另有商铺"])
        snap = await until(h, lambda s: len(open_tasks(s, "committee_vote")) == 3)
        assert fund(engine, world.funds["hardship_fund"]).reserved_fen == 200_000  # held while the committee looks again
        for task in open_tasks(snap, "committee_vote")[:2]:
            voter = next(u for u, a in world.users.items() if a.user_id == task.assignee_user_id)
            await act(h, world, voter, task.task_id, "reject", comment="异议属实")
        assert await h.result() == "rejected"
    assert ledger(engine, h.id) == [("reserve", 200_000), ("release", 200_000)]


async def test_public_notice_passes_after_five_working_days(time_env, engine):
    world = build(engine)
    give_file(engine, world)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "hardship_assistance", requested_fen=200_000, evidence=["assistance_request"])
        await committee_approves(h, world)
        snap = await until(h, lambda s: s.stage == "public_notice")
        notice = next(e for e in snap.history if e.action == "public_notice_started")
        assert notice.detail["working_days"] == 5
        await skip_days(time_env, 12)  # at least 5 working days, holidays included
        snap = await until(h, lambda s: s.status == "disbursed")
    assert ledger(engine, h.id) == [("reserve", 200_000), ("disburse", 200_000)]


async def test_chair_revokes_during_notice_and_funds_are_released(time_env, engine):
    world = build(engine)
    give_file(engine, world)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "hardship_assistance", requested_fen=100_000, evidence=["assistance_request"])
        await committee_approves(h, world)
        await until(h, lambda s: s.stage == "public_notice")
        with pytest.raises(WorkflowUpdateFailedError):  # only the chair
            await h.execute_update(ApplicationWorkflow.revoke, args=[world.users["clerk"], "x"])
        await h.execute_update(ApplicationWorkflow.revoke, args=[world.users["chair"], "档案信息有误"])
        assert await h.result() == "rejected"
    assert ledger(engine, h.id) == [("reserve", 100_000), ("release", 100_000)]
    assert fund(engine, world.funds["hardship_fund"]).reserved_fen == 0


async def test_referred_case_needs_the_chair_to_set_the_amount(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        # An education grant without a school level: no rule can decide, so a person does.
        h = await file(client, engine, world, tq, "education_grant", member="ivan", requested_fen=150_000,
                       evidence=["admission_letter"], event_key="小华")
        snap = await until(h, lambda s: bool(open_tasks(s)))
        assert snap.decision["outcome"] == "refer" and snap.decision["approved_fen"] == 0
        await committee_approves(h, world)
        snap = await until(h, lambda s: bool(open_tasks(s, "chair_approval")))
        task_id = open_tasks(snap, "chair_approval")[0].task_id
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await act(h, world, "chair", task_id)
        assert err.value.cause.details[0]["code"] == "amount_needed"
        with pytest.raises(WorkflowUpdateFailedError):
            await act(h, world, "chair", task_id, amount_fen=300_001)  # above every cap of the benefit
        await act(h, world, "chair", task_id, amount_fen=120_000)
        await until(h, lambda s: s.stage == "public_notice")
        assert fund(engine, world.funds["hardship_fund"]).reserved_fen == 120_000


async def test_amount_fixed_by_rules_cannot_be_changed(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "wedding", member="ivan", requested_fen=50_000, evidence=["marriage_certificate"])
        snap = await until(h, lambda s: bool(open_tasks(s, "officer_check")))
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await act(h, world, "clerk2", open_tasks(snap, "officer_check")[0].task_id, amount_fen=99)
        assert err.value.cause.details[0]["code"] == "amount_fixed"


async def test_auditor_who_approved_may_not_audit(time_env, engine):
    from sqlmodel import Session as S

    from service.models import Role, RoleGrant

    world = build(engine)
    with S(engine) as s, s.begin():  # the chair also sits on the audit committee
        s.add(RoleGrant(user_id=world.users["chair"].user_id, org_id=world.org_id, role=Role.auditor))
    chair = world.users["chair"]
    chair.roles = ["auditor", "chair"]
    client = time_env.client
    async with running_worker(client, engine) as tq:
        h = await file(client, engine, world, tq, "wedding", member="ivan", requested_fen=50_000, evidence=["marriage_certificate"])
        await approve_stage(h, world, "officer_check", "clerk2")
        await approve_stage(h, world, "chair_approval", "chair")
        await approve_stage(h, world, "receipt", "clerk")
        snap = await until(h, lambda s: bool(open_tasks(s, "audit_review")))
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await act(h, world, "chair", open_tasks(snap, "audit_review")[0].task_id)
        assert err.value.cause.details[0]["code"] == "approver_audits"
        await act(h, world, "auditor", open_tasks(snap, "audit_review")[0].task_id, "flag", comment="签领表缺签字")
        assert await h.result() == "closed"
    assert row(engine, h.id).history[-1]["detail"]["audit_flagged"] is True
