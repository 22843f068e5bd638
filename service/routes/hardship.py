"""Hardship files (困难职工档案): open, list, read, and every step of a file's life.

A file is one long-lived workflow (workflows.hardship_file, id ``HF-<member id>-<n>``); its HardshipFile
rows (one per period) and its audit-log entries are the projection read here. Each step is a Temporal
Update carrying the caller as an Actor; the workflow's validators refuse the wrong role, stage or a
conflict of interest, and a refusal is written to the audit log.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AfterValidator, BaseModel, Field
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from rules.facts import Household
from service import audit_log
from service.deps import Caller, current_caller, engine_of, temporal_of
from service.errors import FORBIDDEN, ApiError, invalid, not_found
from service.models import AuditEvent, HardshipFile, Member
from service.schemas import MAX_DB_ID, NO_CONTROL, DbId, Objection, Page, Strict
from service.security import mask_personal_numbers
from workflows import hardship_types as h
from workflows.hardship_file import CHINA, HardshipFileWorkflow
from workflows.hardship_types import FileInput, Vote

router = APIRouter(prefix="/api/hardship-files", tags=["hardship files"])
STAFF = ("clerk", "chair", "committee", "auditor", "admin")
OPENERS = ("clerk", "admin")
FORBIDDEN_CODES = {"wrong_role", "own_file", "relative", "not_assignee"}
FileId = Annotated[str, Path(pattern=r"^HF-[0-9]{1,10}-[0-9]{1,6}$", description="the file id (its workflow id)")]
Text = Annotated[str, Field(min_length=1, max_length=2000), AfterValidator(mask_personal_numbers)]
Note = Annotated[str, Field(max_length=2000), AfterValidator(mask_personal_numbers)]


# --- what is accepted and returned ----------------------------------------------------------

class FileOpen(Strict):
    member_id: DbId | None = Field(default=None, description="omit to open a file for yourself")
    household: Household = Field(description="household members, yearly income and unavoidable costs, excluding assets")
    causes: Text = Field(description="致困原因: what brought the household into hardship")


class CheckIn(Strict):
    action: Literal["approve", "reject"]
    comment: Note | None = None


class VisitIn(Strict):
    findings: Text = Field(description="入户调查 findings")
    household: Household = Field(description="the household as the visit found it: this is what the rules assess")


class VoteIn(Strict):
    action: Literal["approve", "reject"]
    comment: Note | None = None


class ReviewIn(Strict):
    household: Household = Field(description="the household as it is now (年度复核)")
    note: Note | None = None


class CloseIn(Strict):
    reason: Literal["left_hardship", "retired", "moved", "died"]
    note: Note | None = None


class PeriodOut(BaseModel):
    period: int
    tier: str | None
    status: str
    stage: str
    active_from: dt.date | None  # None until the period was granted
    active_until: dt.date | None
    closed_reason: str | None = None


class FileOut(BaseModel):
    file_id: str | None  # None: a file entered by hand before files had workflows
    member_id: int
    member_name: str | None = None
    org_id: int
    stage: str
    status: str
    tier: str | None
    in_force: bool  # some period of the file supports assistance today (依档帮扶)
    active_from: dt.date | None
    active_until: dt.date | None
    closed_reason: str | None = None
    assessment: dict[str, Any] | None = None
    periods: list[PeriodOut] = []
    story: list[dict[str, Any]] = []


# --- reading ---------------------------------------------------------------------------------

def _granted(row: HardshipFile) -> bool:
    return row.status in (h.ROW_ACTIVE, h.ROW_CLOSED) and row.tier != "" and row.active_until > row.active_from


def _in_force(rows: list[HardshipFile], today: dt.date) -> bool:
    return any(r.status == h.ROW_ACTIVE and r.active_from <= today <= r.active_until for r in rows)


def _period_out(row: HardshipFile) -> PeriodOut:
    granted = _granted(row)
    return PeriodOut(period=row.period, tier=row.tier or None, status=row.status, stage=row.stage,
                     active_from=row.active_from if granted else None, active_until=row.active_until if granted else None,
                     closed_reason=row.closed_reason)


def _file_out(rows: list[HardshipFile], member: Member | None, today: dt.date, full: bool = False) -> FileOut:
    rows = sorted(rows, key=lambda r: r.period)
    last = rows[-1]
    p = _period_out(last)
    out = FileOut(file_id=last.file_id, member_id=last.member_id, member_name=member.name if member else None,
                  org_id=member.org_id if member else 0, stage=last.stage, status=last.status, tier=p.tier,
                  in_force=_in_force(rows, today), active_from=p.active_from, active_until=p.active_until,
                  closed_reason=last.closed_reason)
    if full:
        out.assessment = last.assessment or None
        out.periods = [_period_out(r) for r in rows]
    return out


def can_read(caller: Caller, member: Member) -> bool:
    return member.id == caller.user.member_id or caller.has(member.org_id, *STAFF)


def _today() -> dt.date:
    return dt.datetime.now(CHINA).date()


def file_detail(engine: Engine, caller: Caller, file_id: str) -> FileOut:
    with Session(engine) as session:
        rows = session.execute(select(HardshipFile).where(HardshipFile.file_id == file_id)).scalars().all()
        member = session.get(Member, rows[0].member_id) if rows else None
        if not rows or member is None or not can_read(caller, member):
            raise not_found("困难职工档案", "Hardship file")  # another union's file is not even said to exist
        events = session.execute(select(AuditEvent).where(AuditEvent.application_id == file_id)
                                 .order_by(AuditEvent.id)).scalars().all()
    out = _file_out(list(rows), member, _today(), full=True)
    story = []
    for e in events:
        detail = dict(e.detail)
        at = detail.pop("at", None) or e.at.isoformat()
        story.append({"at": at, "action": e.action.removeprefix("hardship_"), "actor": e.actor, "detail": detail})
    out.story = story
    return out


def list_files(engine: Engine, caller: Caller, tier: str | None, status: str | None, stage: str | None,
               member_id: int | None, page: int, page_size: int) -> Page:
    staff_orgs = caller.orgs_with(*STAFF)
    with Session(engine) as session:
        query = select(HardshipFile, Member).join(Member, Member.id == HardshipFile.member_id)
        own = caller.user.member_id
        if staff_orgs and own is not None:
            query = query.where((Member.org_id.in_(staff_orgs)) | (HardshipFile.member_id == own))
        elif staff_orgs:
            query = query.where(Member.org_id.in_(staff_orgs))
        elif own is not None:
            query = query.where(HardshipFile.member_id == own)
        else:
            return Page(items=[], total=0, page=page, page_size=page_size)
        if member_id is not None:
            query = query.where(HardshipFile.member_id == member_id)
        found = session.execute(query.order_by(HardshipFile.id)).all()
    files: dict[str, tuple[list[HardshipFile], Member]] = {}
    for row, member in found:
        key = row.file_id or f"row-{row.id}"
        files.setdefault(key, ([], member))[0].append(row)
    today = _today()
    items = [_file_out(rows, member, today) for rows, member in files.values()]
    items = [f for f in items if (tier is None or f.tier == tier) and (status is None or f.status == status)
             and (stage is None or f.stage == stage)]
    items.reverse()  # newest first
    return Page(items=items[(page - 1) * page_size: page * page_size], total=len(items), page=page, page_size=page_size)


# --- opening ---------------------------------------------------------------------------------

def reserve_file(engine: Engine, caller: Caller, body: FileOpen) -> tuple[Member, str]:
    """Check who may open it, refuse a second open file, and write the file's pending row under a fresh id."""
    member_id = body.member_id or caller.user.member_id
    if member_id is None:
        raise invalid("member_id", "请选择为哪位会员建档", "Say which member this file is for")
    opened = _today()
    for _ in range(10):
        with Session(engine) as session:
            member = session.get(Member, member_id)
            if member is None:
                raise invalid("member_id", "会员不存在", "No such member")
            if not (member.id == caller.user.member_id or caller.has(member.org_id, *OPENERS)):
                raise FORBIDDEN
            rows = session.execute(select(HardshipFile).where(HardshipFile.member_id == member_id,
                                                              HardshipFile.file_id.is_not(None))).scalars().all()
            latest: dict[str, HardshipFile] = {}
            for r in rows:
                if r.file_id not in latest or r.period > latest[r.file_id].period:
                    latest[r.file_id] = r
            still_open = [fid for fid, r in latest.items() if r.status in (h.ROW_PENDING, h.ROW_ACTIVE)]
            if still_open:
                raise ApiError(409, "file_open", f"该会员已有未结束的困难职工档案 {still_open[0]}",
                               f"The member already has an open hardship file, {still_open[0]}", extra={"file_id": still_open[0]})
            n = max((int(fid.rsplit("-", 1)[1]) for fid in latest), default=0) + 1
        file_id = f"HF-{member_id}-{n}"
        try:
            with Session(engine) as session, session.begin():
                session.add(HardshipFile(member_id=member_id, file_id=file_id, period=1, tier="", status=h.ROW_PENDING,
                                         stage=h.CLERK_CHECK, active_from=opened, active_until=opened, assessment={}))
            return member, file_id
        except IntegrityError:
            continue  # someone opened one at the same moment: look again
    raise ApiError(409, "busy", "请稍后重试", "Try again shortly")


