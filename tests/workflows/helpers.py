"""Running application workflows in tests: a real worker, real activities, a real database."""

from __future__ import annotations

import asyncio
import contextlib
import concurrent.futures
import datetime as dt
import uuid
from contextlib import asynccontextmanager

from sqlmodel import Session, select
from temporalio.client import Client, WorkflowHandle

from service import filing
from service.models import Application, ApprovalTask, LedgerEntry
from service.worker import build_worker
from workflows.application import ApplicationWorkflow
from workflows.types import Act, ApplicationDetails, Snapshot

from ..world import World


_started: dict[str, list[WorkflowHandle]] = {}


@asynccontextmanager
async def running_worker(client: Client, engine):
    """A worker for one test; whatever the test left running is terminated afterwards, because a
    workflow without a worker stops the time-skipping server from skipping time for everyone."""
    task_queue = f"test-{uuid.uuid4().hex[:8]}"
    _started[task_queue] = []
    try:
        with concurrent.futures.ThreadPoolExecutor(max_workers=32) as executor:
            async with build_worker(client, engine, task_queue, executor):
                yield task_queue
    finally:
        for handle in _started.pop(task_queue, []):
            with contextlib.suppress(Exception):
                await handle.terminate("test finished")


async def file(client: Client, engine, world: World, task_queue: str, benefit: str, *, member: str = "alice",
               filed_by: str = "clerk", event_date: dt.date | None = None, requested_fen: int = 0, **details) -> WorkflowHandle:
    details = ApplicationDetails(requested_fen=requested_fen, **details)
    actor = world.users[filed_by]
    app, _ = filing.record(engine, org_id=world.org_id, member_id=world.members[member], benefit=benefit,
                           event_date=event_date or dt.date.today() - dt.timedelta(days=2), details=details, filed_by=actor)
    await filing.start(client, filing.to_input(app, actor), task_queue)
    handle = client.get_workflow_handle_for(ApplicationWorkflow.run, app.id)
    _started.setdefault(task_queue, []).append(handle)
    return handle


async def until(handle: WorkflowHandle, predicate, timeout: float = 20.0) -> Snapshot:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        snap = await handle.query(ApplicationWorkflow.snapshot)
        if predicate(snap):
            return snap
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out; last: status={snap.status} stage={snap.stage} "
                                 f"history={[h.action for h in snap.history]}")
        await asyncio.sleep(0.05)


async def skip_days(env, days: float) -> None:
    """Advance the time-skipping server a day at a time (one long jump over many timers times out)."""
    left = days
    while left > 0:
        step = min(1.0, left)
        await env.sleep(dt.timedelta(days=step))
        left -= step


def open_tasks(snap: Snapshot, stage: str | None = None) -> list:
    return [t for t in snap.tasks if t.status == "open" and (stage is None or t.stage == stage)]


async def act(handle: WorkflowHandle, world: World, user: str, task_id: str, action: str = "approve", **kw):
    return await handle.execute_update(ApplicationWorkflow.act, Act(world.users[user], task_id, action, **kw))


async def approve_stage(handle: WorkflowHandle, world: World, stage: str, user: str, action: str = "approve", **kw) -> Snapshot:
    snap = await until(handle, lambda s: bool(open_tasks(s, stage)))
    await act(handle, world, user, open_tasks(snap, stage)[0].task_id, action, **kw)
    return snap


def row(engine, app_id: str) -> Application:
    with Session(engine) as s:
        return s.get(Application, app_id)


def ledger(engine, app_id: str) -> list[tuple[str, int]]:
    with Session(engine) as s:
        entries = s.exec(select(LedgerEntry).where(LedgerEntry.application_id == app_id).order_by(LedgerEntry.id)).all()
        return [(e.kind, e.amount_fen) for e in entries]


def tasks(engine, app_id: str) -> list[ApprovalTask]:
    with Session(engine) as s:
        return list(s.exec(select(ApprovalTask).where(ApprovalTask.application_id == app_id).order_by(ApprovalTask.created_at)))
