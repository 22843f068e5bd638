"""The auditor's workbench over HTTP: timelines, replay, re-checked decisions, projection audit, what-if."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from pydantic import Field
from sqlalchemy import Engine
from sqlmodel import Session
from temporalio.client import Client

from rules.loader import PolicyError, default_registry, parse_policy
from service.audit import projection_audit, recheck, replay, timeline, whatif
from service.audit.history import decode, fetch_one
from service.audit.selection import Selection, histories, records_of
from service.deps import Caller, current_caller, engine_of, temporal_of
from service.errors import FORBIDDEN, invalid, not_found
from service.models import Application
from service.schemas import Strict

router = APIRouter(prefix="/api/audit", tags=["audit"])
AUDIT_ROLES = ("auditor", "chair", "admin")
MAX_POLICY_BYTES = 512 * 1024


class Scope(Strict):
    ids: list[Annotated[str, Field(max_length=40)]] | None = Field(default=None, max_length=1000)
    year: Annotated[int, Field(ge=2000, le=2100)] | None = None
    funds: bool = False


def _orgs(caller: Caller) -> set[int]:
    orgs = set(caller.orgs_with(*AUDIT_ROLES))
    if not orgs:
        raise FORBIDDEN
    return orgs


def _check_ids(engine: Engine, caller: Caller, ids: list[str]) -> None:
    orgs = _orgs(caller)
    with Session(engine) as session:
        for app_id in ids:
            app = session.get(Application, app_id)
            if app is None or app.org_id not in orgs:
                raise not_found("申请", f"Application {app_id}")


async def _records(engine: Engine, client: Client, caller: Caller, scope: Scope):
    orgs = _orgs(caller)
    if not scope.ids and scope.year is None:
        raise invalid("year", "请给出申请编号或年度", "Give application ids or a year")
    if scope.ids:
        await run_in_threadpool(_check_ids, engine, caller, scope.ids)
    found = await histories(client, Selection(ids=scope.ids, year=scope.year))
    return found, records_of(found, orgs)


@router.get("/applications/{app_id}/timeline", summary="Timeline of one application / 申请时间线")
async def get_timeline(app_id: str, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                       client: Client = Depends(temporal_of)) -> dict:
    await run_in_threadpool(_check_ids, engine, caller, [app_id[:40]])
    rec = decode(await fetch_one(client, app_id[:40]))
    entries = await run_in_threadpool(timeline.build, engine, rec)
    return {"application_id": rec.workflow_id, "entries": [asdict(e) for e in entries]}


@router.post("/replay", summary="Replay histories against the current code / 重放校验")
async def post_replay(scope: Scope, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                      client: Client = Depends(temporal_of)) -> dict:
    found, records = await _records(engine, client, caller, scope)
    mine = {r.run_id for r in records}
    outcomes = await replay.replay([h for h in found if h.run_id in mine])
    return {"histories": len(outcomes), "failed": sum(not o.ok for o in outcomes),
            "outcomes": [asdict(o) | {"zh": o.zh} for o in outcomes]}


@router.post("/recheck", summary="Re-check recorded decisions / 复核规则判定")
async def post_recheck(scope: Scope, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                       client: Client = Depends(temporal_of)) -> dict:
    _, records = await _records(engine, client, caller, scope)
    report = await run_in_threadpool(recheck.recheck, records, default_registry())
    return {"decisions": report.decisions, "ok": report.ok, "differences": [asdict(d) for d in report.differences]}


@router.post("/projection", summary="Database against histories / 数据一致性核查")
async def post_projection(scope: Scope, caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                          client: Client = Depends(temporal_of)) -> dict:
    _, records = await _records(engine, client, caller, scope)
    report = await projection_audit.audit(engine, client, records, funds=scope.funds)
    return {"applications": report.applications, "ok": report.ok, "findings": [asdict(f) for f in report.findings]}


@router.post("/what-if", summary="A proposed policy over past applications / 政策模拟")
async def post_what_if(policy: UploadFile = File(...), year: int = Form(default_factory=lambda: dt.date.today().year, ge=2000, le=2100),
                       caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                       client: Client = Depends(temporal_of)) -> dict:
    content = await policy.read(MAX_POLICY_BYTES + 1)
    if len(content) > MAX_POLICY_BYTES:
        raise invalid("policy", "政策文件过大", "The policy file is too large")
    try:
        proposed = parse_policy(content.decode("utf-8"), policy.filename or "proposed.yaml")
    except (PolicyError, UnicodeDecodeError) as exc:
        reason = exc.reason if isinstance(exc, PolicyError) else "not UTF-8 text"
        where = exc.path if isinstance(exc, PolicyError) else ""
        raise invalid("policy", f"政策文件无效：{where} {reason}", f"Invalid policy: {where} {reason}") from None
    _, records = await _records(engine, client, caller, Scope(year=year))
    report = await run_in_threadpool(whatif.what_if, records, proposed)
    return {"policy_version": report.policy_version, "policy_hash": report.policy_hash, "difference_fen": report.difference_fen,
            "benefits": {code: asdict(b) | {"difference_fen": b.difference_fen} for code, b in report.benefits.items()},
            "not_evaluable": report.not_evaluable}
