"""A worker killed during each activity in turn: the activity does its real work and commits it, the
process dies before Temporal hears of it, a normal worker takes over. Every application still reaches
its end, and every effect happened exactly once: ledger rows, fund totals, claim slots,
notifications, projection history, tasks, audit-log events (and the chain still verifies).

The cases run concurrently, each on its own task queue and database, so the file costs about as much
as its slowest case (a money activity is retried after its 15 s timeout; a local activity's workflow
task after 10 s). Cases that need days to pass get a time-skipping server of their own.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sys
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from temporalio.client import WorkflowUpdateStage
from temporalio.testing import WorkflowEnvironment

from service import gifts
from service.audit.chain import verify_chain
from service.db import make_engine, migrate
from workflows.application import CHINA, ApplicationWorkflow
from workflows.campaign_types import GiftsInput
from workflows.gifts import DailyGiftsWorkflow
from workflows.hardship_file import HardshipFileWorkflow

from ..campaigns.test_gifts import add_member, gift_rows
from ..conftest import binary
from ..hardship.helpers import NOT_POOR, open_file, skip
from ..workflows.helpers import act, file, open_tasks, skip_days
from ..workflows.test_application_branches import committee_approves, give_file
from ..world import World, build
from .crash_helpers import Crash, Outcome, audit_against_history, outcome, picture, reach

SNAPSHOT = ApplicationWorkflow.snapshot
FILE_SNAPSHOT = HardshipFileWorkflow.snapshot


async def decide(h, world: World, stage: str, user: str, action: str = "approve"):
    snap = await reach(h, SNAPSHOT, lambda s: bool(open_tasks(s, stage)))
    return await act(h, world, user, open_tasks(snap, stage)[0].task_id, action)


async def receipt_and_audit(h, world: World) -> str:
    await decide(h, world, "receipt", "clerk")
    await decide(h, world, "audit_review", "auditor")
    return await h.result()


async def cancelled_on_failure(task: asyncio.Task, body: Awaitable):
    try:
        return await body
    finally:
        if not task.done():
            task.cancel()


# --- the scripts: drive a workflow to the crash, let a normal worker take over, drive it to its end ---

async def birthday(crash: Crash, world: World, env) -> Outcome:
    """Auto route: facts, rules, reservation and payment all happen before the first person acts."""
    h = await file(crash.client, crash.engine, world, crash.task_queue, "birthday", member="ivan", requested_fen=30_000)
    crash.subject = h.id
    await crash.takeover()
    result = await receipt_and_audit(h, world)
    return await outcome(crash, h, SNAPSHOT, result, {"member_welfare": world.funds["member_welfare"]})


async def birthday_receipt_in_flight(crash: Crash, world: World, env) -> Outcome:
    """The clerk's receipt confirmation (an Update) is being handled when the worker dies."""
    h = await file(crash.client, crash.engine, world, crash.task_queue, "birthday", member="ivan", requested_fen=30_000)
    crash.subject = h.id
    receipt = asyncio.create_task(decide(h, world, "receipt", "clerk"))

    async def rest():
        await crash.takeover()
        await receipt  # the Update completes on the new worker
        await decide(h, world, "audit_review", "auditor")
        return await h.result()

    result = await cancelled_on_failure(receipt, rest())
    return await outcome(crash, h, SNAPSHOT, result, {"member_welfare": world.funds["member_welfare"]})


async def birthday_reminded(crash: Crash, world: World, env) -> Outcome:
    """Three days without a receipt: the clerks are reminded (a notification) as the worker dies."""
    h = await file(crash.client, crash.engine, world, crash.task_queue, "birthday", member="ivan", requested_fen=30_000)
    crash.subject = h.id
    await reach(h, SNAPSHOT, lambda s: bool(open_tasks(s, "receipt")))
    # The sleep goes on while the dead worker's task holds the clock, and ends once a worker took over.
    sleeping = asyncio.create_task(skip_days(env, 3.05))  # policy: remind after 3 days; escalate after 7

    async def rest():
        await crash.takeover()
        await sleeping
        await reach(h, SNAPSHOT, lambda s: any(e.action == "reminder" for e in s.history))
        return await receipt_and_audit(h, world)

    result = await cancelled_on_failure(sleeping, rest())
    return await outcome(crash, h, SNAPSHOT, result, {"member_welfare": world.funds["member_welfare"]})


async def _assistance_to_notice(crash: Crash, world: World):
    give_file(crash.engine, world)
    h = await file(crash.client, crash.engine, world, crash.task_queue, "hardship_assistance", requested_fen=100_000,
                   evidence=["assistance_request"])
    crash.subject = h.id
    await reach(h, SNAPSHOT, lambda s: len(open_tasks(s, "committee_vote")) >= 3)
    await committee_approves(h, world)
    return h


