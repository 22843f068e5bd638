"""Scheduled gifts on the time-skipping server: a birthday gives one application; running a day again,
or catching up over a gap, creates nothing twice; the gift waits for the chair's batch sign-off."""

from __future__ import annotations

import datetime as dt

from sqlmodel import Session, select
from temporalio.client import WorkflowHandle

from rules.loader import LoadedPolicy, PolicyRegistry, default_registry, policy_hash
from rules.model import BirthdayTiming
from service import gifts, seed
from service.models import Application, Member, Organisation
from workflows.application import ApplicationWorkflow
from workflows.campaign_types import GiftsInput
from workflows.gifts import DailyGiftsWorkflow
from workflows.types import Act

from ..workflows.helpers import running_worker, until
from ..world import build


def add_member(engine, org_id: int, no: str, born: dt.date, **kw) -> int:
    with Session(engine) as s, s.begin():
        return seed.member(s, s.get(Organisation, org_id), no, f"寿星{no}", f"3303021985{no[-4:]:0>4}0000", born, **kw).id


def gift_rows(engine, member_id: int | None = None) -> list[Application]:
    with Session(engine) as s:
        query = select(Application).where(Application.idempotency_key.like("gift:%"))
        if member_id is not None:
            query = query.where(Application.member_id == member_id)
        return list(s.exec(query).all())


async def run_days(client, tq: str, start: dt.date, end: dt.date):
    return await client.execute_workflow(DailyGiftsWorkflow.run, GiftsInput(start=start.isoformat(), end=end.isoformat()),
                                         id=f"gifts-{start}-{end}-{dt.datetime.now().timestamp()}", task_queue=tq)


async def test_birthday_gives_one_application_and_no_duplicate_on_rerun_or_catch_up(time_env, engine):
    world = build(engine)
    day = dt.date.today() - dt.timedelta(days=10)
    born = dt.date(1985, day.month, min(day.day, 28))
    day = born.replace(year=day.year)
    member = add_member(engine, world.org_id, "B0001", born)
    client = time_env.client
    async with running_worker(client, engine) as tq:
        first = await run_days(client, tq, day, day)
        assert first.created >= 1 and first.started == first.created
        rows = gift_rows(engine, member)
        assert len(rows) == 1
        app = rows[0]
        assert (app.benefit, app.event_date, app.requested_fen) == ("birthday", day, 30_000)
        assert app.idempotency_key == f"gift:birthday:{day.year}:m{member}"
        handle: WorkflowHandle = client.get_workflow_handle_for(ApplicationWorkflow.run, app.id)
        snap = await until(handle, lambda s: s.stage == "batch_sign_off")
        assert snap.status == "pending_approval" and snap.approved_fen == 30_000
        task = next(t for t in snap.tasks if t.status == "open")
        assert task.role == "chair"

        again = await run_days(client, tq, day, day)  # the same day again
        assert (again.created, again.started) == (0, 0) and again.existing == first.created
        gap = await run_days(client, tq, day - dt.timedelta(days=6), day + dt.timedelta(days=5))  # catching up a gap
        assert gap.existing >= first.created
        assert len(gift_rows(engine, member)) == 1
        keys = [r.idempotency_key for r in gift_rows(engine)]
        assert len(keys) == len(set(keys))
        expected = gifts.gifts_between(engine, day - dt.timedelta(days=6), day + dt.timedelta(days=5))
        assert sorted(keys) == sorted(g.key for g in expected)

        # The chair's sign-off moves it on: reserved, paid as goods, receipt task for the clerk.
        await handle.execute_update(ApplicationWorkflow.act, Act(world.users["chair"], task.task_id, "approve"))
        snap = await until(handle, lambda s: s.stage == "receipt")
        assert snap.status == "disbursed"
        for h in [client.get_workflow_handle(r.id) for r in gift_rows(engine)]:
            await h.terminate("test finished")


async def test_a_clerk_cannot_sign_off_a_batch(time_env, engine):
    world = build(engine)
    day = dt.date.today() - dt.timedelta(days=3)
    member = add_member(engine, world.org_id, "B0002", dt.date(1990, day.month, min(day.day, 28)))
    client = time_env.client
    async with running_worker(client, engine) as tq:
        await run_days(client, tq, day, day)
        (app,) = gift_rows(engine, member)
        handle = client.get_workflow_handle_for(ApplicationWorkflow.run, app.id)
        snap = await until(handle, lambda s: s.stage == "batch_sign_off")
        task = next(t for t in snap.tasks if t.status == "open")
        for user, action in (("clerk", "approve"), ("chair", "return")):
            try:
                await handle.execute_update(ApplicationWorkflow.act, Act(world.users[user], task.task_id, action))
            except Exception as exc:  # noqa: BLE001
                assert "wrong_role" in str(exc.cause.details) or "bad_action" in str(exc.cause.details)
            else:
                raise AssertionError(f"{user} {action} accepted")
        for r in gift_rows(engine):
            await client.get_workflow_handle(r.id).terminate("test finished")


def _registry(timing: BirthdayTiming) -> PolicyRegistry:
    loaded = default_registry().versions[0]
    sg = loaded.policy.scheduled_gifts.model_copy(update={"birthday_timing": timing})
    policy = loaded.policy.model_copy(update={"scheduled_gifts": sg})
    return PolicyRegistry([LoadedPolicy(policy=policy, hash=policy_hash(policy), file=loaded.file)])


def test_first_working_day_of_month_and_29_february(engine):
    world = build(engine)
    leap = add_member(engine, world.org_id, "B0229", dt.date(1988, 2, 29))
    may = add_member(engine, world.org_id, "B0531", dt.date(1990, 5, 31))
    monthly = _registry(BirthdayTiming.first_working_day_of_month)
    # 2025: 1 May to 5 May is the Labour Day holiday; the first working day of May is the 6th.
    may_gifts = [g for g in gifts.gifts_between(engine, dt.date(2025, 5, 1), dt.date(2025, 5, 31), registry=monthly)
                 if g.benefit == "birthday"]
    assert {g.gift_date for g in may_gifts} == {dt.date(2025, 5, 6)}
    assert may in {g.member_id for g in may_gifts}
    daily = gifts.gifts_between(engine, dt.date(2025, 2, 27), dt.date(2025, 3, 1))
    assert [(g.member_id, g.gift_date) for g in daily if g.member_id == leap] == [(leap, dt.date(2025, 2, 28))]
    daily = gifts.gifts_between(engine, dt.date(2024, 2, 28), dt.date(2024, 3, 1))
    assert [(g.member_id, g.gift_date) for g in daily if g.member_id == leap] == [(leap, dt.date(2024, 2, 29))]


def test_left_members_get_nothing_and_retirement_on_its_date(engine):
    world = build(engine)
    from service.models import MemberStatus
    gone = add_member(engine, world.org_id, "B0300", dt.date(1980, 3, 10), status=MemberStatus.left)
    retiring = add_member(engine, world.org_id, "B0301", dt.date(1966, 3, 10))
    with Session(engine) as s, s.begin():
        s.get(Member, retiring).retired_on = dt.date(2026, 3, 12)
    found = gifts.gifts_between(engine, dt.date(2026, 3, 10), dt.date(2026, 3, 12))
    assert [(g.member_id, g.benefit, g.gift_date) for g in found if g.member_id in (gone, retiring)] == [
        (retiring, "birthday", dt.date(2026, 3, 10)), (retiring, "retirement", dt.date(2026, 3, 12))]
    assert next(g for g in found if g.benefit == "retirement").key == f"gift:retirement:m{retiring}"
