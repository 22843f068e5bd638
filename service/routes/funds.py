"""Funds per organisation and year: budget, reserved, spent; raising a budget wakes waiting applications."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Path, Query
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.client import Client

from service import ledger
from service.deps import Caller, current_caller, engine_of, temporal_of
from service.errors import not_found
from service.models import Application, AppStatus, Fund
from service.schemas import MAX_DB_ID, BudgetRaise, FundOut
from workflows.application import ApplicationWorkflow

router = APIRouter(prefix="/api/funds", tags=["funds"])
READERS = ("clerk", "chair", "committee", "auditor", "admin")
BUDGET_SETTERS = ("admin",)


def fund_out(f: Fund) -> FundOut:
    return FundOut(id=f.id, org_id=f.org_id, year=f.year, code=f.code, name_zh=f.name_zh, name_en=f.name_en,
                   budget_fen=f.budget_fen, reserved_fen=f.reserved_fen, spent_fen=f.spent_fen,
                   available_fen=f.budget_fen - f.reserved_fen - f.spent_fen)


def list_funds(engine: Engine, caller: Caller, year: int | None) -> list[FundOut]:
    orgs = caller.orgs_with(*READERS)
    with Session(engine) as session:
        query = select(Fund).where(Fund.org_id.in_(orgs or [-1]))
        if year is not None:
            query = query.where(Fund.year == year)
        return [fund_out(f) for f in session.execute(query.order_by(Fund.year.desc(), Fund.org_id, Fund.code)).scalars()]


def _raise(engine: Engine, caller: Caller, fund_id: int, amount: int, key: str) -> tuple[FundOut, list[str]]:
    with Session(engine) as session:
        fund = session.get(Fund, fund_id)
    if fund is None or not caller.has(fund.org_id, *READERS):
        raise not_found("经费", "Fund")
    caller.require(fund.org_id, *BUDGET_SETTERS)
    ledger.raise_budget(engine, fund_id, amount, f"budget:{fund_id}:{key}", caller.user.username)
    with Session(engine) as session:
        waiting = list(session.execute(select(Application.id).where(
            Application.org_id == fund.org_id, Application.status == AppStatus.awaiting_funds)).scalars())
        return fund_out(session.get(Fund, fund_id)), waiting


@router.get("", response_model=list[FundOut], summary="Funds and what is left / 经费")
async def list_(year: int | None = Query(default=None, ge=2000, le=2100), caller: Caller = Depends(current_caller),
                engine: Engine = Depends(engine_of)) -> list[FundOut]:
    return await run_in_threadpool(list_funds, engine, caller, year)


@router.post("/{fund_id}/budget", response_model=FundOut, summary="Raise a budget / 追加预算")
async def raise_budget(fund_id: Annotated[int, Path(ge=1, le=MAX_DB_ID)], body: BudgetRaise,
                       idempotency_key: str | None = Header(default=None, max_length=128),
                       caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of),
                       client: Client = Depends(temporal_of)) -> FundOut:
    out, waiting = await run_in_threadpool(_raise, engine, caller, fund_id, body.amount_fen, idempotency_key or uuid.uuid4().hex)
    for app_id in waiting:
        await client.get_workflow_handle(app_id).signal(ApplicationWorkflow.funds_available)
    return out