async def assistance_revoked_in_notice(crash: Crash, world: World, env) -> Outcome:
    """Committee vote, reservation, public notice: the worker dies working out the notice's last day;
    then the chair revokes during the notice and the reservation is released."""
    h = await _assistance_to_notice(crash, world)
    await crash.takeover()
    await reach(h, SNAPSHOT, lambda s: s.stage == "public_notice")
    assert await h.execute_update(ApplicationWorkflow.revoke, args=[world.users["chair"], "档案信息有误"]) == "rejected"
    result = await h.result()
    return await outcome(crash, h, SNAPSHOT, result, {"hardship_fund": world.funds["hardship_fund"]})


async def assistance_release_dies(crash: Crash, world: World, env) -> Outcome:
    """The chair revokes during the notice; the worker dies right after giving the reservation back."""
    h = await _assistance_to_notice(crash, world)
    await reach(h, SNAPSHOT, lambda s: s.stage == "public_notice")
    revoke = await h.start_update(ApplicationWorkflow.revoke, args=[world.users["chair"], "档案信息有误"],
                                  wait_for_stage=WorkflowUpdateStage.ACCEPTED)
    await crash.takeover()
    assert await revoke.result() == "rejected"
    result = await h.result()
    return await outcome(crash, h, SNAPSHOT, result, {"hardship_fund": world.funds["hardship_fund"]})


async def hardship_file_checked(crash: Crash, world: World, env) -> Outcome:
    """A hardship file: the worker dies recording the clerk's check (an Update in flight); the file goes
    on to the home visit, whose household the rules find not in hardship, and ends rejected."""
    h = await open_file(crash.client, crash.engine, world, crash.task_queue, env)
    crash.subject = h.id
    await reach(h, FILE_SNAPSHOT, lambda s: s.stage == "clerk_check")
    check = asyncio.create_task(h.execute_update(HardshipFileWorkflow.check, args=[world.users["clerk"], "approve", "材料齐全"]))

    async def rest():
        await crash.takeover()
        assert await check == "home_visit"
        await h.execute_update(HardshipFileWorkflow.visit, args=[world.users["clerk"], "入户核实：另有商铺一间", NOT_POOR])
        return await h.result()

    result = await cancelled_on_failure(check, rest())
    return await outcome(crash, h, FILE_SNAPSHOT, result, applications=False)


async def hardship_file_reminded(crash: Crash, world: World, env) -> Outcome:
    """A hardship file waits three days for the clerk's check: the worker dies sending the reminder."""
    h = await open_file(crash.client, crash.engine, world, crash.task_queue, env)
    crash.subject = h.id
    await reach(h, FILE_SNAPSHOT, lambda s: s.stage == "clerk_check")
    sleeping = asyncio.create_task(skip(env, 3.05, step=1))

    async def rest():
        await crash.takeover()
        await sleeping
        await reach(h, FILE_SNAPSHOT, lambda s: any(i.action == "reminder" for i in s.story))
        await h.execute_update(HardshipFileWorkflow.check, args=[world.users["clerk"], "reject", "非本单位会员"])
        return await h.result()

    result = await cancelled_on_failure(sleeping, rest())
    return await outcome(crash, h, FILE_SNAPSHOT, result, applications=False)


async def scheduled_birthdays(crash: Crash, world: World, env) -> Outcome:
    """The daily gifts run: the worker dies once the day's gift applications are recorded and started.
    The activity itself is retried only after its 2-minute heartbeat timeout, so this case does not wait
    for that: the next day's run processes the same day again, as the schedule's catch-up does."""
    day = dt.datetime.now(CHINA).date() - dt.timedelta(days=10)
    born = dt.date(1985, day.month, min(day.day, 28))
    day = born.replace(year=day.year)
    for no in ("B0001", "B0002"):
        await asyncio.to_thread(add_member, crash.engine, world.org_id, no, born)
    expected = sorted(g.key for g in gifts.gifts_between(crash.engine, day, day, world.org_id))
    crash.subject = f"gifts-{day}-{crash.task_queue}"
    crash.inspect = lambda: sorted(r.idempotency_key for r in gift_rows(crash.engine))
    days = GiftsInput(day.isoformat(), day.isoformat(), org_id=world.org_id)
    first = await crash.client.start_workflow(DailyGiftsWorkflow.run, days, id=crash.subject, task_queue=crash.task_queue)
    try:
        await crash.takeover()
        again = await crash.client.execute_workflow(DailyGiftsWorkflow.run, days, id=f"{crash.subject}-next",
                                                    task_queue=crash.task_queue)
    finally:
        await first.terminate("the next run processed its days")
    apps = gift_rows(crash.engine)
    for app in apps:
        await reach(crash.client.get_workflow_handle(app.id), SNAPSHOT, lambda s: s.stage == "batch_sign_off")
    final = {"expected": expected, "keys": sorted(app.idempotency_key for app in apps),
             "pictures": {app.id: await asyncio.to_thread(picture, crash.engine, app.id) for app in apps}}
    chain = await asyncio.to_thread(verify_chain, crash.engine)
    findings = await audit_against_history(crash.engine, crash.client, [app.id for app in apps])
    for app in apps:
        await crash.client.get_workflow_handle(app.id).terminate("test finished")
    return Outcome(again, crash.at_crash, final, None, chain.ok, chain.checked, findings)