def forget_unstarted(engine: Engine, file_id: str) -> None:
    with Session(engine) as session, session.begin():
        row = session.execute(select(HardshipFile).where(HardshipFile.file_id == file_id, HardshipFile.period == 1,
                                                         HardshipFile.status == h.ROW_PENDING)).scalars().first()
        if row is not None:
            session.delete(row)


async def start_file(client: Client, inp: FileInput, task_queue: str) -> None:
    await client.start_workflow(HardshipFileWorkflow.run, inp, id=inp.file_id, task_queue=task_queue,
                                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE)


# --- steps -----------------------------------------------------------------------------------

def _member_for(engine: Engine, caller: Caller, file_id: str) -> Member:
    with Session(engine) as session:
        row = session.execute(select(HardshipFile).where(HardshipFile.file_id == file_id)).scalars().first()
        member = session.get(Member, row.member_id) if row else None
    if member is None or not (can_read(caller, member) or caller.member_org_id == member.org_id):
        raise not_found("困难职工档案", "Hardship file")
    return member


def _refusal(engine: Engine, exc: WorkflowUpdateFailedError, file_id: str, caller: Caller, action: str) -> ApiError:
    cause = exc.cause
    details = cause.details[0] if getattr(cause, "details", None) else {}
    code, zh, en = details.get("code", "refused"), details.get("zh", "操作被拒绝"), details.get("en", str(cause))
    audit_log.append_with_retry(engine, f"refused:{uuid.uuid4().hex}", file_id, caller.user.username, "refused",
                                {"attempted": action, "code": code, "reason_zh": zh, "reason_en": en})
    return ApiError(403 if code in FORBIDDEN_CODES else 409, code, zh, en)


