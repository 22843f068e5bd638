"""Auditors' reports: 财务报表 and 签领表 (JSON, CSV, XLSX) and the audit log's hash-chain check."""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from sqlalchemy import Engine

from service.audit import reports
from service.audit.chain import verify_chain
from service.deps import Caller, current_caller, engine_of
from service.errors import FORBIDDEN, invalid
from workflows.application import CHINA

router = APIRouter(prefix="/api/audit", tags=["audit"])
READERS = ("auditor", "chair", "admin")
FORMATS = ("json", "csv", "xlsx")
MEDIA = {"csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _org(caller: Caller, org_id: int | None) -> int:
    """The organisation asked for, or the caller's first one where they may read reports."""
    if org_id is None:
        allowed = caller.orgs_with(*READERS)
        if not allowed:
            raise FORBIDDEN
        return allowed[0]
    caller.require(org_id, *READERS)
    return org_id


def _year(year: int | None) -> int:
    if year is None:
        return dt.datetime.now(CHINA).year
    if not 2000 <= year <= 2100:
        raise invalid("year", "年份须在 2000 至 2100 之间", "year must be between 2000 and 2100")
    return year


def _format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise invalid("format", "格式须为 json、csv 或 xlsx", "format must be json, csv or xlsx")
    return fmt


def _download(tables: list[reports.Table], fmt: str, name_en: str, name_zh: str) -> Response:
    body = reports.to_csv(tables) if fmt == "csv" else reports.to_xlsx(tables)
    ascii_name = re.sub(r"[^A-Za-z0-9._-]", "_", f"{name_en}.{fmt}")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(f'{name_zh}.{fmt}')}"
    return Response(body, media_type=MEDIA[fmt], headers={"Content-Disposition": disposition, "Cache-Control": "no-store"})


@router.get("/reports/annual", summary="Annual financial report / 年度财务报表")
async def annual(year: int | None = Query(default=None, description="default: this year"),
                 org_id: int | None = Query(default=None, description="default: your first organisation"),
                 format: str = Query(default="json", description="json, csv or xlsx"),
                 caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)):
    org, fmt, year = _org(caller, org_id), _format(format), _year(year)
    report = await run_in_threadpool(reports.annual_report, engine, org, year)
    if fmt == "json":
        return report.as_dict()
    return _download(reports.annual_tables(report), fmt, f"annual-report-{report.org_code}-{year}",
                     f"财务报表-{report.org_code}-{year}")


@router.get("/reports/recipients", summary="Recipients list of one batch / 签领表")
async def recipients(month: int = Query(description="1-12, the month paid (China time)"),
                     benefit: str = Query(max_length=48, description="benefit code, e.g. birthday; warmth for the 送温暖 campaigns"),
                     year: int | None = Query(default=None, description="default: this year"),
                     org_id: int | None = Query(default=None, description="default: your first organisation"),
                     format: str = Query(default="json", description="json, csv or xlsx"),
                     caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)):
    org, fmt, year = _org(caller, org_id), _format(format), _year(year)
    if not 1 <= month <= 12:
        raise invalid("month", "月份须在 1 至 12 之间", "month must be between 1 and 12")
    if benefit not in reports.report_benefits(year):
        raise invalid("benefit", f"没有这个福利项目：{benefit}", f"No such benefit: {benefit}")
    batch = await run_in_threadpool(reports.recipients, engine, org, year, month, benefit)
    if fmt == "json":
        return batch.as_dict()
    stem = f"{batch.org_code}-{year}-{month:02d}-{benefit}"
    return _download([reports.recipient_table(batch)], fmt, f"recipients-{stem}", f"签领表-{stem}")


@router.get("/chain", summary="Verify the audit log's hash chain / 校验审计日志")
async def chain(caller: Caller = Depends(current_caller), engine: Engine = Depends(engine_of)) -> dict:
    # The log spans every organisation; the result names only event ids, so any auditor, chair or admin may run it.
    if not caller.orgs_with(*READERS):
        raise FORBIDDEN
    return (await run_in_threadpool(verify_chain, engine)).as_dict()