# --- the cases ----------------------------------------------------------------------------------

BIRTHDAY_PAID = [("reserve", 30_000), ("disburse", 30_000)]
ASSISTANCE_RELEASED = [("reserve", 100_000), ("release", 100_000)]


@dataclass(frozen=True)
class Case:
    id: str
    activity: str
    when: str | None
    script: Callable[[Crash, World, Any], Awaitable[Outcome]]
    at_crash: Callable[[Any], bool]  # what the dead worker left committed (a Picture)
    result: str
    ledger: list = field(default_factory=list)
    funds: dict = field(default_factory=dict)  # code -> (spent, reserved)
    claim_slots: int = 0
    notices: tuple[str, ...] = ()  # kinds, one notification each
    time_skipping: bool = False

    def __str__(self) -> str:
        return self.id


APPLICATION_CASES = [
    Case("gather_facts", "gather_facts", None, birthday, lambda p: p.actions == ["filed"] and not p.ledger,
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1),
    Case("evaluate_rules", "evaluate_rules", None, birthday, lambda p: p.actions == ["filed"] and not p.ledger,
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1),
    Case("project", "project", "approved", birthday,
         lambda p: p.actions[-1] == "approved" and p.ledger == [("reserve", 30_000)],
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1),
    Case("project-in-update", "project", "task_approve", birthday_receipt_in_flight,
         lambda p: p.actions[-1] == "task_approve" and p.ledger == BIRTHDAY_PAID,
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1),
    Case("reserve_funds", "reserve_funds", None, birthday,
         lambda p: p.ledger == [("reserve", 30_000)] and p.claim_slots == 1 and p.actions[-1] == "rules_evaluated",
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1),
    Case("disburse", "disburse", None, birthday, lambda p: p.ledger == BIRTHDAY_PAID and p.actions[-1] == "approved",
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1),
    Case("notify", "notify", "reminder", birthday_reminded,
         lambda p: len(p.notifications) == 1 and p.actions[-1] == "task_opened",
         "closed", BIRTHDAY_PAID, {"member_welfare": (30_000, 0)}, 1, ("reminder",), time_skipping=True),
    Case("working_days_after", "working_days_after", None, assistance_revoked_in_notice,
         lambda p: p.actions[-1] == "approved" and p.ledger == [("reserve", 100_000)],
         "rejected", ASSISTANCE_RELEASED, {"hardship_fund": (0, 0)}, 0),
    Case("release_funds", "release_funds", None, assistance_release_dies,
         lambda p: p.ledger == ASSISTANCE_RELEASED and p.claim_slots == 0 and p.actions[-1] == "public_notice_started",
         "rejected", ASSISTANCE_RELEASED, {"hardship_fund": (0, 0)}, 0),
]

FILE_CASES = [
    Case("hardship_record", "hardship_record", "checked", hardship_file_checked,
         lambda p: [a for _, a in p.audit] == ["hardship_opened", "hardship_checked"],
         "rejected"),
    Case("hardship_notify", "hardship_notify", "reminder", hardship_file_reminded,
         lambda p: len(p.notifications) == 1 and [a for _, a in p.audit] == ["hardship_opened"],
         "rejected", notices=("reminder",), time_skipping=True),
]

GIFT_CASES = [Case("create_gifts", "create_gifts", None, scheduled_birthdays, lambda keys: len(keys) >= 2, "")]


async def run_case(case: Case, dev_env, tmp_path, schema: Path) -> Outcome:
    shutil.copy(schema, tmp_path / "welfare.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'welfare.db'}")
    try:
        world = await asyncio.to_thread(build, engine)
        env = dev_env
        if case.time_skipping:  # its own clock: skipping days here moves no other case
            env = await WorkflowEnvironment.start_time_skipping(test_server_existing_path=binary("temporal-test-server"))
        try:
            async with Crash(env.client, engine, f"crash-{case.id}-{uuid.uuid4().hex[:6]}", case.activity, case.when) as crash:
                return await case.script(crash, world, env)
        finally:
            if env is not dev_env:
                await env.shutdown()
    finally:
        engine.dispose()


