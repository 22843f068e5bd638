"""The hardship file's life on the time-skipping server: open → check → visit → tier → committee → 公示 →
active → yearly review (continue-as-new) → closed."""

import asyncio
import datetime as dt
import uuid

import pytest
from sqlmodel import Session, select
from temporalio.client import WorkflowUpdateFailedError
from temporalio.worker import Replayer

from activities.facts import active_file_tier
from rules.workdays import is_working_day
from service.models import AuditEvent, Notification
from workflows.hardship_file import HardshipFileWorkflow
from workflows.hardship_types import Vote

from ..world import build
from .helpers import (DEEP, NOT_POOR, RELATIVE, check_and_visit, committee, file_worker, open_file, rows, server_today, skip,
                      to_active, until)


def refused_code(exc_info) -> str:
    return exc_info.value.cause.details[0]["code"]


def p2_from(snap) -> str:
    return snap.periods[1].active_from


def tier_on(engine, member_id, day):
    with Session(engine) as s:
        return active_file_tier(s, member_id, day)


async def test_full_path_to_an_active_file(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        assert h.id.startswith(f"HF-{world.members['alice']}-")
        await until(h, lambda s: s.stage == "clerk_check")
        with pytest.raises(WorkflowUpdateFailedError) as e:  # a member cannot check her own file
            await h.execute_update(HardshipFileWorkflow.check, args=[world.users["alice"], "approve", None])
        assert refused_code(e) == "wrong_role"
        with pytest.raises(WorkflowUpdateFailedError) as e:  # Heidi, a clerk, is Alice's registered cousin
            await h.execute_update(HardshipFileWorkflow.check, args=[world.users["clerk2"], "approve", None])
        assert refused_code(e) == "relative"
        await h.execute_update(HardshipFileWorkflow.check, args=[world.users["clerk"], "approve", "材料齐全"])
        snap = await h.execute_update(HardshipFileWorkflow.visit, args=[world.users["clerk"], "入户核实", DEEP])
        assert snap.assessment.outcome == "eligible" and snap.assessment.tier == "deep"
        assert snap.assessment.fired == ["hardship.tier.deep"] and snap.assessment.reasons[0]["zh"]
        snap = await until(h, lambda s: s.stage == "committee_vote")
        assert sorted(snap.voters) == sorted(world.users[u].user_id for u in ("committee1", "committee3", "committee4"))
        with pytest.raises(WorkflowUpdateFailedError) as e:  # Frank is her husband: given no vote
            await h.execute_update(HardshipFileWorkflow.vote, Vote(world.users["committee2"], "approve"))
        assert refused_code(e) == "relative"
        await h.execute_update(HardshipFileWorkflow.vote, Vote(world.users["committee1"], "approve"))
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await h.execute_update(HardshipFileWorkflow.vote, Vote(world.users["committee1"], "approve"))
        assert refused_code(e) == "already_voted"
        await h.execute_update(HardshipFileWorkflow.vote, Vote(world.users["committee3"], "approve"))
        assert (await h.query(HardshipFileWorkflow.snapshot)).stage == "committee_vote"  # 2 of 3: below the quorum of 3
        await h.execute_update(HardshipFileWorkflow.vote, Vote(world.users["committee4"], "reject"))
        snap = await until(h, lambda s: s.stage == "public_notice")
        started = next(i for i in snap.story if i.action == "public_notice_started")
        assert started.detail["working_days"] == 5
        assert rows(engine, h.id)[0].status == "pending"  # not in force during the notice
        await skip(time_env, 16, step=2)
        snap = await until(h, lambda s: s.stage == "active")
    (row,) = rows(engine, h.id)
    assert (row.status, row.stage, row.tier, row.period) == ("active", "active", "deep", 1)
    assert row.active_from == dt.date.fromisoformat(started.detail["until"]) + dt.timedelta(days=1)
    assert row.active_until == dt.date(row.active_from.year + 1, row.active_from.month, row.active_from.day) - dt.timedelta(days=1)
    assert row.assessment["fired"] == ["hardship.tier.deep"] and row.assessment["household"] == DEEP
    assert tier_on(engine, world.members["alice"], row.active_from) == "deep"
    assert tier_on(engine, world.members["alice"], row.active_from - dt.timedelta(days=1)) is None
    actions = [i.action for i in snap.story]
    assert actions == ["opened", "checked", "home_visit_reported", "assessed", "committee_opened", "vote_approve", "vote_approve",
                       "vote_reject", "committee_decided", "public_notice_started", "public_notice_passed", "activated"]
    with Session(engine) as s:  # the same story, durable, in the audit log
        logged = [e.action for e in s.exec(select(AuditEvent).where(AuditEvent.application_id == h.id).order_by(AuditEvent.id))]
    assert logged == [f"hardship_{a}" for a in actions]


def national_day_2024_shifted_to(start: dt.date) -> dict[dt.date, bool]:
    """The 2024 calendar from Friday 27 September on (National Day week, make-up Sunday 29 September), laid
    over the days after ``start``: the time-skipping server's clock cannot go back to 2024."""
    base = dt.date(2024, 9, 27)
    return {start + dt.timedelta(days=k): is_working_day(base + dt.timedelta(days=k)) for k in range(1, 40)}


async def test_an_update_arriving_with_the_start_is_validated_against_the_input(time_env, engine):
    """The check is sent before any worker has run the workflow: Temporal delivers it with the start, and its
    validator runs before run() — it must already know whose file this is."""
    world = build(engine)
    client = time_env.client
    task_queue = f"hf-late-{uuid.uuid4().hex[:8]}"
    h = await open_file(client, engine, world, task_queue, time_env)  # nobody polls this queue yet
    own = asyncio.create_task(h.execute_update(HardshipFileWorkflow.check, args=[world.users["alice"], "approve", None]))
    checked = asyncio.create_task(h.execute_update(HardshipFileWorkflow.check, args=[world.users["clerk"], "approve", "材料齐全"]))
    await asyncio.sleep(1)
    async with file_worker(client, engine, task_queue=task_queue):
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await own
        assert refused_code(e) == "wrong_role"
        assert await checked == "home_visit"
        await h.terminate("test finished")


async def test_public_notice_over_national_day_waits_for_five_working_days(time_env, engine):
    world = build(engine)
    client = time_env.client
    now = await time_env.get_current_time()
    noon = dt.datetime.combine(now.astimezone(dt.timezone(dt.timedelta(hours=8))).date() + dt.timedelta(days=1), dt.time(12),
                               dt.timezone(dt.timedelta(hours=8)))
    await time_env.sleep(noon - now)  # start at noon in China: the whole test runs on one calendar day
    start = await server_today(time_env)
    async with file_worker(client, engine, calendar=national_day_2024_shifted_to(start)) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        await check_and_visit(h, world, DEEP)
        await committee(h, world)
        snap = await until(h, lambda s: s.stage == "public_notice")
        started = next(i for i in snap.story if i.action == "public_notice_started")
        # 2024-09-27 + 5 working days = 2024-10-10 (29 Sep, 30 Sep, then 8, 9, 10 Oct): 13 calendar days.
        assert started.detail["from"] == start.isoformat()
        assert started.detail["until"] == (start + dt.timedelta(days=13)).isoformat()
        assert snap.notice_until == started.detail["until"]
        await skip(time_env, 13, step=1)  # now the 13th day, noon: the notice's last day
        assert (await h.query(HardshipFileWorkflow.snapshot)).stage == "public_notice"
        await skip(time_env, 0.6)  # past midnight
        snap = await until(h, lambda s: s.stage == "active")
    assert rows(engine, h.id)[0].active_from == start + dt.timedelta(days=14)


async def test_objection_sends_the_file_back_and_a_rejecting_committee_ends_it(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        await check_and_visit(h, world, DEEP)
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await h.execute_update(HardshipFileWorkflow.object, args=[world.users["clerk"], "x"])
        assert refused_code(e) == "not_in_notice"
        await committee(h, world)
        await until(h, lambda s: s.stage == "public_notice")
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await h.execute_update(HardshipFileWorkflow.object, args=[world.users["clerk"], "  "])
        assert refused_code(e) == "empty"
        await skip(time_env, 2, step=1)  # objections come in during the notice
        await h.execute_update(HardshipFileWorkflow.object, args=[world.users["chair"], "申请人家中另有商铺"])
        snap = await until(h, lambda s: s.stage == "committee_vote")
        assert snap.votes == []  # a fresh round
        await committee(h, world, "reject", voters=("committee1", "committee3"))  # 2 of 3 reject: a majority
        assert await h.result() == "rejected"
        snap = await h.query(HardshipFileWorkflow.snapshot)
    actions = [i.action for i in snap.story]
    assert actions[actions.index("public_notice_started"):] == [
        "public_notice_started", "objection_received", "committee_opened", "vote_reject", "vote_reject", "committee_decided",
        "committee_rejected"]
    objection = next(i for i in snap.story if i.action == "objection_received")
    assert objection.actor == "chair" and objection.detail["objection"] == "申请人家中另有商铺"
    (row,) = rows(engine, h.id)
    assert (row.status, row.stage, row.tier) == ("rejected", "rejected", "deep")
    assert tier_on(engine, world.members["alice"], await server_today(time_env)) is None


async def test_not_eligible_ends_at_the_assessment(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env, household=NOT_POOR)
        snap = await check_and_visit(h, world, NOT_POOR | {"private_car": True})
        assert snap.assessment.outcome == "ineligible" and snap.assessment.tier is None
        assert await h.result() == "rejected"
        snap = await h.query(HardshipFileWorkflow.snapshot)
    assert snap.story[-1].action == "not_eligible" and snap.story[-1].detail["reasons"]
    assert rows(engine, h.id)[0].status == "rejected"


async def test_yearly_review_renews_with_a_new_tier_as_a_new_run(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        await to_active(h, world, time_env, DEEP)
        first = await h.describe()
        first_until = rows(engine, h.id)[0].active_until
        days_left = (first_until - await server_today(time_env)).days
        await skip(time_env, days_left - 31, step=60)  # the reminder goes out 30 days before expiry
        assert (await h.query(HardshipFileWorkflow.snapshot)).stage == "active"
        await skip(time_env, 1.5)
        snap = await until(h, lambda s: s.stage == "review_due")
        with Session(engine) as s:
            reminders = s.exec(select(Notification).where(Notification.application_id == h.id)).all()
        assert [(n.kind, n.recipient_role) for n in reminders] == [("review_reminder", "clerk")]
        with pytest.raises(WorkflowUpdateFailedError) as e:
            await h.execute_update(HardshipFileWorkflow.submit_review, args=[world.users["alice"], RELATIVE, None])
        assert refused_code(e) == "wrong_role"
        await h.execute_update(HardshipFileWorkflow.submit_review, args=[world.users["clerk"], RELATIVE, "丈夫已出院复工"])
        latest = client.get_workflow_handle(h.id)
        snap = await until(latest, lambda s: s.run_no == 2)
        second = await latest.describe()
        assert second.run_id != first.run_id  # continued as new
        assert [(p.number, p.tier) for p in snap.periods] == [(1, "deep"), (2, "relative")]
        assert snap.stage == "active" and snap.story[0].action == "continued"
        assert snap.story[0].detail["previous_run_id"] == first.run_id
        # The new run carries the decisions of the first, without the household figures.
        assert [i.action for i in snap.earlier] == ["opened", "checked", "assessed", "committee_decided", "public_notice_passed",
                                                    "activated", "reassessed", "renewed"]
        assert snap.earlier[-1].detail == {"period": 2, "tier": "relative", "active_from": p2_from(snap),
                                           "active_until": snap.periods[1].active_until}
        assert "household" not in str([i.detail for i in snap.earlier])
        old_events = [e async for e in client.get_workflow_handle(h.id, run_id=first.run_id).fetch_history_events()]
        new_events = [e async for e in latest.fetch_history_events()]
        print(f"history events: first run {len(old_events)}, renewed run {len(new_events)}")
        assert len(old_events) < 150 and len(new_events) < 25  # each run's history stays small, year after year
        replayer = Replayer(workflows=[HardshipFileWorkflow])  # both runs replay deterministically
        await replayer.replay_workflow(await client.get_workflow_handle(h.id, run_id=first.run_id).fetch_history())
        await replayer.replay_workflow(await latest.fetch_history())
    p1, p2 = rows(engine, h.id)
    assert (p1.tier, p1.status, p1.stage) == ("deep", "active", "renewed")  # still the tier for events in its year
    assert (p2.tier, p2.status, p2.stage, p2.period) == ("relative", "active", "active", 2)
    assert p2.active_from == first_until + dt.timedelta(days=1)
    member = world.members["alice"]
    assert tier_on(engine, member, first_until) == "deep" and tier_on(engine, member, p2.active_from) == "relative"


async def test_review_finding_no_hardship_closes_the_file(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        await to_active(h, world, time_env, RELATIVE)
        snap = await h.execute_update(HardshipFileWorkflow.submit_review, args=[world.users["clerk"], NOT_POOR, "收入已恢复"])
        assert snap.assessment.outcome == "ineligible"
        assert await h.result() == "closed"
        snap = await h.query(HardshipFileWorkflow.snapshot)
    assert [i.action for i in snap.story][-3:] == ["review_submitted", "reassessed", "closed"]
    assert snap.story[-1].detail["reason"] == "left_hardship"
    (row,) = rows(engine, h.id)
    assert (row.status, row.stage, row.closed_reason) == ("closed", "closed", "left_hardship")
    assert tier_on(engine, world.members["alice"], await server_today(time_env)) is None


async def test_close_for_retirement(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        await to_active(h, world, time_env)
        for user, reason, code in [("alice", "retired", "wrong_role"), ("clerk", "bored", "bad_reason"),
                                   ("clerk2", "retired", "relative")]:
            with pytest.raises(WorkflowUpdateFailedError) as e:
                await h.execute_update(HardshipFileWorkflow.close, args=[world.users[user], reason, None])
            assert refused_code(e) == code
        assert await h.execute_update(HardshipFileWorkflow.close, args=[world.users["chair"], "retired", "2025年退休"]) == "closed"
        assert await h.result() == "closed"
        with pytest.raises(Exception):
            await h.execute_update(HardshipFileWorkflow.close, args=[world.users["chair"], "died", None])
    (row,) = rows(engine, h.id)
    assert (row.status, row.closed_reason) == ("closed", "retired")
    assert tier_on(engine, world.members["alice"], row.active_from) is None  # nothing is paid against a closed file


async def test_a_year_without_review_lapses_and_a_late_review_renews_from_that_day(time_env, engine):
    world = build(engine)
    client = time_env.client
    async with file_worker(client, engine) as tq:
        h = await open_file(client, engine, world, tq, time_env)
        await to_active(h, world, time_env, DEEP)
        first = rows(engine, h.id)[0]
        await skip(time_env, (first.active_until - await server_today(time_env)).days + 3, step=60)
        snap = await until(h, lambda s: s.stage == "lapsed")
        assert [i.action for i in snap.story][-2:] == ["review_reminder", "lapsed"]
        assert rows(engine, h.id)[0].stage == "lapsed"
        assert tier_on(engine, world.members["alice"], await server_today(time_env)) is None  # past its dates
        await h.execute_update(HardshipFileWorkflow.submit_review, args=[world.users["clerk"], DEEP, "补做复核"])
        snap = await until(client.get_workflow_handle(h.id), lambda s: s.run_no == 2)
        today = await server_today(time_env)
    assert snap.periods[1].active_from == today.isoformat()  # no gap is back-filled
    assert tier_on(engine, world.members["alice"], today) == "deep"
