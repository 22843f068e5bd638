"""Rebuild what the database should say from the histories, and list every disagreement.

Applications: status and approved amount (the workflow's own state, read by a query that replays
its history). Ledger: one entry per money activity that completed in history, with its amount.
Funds: reserved and spent as the histories add them up (when a whole year is audited).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.client import Client

from service.audit.history import RecordedApplication
from service.models import Application, Fund, LedgerEntry, LedgerKind
from workflows.application import ApplicationWorkflow


@dataclass
class Finding:
    subject: str  # application id or fund
    what: str
    expected: Any
    found: Any
    zh: str
    en: str


@dataclass
class ProjectionReport:
    applications: int
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings


def _expected_ledger(rec: RecordedApplication) -> Counter:
    entries: Counter = Counter()
    reserved = 0
    for move in rec.money:
        if not move.happened:
            continue
        amount = move.request["amount_fen"]
        if move.kind == "reserve":
            reserved = amount
        entries[(move.kind, reserved if move.kind in ("release", "disburse") else amount)] += 1
    return entries


async def expected_state(client: Client, rec: RecordedApplication) -> tuple[str | None, int | None]:
    """The workflow's status and amount: its result when finished, else a query (a replay of its history)."""
    try:
        snap = await client.get_workflow_handle(rec.workflow_id, run_id=rec.run_id).query(ApplicationWorkflow.snapshot)
        return snap.status, snap.approved_fen
    except Exception:  # noqa: BLE001 - no worker to answer: fall back to what history alone says
        return rec.result, None


async def audit(engine: Engine, client: Client, records: list[RecordedApplication], *, funds: bool = False) -> ProjectionReport:
    report = ProjectionReport(applications=len(records))
    ids = [r.workflow_id for r in records]
    with Session(engine) as session:
        rows = {a.id: a for a in session.execute(select(Application).where(Application.id.in_(ids))).scalars()}
        ledger_rows = session.execute(select(LedgerEntry).where(LedgerEntry.application_id.in_(ids))).scalars().all()
    found_ledger: dict[str, Counter] = defaultdict(Counter)
    for entry in ledger_rows:
        kind = entry.kind.value if hasattr(entry.kind, "value") else entry.kind
        found_ledger[entry.application_id][(kind, entry.amount_fen)] += 1
    for rec in records:
        app = rows.get(rec.workflow_id)
        if app is None:
            report.findings.append(Finding(rec.workflow_id, "application", "present", "missing",
                                           "数据库中缺少该申请", "The application is missing from the database"))
            continue
        status, approved = await expected_state(client, rec)
        stored_status = app.status.value if hasattr(app.status, "value") else app.status
        if status is not None and stored_status != status:
            report.findings.append(Finding(rec.workflow_id, "status", status, stored_status,
                                           f"状态应为 {status}，数据库为 {stored_status}", f"Status should be {status}, database has {stored_status}"))
        if approved is not None and app.approved_fen != approved:
            report.findings.append(Finding(rec.workflow_id, "approved_fen", approved, app.approved_fen,
                                           f"核定金额应为 {approved} 分，数据库为 {app.approved_fen} 分",
                                           f"Approved amount should be {approved} fen, database has {app.approved_fen}"))
        expected, found = _expected_ledger(rec), found_ledger.get(rec.workflow_id, Counter())
        for (kind, amount), count in (expected - found).items():
            report.findings.append(Finding(rec.workflow_id, f"ledger.{kind}", amount, None,
                                           f"缺少台账记录：{kind} {amount} 分（{count} 条）", f"Missing ledger entry: {kind} {amount} fen (x{count})"))
        for (kind, amount), count in (found - expected).items():
            report.findings.append(Finding(rec.workflow_id, f"ledger.{kind}", None, amount,
                                           f"多出台账记录：{kind} {amount} 分（{count} 条）", f"Ledger entry not in history: {kind} {amount} fen (x{count})"))
    if funds:
        report.findings += _fund_findings(engine, records)
    return report


def _fund_findings(engine: Engine, records: list[RecordedApplication]) -> list[Finding]:
    """Reserved and spent per fund, as the histories add them up, against the fund rows."""
    expected: dict[tuple[int, int, str], dict[str, int]] = defaultdict(lambda: {"reserved": 0, "spent": 0})
    for rec in records:
        reserved = 0
        for move in rec.money:
            if not move.happened:
                continue
            r = move.request
            totals = expected[(r["org_id"], r["fund_year"], r["fund_code"])]
            if move.kind == "reserve":
                reserved = r["amount_fen"]
                totals["reserved"] += reserved
            elif move.kind == "release":
                totals["reserved"] -= reserved
            else:
                totals["reserved"] -= reserved
                totals["spent"] += reserved
    findings = []
    with Session(engine) as session:
        for (org_id, year, code), totals in expected.items():
            fund = session.execute(select(Fund).where(Fund.org_id == org_id, Fund.year == year, Fund.code == code)).scalars().first()
            subject = f"fund {org_id}/{year}/{code}"
            for name, column in (("reserved", "reserved_fen"), ("spent", "spent_fen")):
                have = getattr(fund, column) if fund else None
                if have != totals[name]:
                    findings.append(Finding(subject, column, totals[name], have,
                                            f"经费{ {'reserved': '预留', 'spent': '已支出'}[name] }应为 {totals[name]} 分，数据库为 {have} 分",
                                            f"Fund {name} should be {totals[name]} fen, database has {have}"))
        budgets = session.execute(select(Fund)).scalars().all()
        for fund in budgets:
            entries = session.execute(select(LedgerEntry.amount_fen).where(LedgerEntry.fund_id == fund.id,
                                                                           LedgerEntry.kind == LedgerKind.budget)).scalars().all()
            if sum(entries) != fund.budget_fen:
                findings.append(Finding(f"fund {fund.org_id}/{fund.year}/{fund.code}", "budget_fen", sum(entries), fund.budget_fen,
                                        f"预算应为台账合计 {sum(entries)} 分，数据库为 {fund.budget_fen} 分",
                                        f"Budget should equal its ledger entries, {sum(entries)} fen; database has {fund.budget_fen}"))
    return findings
