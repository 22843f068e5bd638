"""The approver's inbox and their decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, and_, func, or_, select
from sqlmodel import Session
from temporalio.client import Client

from service.deps import Caller, current_caller, engine_of, temporal_of
from service.errors import not_found
from service.models import Application, ApprovalTask, Member, TaskStatus
from service.routes.applications import _update, application_out, task_out
from service.schemas import NO_CONTROL, ApplicationOut, Page, TaskDecision
from workflows.application import ApplicationWorkflow
from workflows.types import Act

router = APIRouter(prefix="/api/tasks", tags=["tasks"])


def _visible(caller: Caller):
    """Open tasks of the caller's roles in their organisations, unassigned or assigned to them."""
    by_org = [and_(ApprovalTask.org_id == org, ApprovalTask.role.in_(sorted(roles))) for org, roles in caller.roles.items()]
    if not by_org:
        return None
    mine = or_(ApprovalTask.assignee_user_id.is_(None), ApprovalTask.assignee_user_id == caller.user.id)
    return and_(ApprovalTask.status == TaskStatus.open, or_(*by_org), mine)


def inbox(engine: Engine, caller: Caller, stage: str | None, page: int, page_size: int) -> Page:
    where = _visible(caller)
    if where is None:
        return Page(items=[], total=0, page=page, page_size=page_size)
    if stage:
        where = and_(where, ApprovalTask.stage == stage)
    with Session(engine) as session:
        total = session.execute(select(func.count()).select_from(ApprovalTask).where(where)).scalar_one()
        rows = session.execute(
            select(ApprovalTask, Application.benefit, Application.approved_fen, Member.name)
            .join(Application, Application.id == ApprovalTask.application_id)
            .join(Member, Member.id == Application.member_id)
            .where(where).order_by(ApprovalTask.created_at, ApprovalTask.id)
            .offset((page - 1) * page_size).limit(page_size)
        ).all()
    items = [task_out(task, benefit=benefit, approved_fen=approved, member_name=name) for task, benefit, approved, name in rows]
    return Page(items=items, total=total, page=page, page_size=page_size)


def _task(engine: Engine, caller: Caller, task_id: str) -> ApprovalTask:
    with Session(engine) as session:
        task = session.get(ApprovalTask, task_id)
    if task is None or task.org_id not in caller.roles:
        raise not_found("任务", "Task")
    return task


@router.get("", response_model=Page, summary="My inbox, oldest first / 我的待办")
async def list_tasks(
    stage: str | None = Query(default=None, max_length=32, pattern=NO_CONTROL),
    page: int = Query(default=1, ge=1, le=100_000),
    page_size: int = Query(default=20, ge=1, le=200),
    caller: Caller = Depends(current_caller),
    engine: Engine = Depends(engine_of),
) -> Page:
    return await run_in_threadpool(inbox, engine, caller, stage, page, page_size)


@router.post("/{task_id}/decision", response_model=ApplicationOut, summary="Approve, reject or return / 审批")
async def decide(task_id: Annotated[str, Path(pattern=NO_CONTROL)], body: TaskDecision, caller: Caller = Depends(current_caller),
                 engine: Engine = Depends(engine_of), client: Client = Depends(temporal_of)) -> ApplicationOut:
    task = await run_in_threadpool(_task, engine, caller, task_id[:80])
    act = Act(caller.actor(task.org_id), task.id, body.action, body.comment, body.amount_fen)
    await _update(engine, client, caller, task.application_id, ApplicationWorkflow.act, act, action=body.action, task_id=task.id)
    snapshot = await client.get_workflow_handle(task.application_id).query(ApplicationWorkflow.snapshot)
    return await run_in_threadpool(application_out, engine, task.application_id, caller, snapshot)