async def _step(engine: Engine, client: Client, caller: Caller, file_id: str, update, *args, action: str, staff: bool = True,
                with_actor: bool = True) -> Member:
    """Run one Update as the caller; a refusal becomes a 403/409 and an audit-log entry."""
    member = await run_in_threadpool(_member_for, engine, caller, file_id)
    if staff and not caller.has(member.org_id, *STAFF):
        raise FORBIDDEN if can_read(caller, member) else not_found("困难职工档案", "Hardship file")
    handle = client.get_workflow_handle(file_id)
    actor = caller.actor(member.org_id)
    try:
        await handle.execute_update(update, args=[actor, *args] if with_actor else [a(actor) if callable(a) else a for a in args])
    except WorkflowUpdateFailedError as exc:
        raise await run_in_threadpool(_refusal, engine, exc, file_id, caller, action) from None
    except RPCError as exc:
        if exc.status != RPCStatusCode.NOT_FOUND:
            raise
        raise ApiError(409, "finished", "该档案的流程已经结束", "This file's process has already finished") from None
    return member


# --- endpoints -------------------------------------------------------------------------------

@router.post("", status_code=201, response_model=FileOut, summary="Open a hardship file / 困难职工建档申请")
async def open_file(request: Request, body: FileOpen, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                    client: Client = Depends(temporal_of)) -> FileOut:
    member, file_id = await run_in_threadpool(reserve_file, engine, caller, body)
    actor = caller.actor(member.org_id)
    inp = FileInput(file_id, member.org_id, member.id, actor, _today().isoformat(), body.household.model_dump(mode="json"),
                    body.causes)
    try:
        await start_file(client, inp, request.app.state.task_queue)
    except BaseException as exc:
        # No workflow, no file: take the pending row back so the member can open one when Temporal answers again.
        await run_in_threadpool(forget_unstarted, engine, file_id)
        if isinstance(exc, WorkflowAlreadyStartedError):
            raise ApiError(409, "file_id_taken", "档案编号已被占用，请重试", "That file id is already taken; try again") from None
        raise
    return await run_in_threadpool(file_detail, engine, caller, file_id)


