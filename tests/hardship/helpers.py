"""Running hardship-file workflows in tests: a real worker, real activities, a real database."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import datetime as dt
import random
import uuid
from contextlib import asynccontextmanager

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from activities import WelfareActivities
from activities.hardship import HardshipActivities
from service.models import HardshipFile
from service.routes.hardship import start_file
from service.worker import WORKFLOWS
from workflows.hardship_file import CHINA, HardshipFileWorkflow
from workflows.hardship_types import FileInput, FileSnapshot, Vote

from ..world import World

# Size 3; the 低保 line is 900 yuan a month = 10,800 a year per person: deep below 32,400 net, relative below 64,800.
DEEP = {"size": 3, "annual_income_fen": 3_000_000, "unavoidable_costs_fen": 200_000, "sudden_event": False}
RELATIVE = {"size": 3, "annual_income_fen": 5_000_000, "unavoidable_costs_fen": 0, "sudden_event": False}
NOT_POOR = {"size": 3, "annual_income_fen": 9_000_000, "unavoidable_costs_fen": 0, "sudden_event": False}

_started: dict[str, list[WorkflowHandle]] = {}


@asynccontextmanager
async def file_worker(client: Client, engine, calendar: dict[dt.date, bool] | None = None, task_queue: str | None = None):
    """Every workflow and activity of the service; ``calendar`` adds working-day overrides for notices."""
    task_queue = task_queue or f"hf-{uuid.uuid4().hex[:8]}"
    _started[task_queue] = []
    welfare = WelfareActivities(engine)
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as executor:
            async with Worker(client, task_queue=task_queue, workflows=WORKFLOWS, activity_executor=executor,
                              activities=welfare.all() + HardshipActivities(engine, welfare.registry, calendar).all()):
                yield task_queue
    finally:
        for handle in _started.pop(task_queue, []):
            with contextlib.suppress(Exception):
                await handle.terminate("test finished")


async def server_today(env) -> dt.date:
    return (await env.get_current_time()).astimezone(CHINA).date()


async def open_file(client: Client, engine, world: World, task_queue: str, env, *, member: str = "alice",
                    opened_by: str = "alice", household: dict | None = None, n: int | None = None) -> WorkflowHandle:
    """What POST /api/hardship-files does: the pending row, then the workflow (opened on the server's date)."""
    member_id = world.members[member]
    # The test server lives for the whole session while each test has a fresh database: a random counter
    # keeps two tests' files apart (a file id, once used, is never reused).
    file_id = f"HF-{member_id}-{n or random.randint(1, 999_999)}"
    today = await server_today(env)
    with Session(engine) as s, s.begin():
        s.add(HardshipFile(member_id=member_id, file_id=file_id, period=1, tier="", status="pending", stage="clerk_check",
                           active_from=today, active_until=today, assessment={}))
    inp = FileInput(file_id, world.org_id, member_id, world.users[opened_by], today.isoformat(), household or DEEP, "丈夫重病，长期住院")
    await start_file(client, inp, task_queue)
    handle = client.get_workflow_handle(file_id)
    _started.setdefault(task_queue, []).append(handle)
    return handle


async def until(handle: WorkflowHandle, predicate, timeout: float = 20.0) -> FileSnapshot:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        snap = await handle.query(HardshipFileWorkflow.snapshot)
        if predicate(snap):
            return snap
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last: stage={snap.stage} story={[i.action for i in snap.story]}")
        await asyncio.sleep(0.05)


async def skip(env, days: float, step: float = 10.0) -> None:
    left = days
    while left > 0:
        jump = min(step, left)
        await env.sleep(dt.timedelta(days=jump))
        left -= jump


async def check_and_visit(handle: WorkflowHandle, world: World, household: dict) -> FileSnapshot:
    await until(handle, lambda s: s.stage == "clerk_check")
    await handle.execute_update(HardshipFileWorkflow.check, args=[world.users["clerk"], "approve", "材料齐全"])
    return await handle.execute_update(HardshipFileWorkflow.visit, args=[world.users["clerk"], "入户核实：住房一套，无车", household])


async def committee(handle: WorkflowHandle, world: World, action: str = "approve", voters=("committee1", "committee3", "committee4")):
    """Frank (committee2) is Alice's husband: recused, so three vote."""
    await until(handle, lambda s: s.stage == "committee_vote")
    for user in voters:
        await handle.execute_update(HardshipFileWorkflow.vote, Vote(world.users[user], action, "同意" if action == "approve" else "不同意"))


async def to_active(handle: WorkflowHandle, world: World, env, household: dict | None = None) -> FileSnapshot:
    await check_and_visit(handle, world, household or DEEP)
    await committee(handle, world)
    await until(handle, lambda s: s.stage == "public_notice")
    await skip(env, 16, step=2)  # 5 working days, whatever holidays fall in them
    return await until(handle, lambda s: s.stage == "active")


def rows(engine, file_id: str) -> list[HardshipFile]:
    with Session(engine) as s:
        return list(s.exec(select(HardshipFile).where(HardshipFile.file_id == file_id).order_by(HardshipFile.period)))
