"""Warmth campaigns (送温暖) and scheduled gifts: launch and watch a campaign, its 签领表; the gifts due
next; the chair's one-action sign-off of a month's batch of gifts."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from dataclasses import asdict
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.client import Client, WithStartWorkflowOperation, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from activities.campaign import recipient_table, recipients
from rules.loader import default_registry
from service import gifts
from service.audit.reports import to_csv, yuan
from service.deps import Caller, current_caller, engine_of, temporal_of
from service.errors import FORBIDDEN, ApiError, invalid, not_found
from service.models import Application, ApprovalTask, TaskStatus
from service.routes.applications import refusal
from workflows.application import CHINA, ApplicationWorkflow
from workflows.campaign import CampaignWorkflow
from workflows.campaign_types import NAME, REFUSED, CampaignInput, Progress, campaign_id
from workflows.types import APPROVE, BATCH_SIGN_OFF, Act

router = APIRouter(tags=["campaigns and scheduled gifts"])
LAUNCHERS = ("admin",)
READERS = ("clerk", "chair", "committee", "auditor", "admin")
SIGNERS = ("chair",)
CAMPAIGN_ID = re.compile(r"^CAMPAIGN-([0-9]{1,10})-([0-9]{4})-([a-z0-9][a-z0-9_-]{0,31})$")
SIGN_OFF_CONCURRENCY = 20


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=NAME.pattern, description="e.g. spring-festival; with the year, the campaign's key")
    year: int = Field(ge=2000, le=2100, description="the fund year paid from")
    fund: str | None = Field(default=None, pattern=r"^[a-z][a-z0-9_]*$", max_length=48,
                             description="fund code; default: the policy's hardship.warmth_fund")
    org_id: int | None = Field(default=None, ge=1, le=2**31 - 1, description="needed only by admins of several unions")
    as_of: dt.date | None = Field(default=None, description="files active on this day; default today (China)")
    title: str | None = Field(default=None, max_length=80, pattern=r"^[^\x00-\x1f\x7f]*$")


def _org_for_launch(caller: Caller, body: CampaignCreate) -> int:
    orgs = caller.orgs_with(*LAUNCHERS)
    if body.org_id is not None:
        if body.org_id not in orgs:
            raise FORBIDDEN
        return body.org_id
    if not orgs:
        raise FORBIDDEN
    if len(orgs) > 1:
        raise invalid("org_id", "您管理多个工会，请指定 org_id", "You administer several unions: give org_id")
    return orgs[0]


def _progress_out(p: Progress) -> dict:
    out = asdict(p)
    out["total_yuan"], out["paid_yuan"] = yuan(p.total_fen), yuan(p.paid_fen)
    return out


def _refused_error(p: Progress) -> ApiError:
    r = p.refusal or {}
    return ApiError(409, r.get("code", "refused"), r.get("zh", "活动被拒绝"), r.get("en", "The campaign was refused"),
                    extra={"campaign": _progress_out(p)})


@router.post("/api/campaigns", status_code=201, summary="Launch a warmth campaign / 发起送温暖活动")
async def launch(body: CampaignCreate, request: Request, response: Response, caller: Caller = Depends(current_caller),
                 client: Client = Depends(temporal_of)) -> dict:
    org_id = _org_for_launch(caller, body)
    as_of = body.as_of or dt.datetime.now(CHINA).date()
    loaded = default_registry().for_date(as_of)
    if loaded is None:
        raise invalid("as_of", f"{as_of} 没有生效的福利政策", f"No policy is in force on {as_of}")
    if body.fund is not None and body.fund not in {f.code for f in loaded.policy.funds}:
        raise invalid("fund", f"未知的经费：{body.fund}", f"Unknown fund {body.fund!r}")
    cid = campaign_id(org_id, body.year, body.name)
    inp = CampaignInput(campaign_id=cid, org_id=org_id, year=body.year, name=body.name,
                        as_of=as_of.isoformat(), launched_by=caller.user.username,
                        fund_code=body.fund, title=body.title)
    start = WithStartWorkflowOperation(CampaignWorkflow.run, inp, id=cid, task_queue=request.app.state.task_queue,
                                       id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                                       # a refused (failed) campaign may be launched again, e.g. after a budget rise
                                       id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
    try:
        progress = await client.execute_update_with_start_workflow(CampaignWorkflow.await_plan, start_workflow_operation=start)
    except WorkflowAlreadyStartedError:  # finished already: launching again changes nothing
        progress = await client.get_workflow_handle(cid).query(CampaignWorkflow.progress)
        response.status_code = 200
    if progress.state == REFUSED:
        raise _refused_error(progress)
    return _progress_out(progress)


def _campaign_org(caller: Caller, cid: str) -> int:
    match = CAMPAIGN_ID.match(cid)
    if match is None or not caller.has(int(match.group(1)), *READERS):
        raise not_found("活动", "Campaign")
    return int(match.group(1))


async def _progress(client: Client, cid: str) -> Progress:
    try:
        return await client.get_workflow_handle(cid).query(CampaignWorkflow.progress)
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            raise not_found("活动", "Campaign") from None
        raise


CampaignPath = Annotated[str, Path(max_length=64, pattern=CAMPAIGN_ID.pattern)]


@router.get("/api/campaigns/{cid}", summary="A campaign's progress: done / pending / failed / 活动进度")
async def get_campaign(cid: CampaignPath, caller: Caller = Depends(current_caller), client: Client = Depends(temporal_of)) -> dict:
    _campaign_org(caller, cid)
    return _progress_out(await _progress(client, cid))


@router.get("/api/campaigns/{cid}/recipients", summary="The campaign's recipients list / 签领表")
async def campaign_recipients(cid: CampaignPath, format: Literal["json", "csv"] = "json",  # noqa: A002
                              caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)):
    org_id = _campaign_org(caller, cid)
    if format == "csv":
        table = await run_in_threadpool(recipient_table, engine, cid, org_id)
        return Response(to_csv([table]), media_type="text/csv; charset=utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{cid}-recipients.csv"'})
    rows = await run_in_threadpool(recipients, engine, cid)
    total = sum(r.amount_fen for r in rows)
    return {"campaign_id": cid, "count": len(rows), "total_fen": total, "total_yuan": yuan(total),
            "rows": [r.as_dict() for r in rows]}


# --- scheduled gifts ------------------------------------------------------------------------------

@router.get("/api/gifts/upcoming", summary="Scheduled gifts due in the next days / 即将发放的定时慰问")
async def upcoming(days: int = Query(default=30, ge=1, le=366), caller: Caller = Depends(current_caller),
                   engine: Engine = Depends(engine_of)) -> dict:
    orgs = caller.orgs_with(*READERS)
    if not orgs:
        raise FORBIDDEN
    today = dt.datetime.now(CHINA).date()
    found = await run_in_threadpool(gifts.upcoming, engine, orgs, today, days)
    return {"from": today.isoformat(), "days": days, "count": len(found), "items": [
        {"member_id": g.member_id, "member_no": g.member_no, "name": g.name, "org_id": g.org_id, "benefit": g.benefit,
         "date": g.gift_date.isoformat(), "amount_fen": g.amount_fen, "batch": g.batch} for g in found]}


MonthPath = Annotated[str, Path(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", description="yyyy-mm")]


def _batch_tasks(engine: Engine, orgs: list[int], month: str) -> list[tuple[str, str, int]]:
    year, mon = int(month[:4]), int(month[5:])
    first = dt.date(year, mon, 1)
    after = dt.date(year + mon // 12, mon % 12 + 1, 1)
    query = (select(ApprovalTask.id, ApprovalTask.application_id, ApprovalTask.org_id)
             .join(Application, Application.id == ApprovalTask.application_id)
             .where(ApprovalTask.stage == BATCH_SIGN_OFF, ApprovalTask.status == TaskStatus.open,
                    ApprovalTask.org_id.in_(orgs), Application.event_date >= first, Application.event_date < after)
             .order_by(ApprovalTask.application_id, ApprovalTask.id))
    with Session(engine) as session:
        rows = session.execute(query).all()
    seen: set[str] = set()
    one_each = []
    for task_id, app_id, org_id in rows:  # an escalated copy of a task is the same decision
        if app_id not in seen:
            seen.add(app_id)
            one_each.append((task_id, app_id, org_id))
    return one_each


@router.post("/api/gifts/batches/{month}/sign-off", summary="The chair signs off a month's gifts / 主席批量签发")
async def sign_off(month: MonthPath, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                   client: Client = Depends(temporal_of)) -> dict:
    orgs = caller.orgs_with(*SIGNERS)
    if not orgs:
        raise FORBIDDEN
    tasks = await run_in_threadpool(_batch_tasks, engine, orgs, month)
    gate = asyncio.Semaphore(SIGN_OFF_CONCURRENCY)
    signed: list[str] = []
    refused: list[dict] = []

    async def one(task_id: str, app_id: str, org_id: int) -> None:
        act = Act(caller.actor(org_id), task_id, APPROVE, f"{month} 批量签发 batch sign-off")
        async with gate:
            try:
                await client.get_workflow_handle(app_id).execute_update(ApplicationWorkflow.act, act)
                signed.append(app_id)
            except WorkflowUpdateFailedError as exc:  # e.g. the chair's own birthday (回避): recorded, left open
                err = await run_in_threadpool(refusal, engine, exc, app_id, caller, APPROVE, task_id)
                refused.append({"application_id": app_id, "code": err.code, "reason_zh": err.zh, "reason_en": err.en})
            except RPCError as exc:
                if exc.status != RPCStatusCode.NOT_FOUND:
                    raise
                refused.append({"application_id": app_id, "code": "finished", "reason_zh": "该申请的流程已经结束",
                                "reason_en": "This application's process has already finished"})

    await asyncio.gather(*(one(*task) for task in tasks))
    return {"month": month, "signed": len(signed), "refused": sorted(refused, key=lambda r: r["application_id"]),
            "application_ids": sorted(signed)}