@router.get("", response_model=Page, summary="Hardship files, newest first / 困难职工档案列表")
async def list_(
    tier: Literal["deep", "relative", "accident"] | None = None,
    status: Literal["pending", "active", "closed", "rejected"] | None = None,
    stage: str | None = Query(default=None, max_length=24, pattern=NO_CONTROL),
    member_id: int | None = Query(default=None, ge=1, le=MAX_DB_ID),
    page: int = Query(default=1, ge=1, le=100_000),
    page_size: int = Query(default=20, ge=1, le=200),
    caller: Caller = Depends(current_caller),
    engine: Engine = Depends(engine_of),
) -> Page:
    return await run_in_threadpool(list_files, engine, caller, tier, status, stage, member_id, page, page_size)


@router.get("/{file_id}", response_model=FileOut, summary="One file: periods, tiers and its whole story / 档案详情")
async def get_file(file_id: FileId, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> FileOut:
    return await run_in_threadpool(file_detail, engine, caller, file_id)


@router.post("/{file_id}/check", response_model=FileOut, summary="Preliminary check by a clerk / 初审")
async def check(file_id: FileId, body: CheckIn, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                client: Client = Depends(temporal_of)) -> FileOut:
    await _step(engine, client, caller, file_id, HardshipFileWorkflow.check, body.action, body.comment, action="check")
    return await run_in_threadpool(file_detail, engine, caller, file_id)


@router.post("/{file_id}/visit", response_model=FileOut, summary="Home-visit report; the rules assess the tier / 入户调查")
async def visit(file_id: FileId, body: VisitIn, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                client: Client = Depends(temporal_of)) -> FileOut:
    await _step(engine, client, caller, file_id, HardshipFileWorkflow.visit, body.findings, body.household.model_dump(mode="json"),
                action="visit")
    return await run_in_threadpool(file_detail, engine, caller, file_id)


@router.post("/{file_id}/votes", response_model=FileOut, summary="Committee vote (or the chair's decision) / 集体研究表决")
async def vote(file_id: FileId, body: VoteIn, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
               client: Client = Depends(temporal_of)) -> FileOut:
    await _step(engine, client, caller, file_id, HardshipFileWorkflow.vote, lambda actor: Vote(actor, body.action, body.comment),
                action="vote", with_actor=False)
    return await run_in_threadpool(file_detail, engine, caller, file_id)


@router.post("/{file_id}/objections", response_model=FileOut, summary="Object during the public notice / 公示异议")
async def object_(file_id: FileId, body: Objection, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                  client: Client = Depends(temporal_of)) -> FileOut:
    # Any member of the union may object to a notice; the answer shows the file only to those who may read it.
    member = await _step(engine, client, caller, file_id, HardshipFileWorkflow.object, body.text, action="object", staff=False)
    if can_read(caller, member):
        return await run_in_threadpool(file_detail, engine, caller, file_id)
    return FileOut(file_id=file_id, member_id=member.id, org_id=member.org_id, stage=h.COMMITTEE_VOTE, status=h.ROW_PENDING,
                   tier=None, in_force=False, active_from=None, active_until=None)


@router.post("/{file_id}/review", response_model=FileOut, summary="Yearly review with the household as it is now / 年度复核")
async def review(file_id: FileId, body: ReviewIn, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                 client: Client = Depends(temporal_of)) -> FileOut:
    await _step(engine, client, caller, file_id, HardshipFileWorkflow.submit_review, body.household.model_dump(mode="json"),
                body.note, action="review")
    return await run_in_threadpool(file_detail, engine, caller, file_id)


@router.post("/{file_id}/close", response_model=FileOut, summary="Close the file / 注销档案")
async def close(file_id: FileId, body: CloseIn, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                client: Client = Depends(temporal_of)) -> FileOut:
    await _step(engine, client, caller, file_id, HardshipFileWorkflow.close, body.reason, body.note, action="close")
    return await run_in_threadpool(file_detail, engine, caller, file_id)