@pytest_asyncio.fixture(scope="module")
async def outcomes(request, tmp_path_factory, dev_env):
    """Every selected case, started at once; each test awaits its own."""
    module = sys.modules[__name__]
    selected = [item.callspec.params["case"] for item in request.session.items
                if getattr(item, "module", None) is module and hasattr(item, "callspec")]
    schema = tmp_path_factory.mktemp("schema") / "welfare.db"  # migrated once, copied per case (alembic is not thread-safe)
    engine = make_engine(f"sqlite:///{schema}")
    migrate(engine)
    engine.dispose()
    tasks = {c.id: asyncio.create_task(run_case(c, dev_env, tmp_path_factory.mktemp(c.id), schema)) for c in selected}
    yield tasks
    for task in tasks.values():
        task.cancel()
    await asyncio.gather(*tasks.values(), return_exceptions=True)


def comparable(item: dict) -> tuple:
    # The filing (seq 1) is written by the service with its own clock, before the workflow starts.
    return item["at"] if item["seq"] > 1 else None, item["action"], item["actor"], item["detail"]


@pytest.mark.parametrize("case", APPLICATION_CASES, ids=str)
async def test_application_activity_killed_after_its_effect(case: Case, outcomes):
    out = await asyncio.wait_for(asyncio.shield(outcomes[case.id]), timeout=150)
    app_id = out.snapshot.application_id
    assert case.at_crash(out.at_crash), f"the worker did not die where expected: {out.at_crash}"
    assert out.result == case.result and out.snapshot.status == case.result
    final = out.final
    # Money: each movement once, the fund's totals as the ledger says, the claim slot held (or freed) once.
    assert final.ledger == case.ledger
    assert out.funds == case.funds
    assert final.claim_slots == case.claim_slots
    # Notifications: one row per notice, none twice.
    assert sorted(key.rsplit(":", 1)[1] for key in final.notifications) == sorted(case.notices)
    assert set(final.notifications.values()) <= {1}
    # The projection: one history item per step, in order, equal to the workflow's own history.
    expected = [{"seq": n, **vars(item)} for n, item in enumerate(out.snapshot.history, start=1)]
    assert [item["seq"] for item in final.history] == list(range(1, len(expected) + 1))
    assert [comparable(item) for item in final.history] == [comparable(item) for item in expected]
    assert final.tasks == {t.task_id: t.status for t in out.snapshot.tasks}
    # The audit log: one event per step, and the chain unbroken.
    assert final.audit == [(f"{app_id}:{item['seq']}", item["action"]) for item in expected]
    assert out.chain_ok and out.chain_checked == len(expected)
    # The database rebuilt from the Temporal history agrees with it (ledger, funds, status, amount).
    assert out.findings == []


@pytest.mark.parametrize("case", FILE_CASES, ids=str)
async def test_hardship_file_activity_killed_after_its_effect(case: Case, outcomes):
    out = await asyncio.wait_for(asyncio.shield(outcomes[case.id]), timeout=150)
    file_id = out.snapshot.file_id
    assert case.at_crash(out.at_crash), f"the worker did not die where expected: {out.at_crash}"
    assert out.result == case.result and out.snapshot.stage == case.result
    final = out.final
    story = out.snapshot.story
    # One audit event per step of the story, each once, with the step's content.
    assert final.audit == [(f"{file_id}:1:{n}", f"hardship_{item.action}") for n, item in enumerate(story, start=1)]
    details = [{k: v for k, v in final.audit_details[key].items() if k != "at"} for key, _ in final.audit]
    assert details == [item.detail for item in story]
    assert out.chain_ok and out.chain_checked == len(story)
    assert sorted(key.rsplit(":", 1)[1] for key in final.notifications) == sorted(case.notices)
    assert set(final.notifications.values()) <= {1}
    assert final.file_rows == [(1, "rejected")]  # one row, written whole each time
    assert not final.ledger


@pytest.mark.parametrize("case", GIFT_CASES, ids=str)
async def test_gifts_activity_killed_after_its_effect(case: Case, outcomes):
    out = await asyncio.wait_for(asyncio.shield(outcomes[case.id]), timeout=150)
    expected = out.final["expected"]
    assert out.at_crash == expected  # recorded (and started), then the worker died before reporting
    assert out.final["keys"] == expected  # one application per gift, none twice
    assert (out.result.created, out.result.existing) == (0, len(expected))  # the next run found every one recorded
    for app_id, p in out.final["pictures"].items():
        assert p.actions == ["filed", "rules_evaluated", "task_opened"]  # each run once, waiting for the chair
        assert p.audit == [(f"{app_id}:{n}", a) for n, a in enumerate(p.actions, start=1)]
        assert not p.ledger
    assert out.chain_ok and out.findings == []
