"""财务报表 (annual report) and 签领表 (recipients list), from the money ledger, with CSV and XLSX exports.

Every figure comes from ``LedgerEntry`` rows: budget entries make the budgets, disburse entries
(joined to their applications for the benefit, dated by the payment in China time) make what was
spent; warmth-campaign payments have no application and are told by their ledger reference. The fund rows' own running totals are only compared against them, in the reconciliation.
Money is integer fen throughout; it becomes yuan text ("12.34") only when exported.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Font
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from rules.loader import default_registry
from service.models import Application, Fund, LedgerEntry, LedgerKind, Member, Organisation
from workflows.application import CHINA
from workflows.campaign_types import member_of_payment_ref

FORMS = {"cash": ("现金", "Cash"), "goods": ("慰问品", "Goods")}
UNKNOWN_BENEFIT = ("(unknown)", "未知项目", "Unknown benefit")
WARMTH = ("warmth", "送温暖慰问金", "Warmth campaign payments")  # paid by CampaignWorkflow, not through applications
YUAN = "#,##0.00"


def yuan(fen: int) -> str:
    """Exact yuan text from integer fen: 1234 → "12.34", -5 → "-0.05"."""
    sign = "-" if fen < 0 else ""
    whole, cents = divmod(abs(int(fen)), 100)
    return f"{sign}{whole}.{cents:02d}"


# ---- what the reports hold -------------------------------------------------------------------

@dataclass
class FundLine:
    fund_id: int
    code: str
    name_zh: str
    name_en: str
    budget_fen: int
    reserved_fen: int
    spent_fen: int
    available_fen: int
    count: int  # disbursements


@dataclass
class Tally:
    key: str
    name_zh: str
    name_en: str
    count: int = 0
    amount_fen: int = 0


@dataclass
class Check:
    name_zh: str
    name_en: str
    ledger_fen: int  # from the ledger entries
    stated_fen: int  # what the fund rows or a report section state
    difference_fen: int  # stated - ledger
    ok: bool


@dataclass
class Reconciliation:
    reconciled: bool
    ledger_spent_fen: int
    funds_spent_fen: int
    difference_fen: int  # funds' spent_fen - disburse entries; every other check is in ``checks``
    checks: list[Check]
    zh: str
    en: str


@dataclass
class AnnualReport:
    org_id: int
    org_code: str
    org_name_zh: str
    org_name_en: str
    year: int
    generated_at: str
    funds: list[FundLine]
    benefits: list[Tally]
    months: list[Tally]
    total_count: int
    total_fen: int
    reconciliation: Reconciliation

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RecipientRow:
    member_no: str
    name: str
    amount_fen: int
    form: str | None
    application_id: str

    @property
    def form_zh(self) -> str:
        return FORMS.get(self.form or "", (self.form or "", ""))[0]


@dataclass
class RecipientList:
    org_id: int
    org_code: str
    org_name_zh: str
    org_name_en: str
    year: int
    month: int
    benefit: str
    benefit_name_zh: str
    benefit_name_en: str
    rows: list[RecipientRow] = field(default_factory=list)

    @property
    def total_fen(self) -> int:
        return sum(r.amount_fen for r in self.rows)

    def as_dict(self) -> dict[str, Any]:
        rows = [asdict(r) | {"amount_yuan": yuan(r.amount_fen), "form_zh": r.form_zh,
                             "form_en": FORMS.get(r.form or "", ("", r.form or ""))[1]} for r in self.rows]
        return asdict(self) | {"rows": rows, "count": len(rows), "total_fen": self.total_fen, "total_yuan": yuan(self.total_fen)}


# ---- reading the ledger ----------------------------------------------------------------------

@contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """One consistent view for every query of a report (SQLite transactions are serialisable already)."""
    with Session(engine) as session:
        if engine.dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
        yield session


def _organisation(session: Session, org_id: int) -> Organisation:
    org = session.get(Organisation, org_id)
    if org is None:
        raise LookupError(f"organisation {org_id} not found")
    return org


def benefit_names(year: int) -> dict[str, tuple[str, str]]:
    """Benefit code → (zh, en), preferring the policy versions in force during ``year``."""
    first, last = dt.date(year, 1, 1), dt.date(year, 12, 31)

    def rank(loaded) -> tuple[bool, dt.date]:
        p = loaded.policy
        return p.effective_from <= last and (p.effective_to is None or p.effective_to >= first), p.effective_from

    names: dict[str, tuple[str, str]] = {}
    for loaded in sorted(default_registry().versions, key=rank, reverse=True):
        for b in loaded.policy.benefits:
            names.setdefault(b.code, (b.name_zh, b.name_en))
    return names


def report_benefits(year: int) -> dict[str, tuple[str, str]]:
    """What a report can be broken down by: the policy's benefits and the warmth campaigns."""
    return benefit_names(year) | {WARMTH[0]: WARMTH[1:]}


def _month_key(at: dt.datetime) -> str:
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(CHINA).strftime("%Y-%m")


def _month_tally(key: str) -> Tally:
    year, month = key.split("-")
    return Tally(key, f"{year}年{int(month)}月", key)


def _fund_lines(session: Session, funds: list[Fund]) -> list[FundLine]:
    query = (select(LedgerEntry.fund_id, LedgerEntry.kind, func.count(), func.coalesce(func.sum(LedgerEntry.amount_fen), 0))
             .where(LedgerEntry.fund_id.in_([f.id for f in funds] or [-1])).group_by(LedgerEntry.fund_id, LedgerEntry.kind))
    sums: dict[tuple[int, str], tuple[int, int]] = {}
    for fund_id, kind, count, amount in session.execute(query):
        sums[(fund_id, LedgerKind(kind).value)] = (int(count), int(amount))
    lines = []
    for f in funds:
        def total(kind: LedgerKind) -> int:
            return sums.get((f.id, kind.value), (0, 0))[1]

        budget, spent = total(LedgerKind.budget), total(LedgerKind.disburse)
        reserved = total(LedgerKind.reserve) - total(LedgerKind.release) - spent
        count = sums.get((f.id, LedgerKind.disburse.value), (0, 0))[0]
        lines.append(FundLine(f.id, f.code, f.name_zh, f.name_en, budget, reserved, spent, budget - reserved - spent, count))
    return lines


def _disbursements(session: Session, funds: list[Fund]) -> list[tuple[int, dt.datetime, str | None]]:
    query = (select(LedgerEntry.amount_fen, LedgerEntry.created_at, Application.benefit, LedgerEntry.application_id)
             .outerjoin(Application, Application.id == LedgerEntry.application_id)
             .where(LedgerEntry.fund_id.in_([f.id for f in funds] or [-1]), LedgerEntry.kind == LedgerKind.disburse)
             .order_by(LedgerEntry.id))
    return [(int(amount), at, benefit or (WARMTH[0] if member_of_payment_ref(ref) is not None else None))
            for amount, at, benefit, ref in session.execute(query)]


def _tallies(year: int, paid: list[tuple[int, dt.datetime, str | None]]) -> tuple[list[Tally], list[Tally]]:
    names = report_benefits(year)
    benefits: dict[str, Tally] = {}
    months = {f"{year}-{m:02d}": _month_tally(f"{year}-{m:02d}") for m in range(1, 13)}
    for amount, at, benefit in paid:
        code, zh, en = (benefit, *names[benefit]) if benefit in names else (benefit or UNKNOWN_BENEFIT[0], *UNKNOWN_BENEFIT[1:])
        for tally in (benefits.setdefault(code, Tally(code, zh, en)), months.setdefault(_month_key(at), _month_tally(_month_key(at)))):
            tally.count += 1
            tally.amount_fen += amount
    order = list(names)
    by_benefit = sorted(benefits.values(), key=lambda t: (order.index(t.key) if t.key in order else len(order), t.key))
    return by_benefit, sorted(months.values(), key=lambda t: t.key)


def _check(zh: str, en: str, ledger_fen: int, stated_fen: int) -> Check:
    return Check(zh, en, ledger_fen, stated_fen, stated_fen - ledger_fen, stated_fen == ledger_fen)


def _reconcile(funds: list[Fund], lines: list[FundLine], benefits: list[Tally], months: list[Tally]) -> Reconciliation:
    ledger_spent = sum(line.spent_fen for line in lines)
    funds_spent = sum(f.spent_fen for f in funds)
    checks = [
        _check("各项经费已支出合计 = 支付台账合计", "Funds' spent total = disbursement entries", ledger_spent, funds_spent),
        _check("按福利项目合计 = 支付台账合计", "Per-benefit total = disbursement entries", ledger_spent, sum(t.amount_fen for t in benefits)),
        _check("按月份合计 = 支付台账合计", "Per-month total = disbursement entries", ledger_spent, sum(t.amount_fen for t in months)),
    ]
    for f, line in zip(funds, lines):
        checks += [
            _check(f"{f.name_zh}：预算 = 预算台账", f"{f.name_en}: budget = budget entries", line.budget_fen, f.budget_fen),
            _check(f"{f.name_zh}：已预留 = 预留台账净额", f"{f.name_en}: reserved = net reservation entries", line.reserved_fen, f.reserved_fen),
            _check(f"{f.name_zh}：已支出 = 支付台账", f"{f.name_en}: spent = disbursement entries", line.spent_fen, f.spent_fen),
        ]
    bad = [c for c in checks if not c.ok]
    if not bad:
        zh, en = f"账实相符：支出合计 {yuan(ledger_spent)} 元", f"Reconciled: {yuan(ledger_spent)} yuan spent in total"
    else:
        zh = f"账实不符：{len(bad)} 项核对有差额，首项：{bad[0].name_zh}，差额 {yuan(bad[0].difference_fen)} 元"
        en = f"Not reconciled: {len(bad)} check(s) differ; first: {bad[0].name_en}, difference {yuan(bad[0].difference_fen)} yuan"
    return Reconciliation(not bad, ledger_spent, funds_spent, funds_spent - ledger_spent, checks, zh, en)


def annual_report(engine: Engine, org_id: int, year: int) -> AnnualReport:
    with _snapshot(engine) as session:
        org = _organisation(session, org_id)
        funds = list(session.execute(select(Fund).where(Fund.org_id == org_id, Fund.year == year).order_by(Fund.code)).scalars())
        lines = _fund_lines(session, funds)
        paid = _disbursements(session, funds)
    benefits, months = _tallies(year, paid)
    return AnnualReport(org.id, org.code, org.name_zh, org.name_en, year, dt.datetime.now(CHINA).isoformat(timespec="seconds"),
                        lines, benefits, months, len(paid), sum(p[0] for p in paid), _reconcile(funds, lines, benefits, months))


def recipients(engine: Engine, org_id: int, year: int, month: int, benefit: str) -> RecipientList:
    """签领表 of one batch: what the organisation's funds paid for ``benefit`` in that month (China time)."""
    start = dt.datetime(year, month, 1, tzinfo=CHINA)
    end = dt.datetime(year + month // 12, month % 12 + 1, 1, tzinfo=CHINA)
    paid_in_month = (Fund.org_id == org_id, LedgerEntry.kind == LedgerKind.disburse,
                     LedgerEntry.created_at >= start, LedgerEntry.created_at < end)
    zh, en = report_benefits(year).get(benefit, UNKNOWN_BENEFIT[1:])
    with _snapshot(engine) as session:
        org = _organisation(session, org_id)
        if benefit == WARMTH[0]:
            rows = _warmth_rows(session, paid_in_month)
        else:
            query = (select(Member.member_no, Member.name, LedgerEntry.amount_fen, LedgerEntry.form, LedgerEntry.application_id)
                     .join(Fund, Fund.id == LedgerEntry.fund_id)
                     .join(Application, Application.id == LedgerEntry.application_id)
                     .join(Member, Member.id == Application.member_id)
                     .where(*paid_in_month, Application.benefit == benefit))
            rows = [RecipientRow(no, name, int(amount), form, app_id) for no, name, amount, form, app_id in session.execute(query)]
    rows.sort(key=lambda r: (r.member_no, r.application_id))
    return RecipientList(org.id, org.code, org.name_zh, org.name_en, year, month, benefit, zh, en, rows)


def _warmth_rows(session: Session, paid_in_month: tuple) -> list[RecipientRow]:
    query = (select(LedgerEntry.application_id, LedgerEntry.amount_fen, LedgerEntry.form)
             .join(Fund, Fund.id == LedgerEntry.fund_id).where(*paid_in_month, LedgerEntry.application_id.like("W%")))
    paid = [(ref, member_of_payment_ref(ref), int(amount), form) for ref, amount, form in session.execute(query)]
    paid = [p for p in paid if p[1] is not None]
    members = {m.id: m for m in session.execute(select(Member).where(Member.id.in_({p[1] for p in paid} or {-1}))).scalars()}
    return [RecipientRow(members[member_id].member_no, members[member_id].name, amount, form, ref)
            for ref, member_id, amount, form in paid]


# ---- exports ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Money:
    """A money cell: exact yuan text in CSV, a number formatted 0.00 in XLSX."""

    fen: int


@dataclass
class Table:
    title: str  # also the XLSX sheet name (31 characters at most)
    headers: list[str]
    rows: list[list[Any]]
    total: list[Any] | None = None
    caption: list[str] = field(default_factory=list)  # lines above the header


def _org_line(zh: str, en: str) -> str:
    return f"{zh} {en}"


def annual_tables(r: AnnualReport) -> list[Table]:
    rec = r.reconciliation
    about = Table("报表 Report", ["项目 Item", "内容 Value"], [
        ["单位 Organisation", _org_line(r.org_name_zh, r.org_name_en)],
        ["年度 Year", r.year],
        ["支出笔数 Disbursements", r.total_count],
        ["支出合计(元) Total spent (yuan)", Money(r.total_fen)],
        ["核对结论 Reconciliation", "相符 Reconciled" if rec.reconciled else "不符 NOT reconciled"],
        ["生成时间 Generated at", r.generated_at],
    ], caption=[f"{r.year} 年度财务报表 Annual financial report {r.year}"])
    funds = Table("经费 Funds", ["经费代码 Code", "名称 Name", "英文名称 English name", "预算(元) Budget (yuan)",
                                 "已预留(元) Reserved (yuan)", "已支出(元) Spent (yuan)", "结余(元) Available (yuan)", "支出笔数 Count"],
                  [[f.code, f.name_zh, f.name_en, Money(f.budget_fen), Money(f.reserved_fen), Money(f.spent_fen),
                    Money(f.available_fen), f.count] for f in r.funds],
                  ["合计 Total", "", "", *(Money(sum(getattr(f, a) for f in r.funds))
                                            for a in ("budget_fen", "reserved_fen", "spent_fen", "available_fen")),
                   sum(f.count for f in r.funds)])
    tally_headers = ["笔数 Count", "金额(元) Amount (yuan)"]
    benefits = Table("福利项目 Benefits", ["项目代码 Code", "名称 Name", "英文名称 English name", *tally_headers],
                     [[t.key, t.name_zh, t.name_en, t.count, Money(t.amount_fen)] for t in r.benefits],
                     ["合计 Total", "", "", sum(t.count for t in r.benefits), Money(sum(t.amount_fen for t in r.benefits))])
    months = Table("月份 Months", ["月份 Month", "名称 Name", *tally_headers],
                   [[t.key, t.name_zh, t.count, Money(t.amount_fen)] for t in r.months],
                   ["合计 Total", "", sum(t.count for t in r.months), Money(sum(t.amount_fen for t in r.months))])
    checks = Table("核对 Reconciliation", ["核对项 Check", "英文 English", "台账(元) Ledger (yuan)", "报表/经费记录(元) Stated (yuan)",
                                          "差额(元) Difference (yuan)", "结果 Result"],
                   [[c.name_zh, c.name_en, Money(c.ledger_fen), Money(c.stated_fen), Money(c.difference_fen),
                     "相符 OK" if c.ok else "不符 MISMATCH"] for c in rec.checks],
                   ["结论 Conclusion", rec.en, "", "", Money(rec.difference_fen), rec.zh])
    return [about, funds, benefits, months, checks]


def recipient_table(r: RecipientList) -> Table:
    return Table("签领表 Recipients",
                 ["会员编号 Member no.", "姓名 Name", "金额(元) Amount (yuan)", "形式 Form", "申请编号 Application", "签名 Signature"],
                 [[row.member_no, row.name, Money(row.amount_fen), row.form_zh, row.application_id, ""] for row in r.rows],
                 ["合计 Total", f"{len(r.rows)} 人次 entries", Money(r.total_fen), "", "", ""],
                 caption=[f"{r.org_name_zh}  {r.year}年{r.month}月  {r.benefit_name_zh} 签领表",
                          f"{r.org_name_en}  {r.year}-{r.month:02d}  {r.benefit_name_en}: recipients"])


def _safe(text: str) -> str:
    """Text from the register must not become a spreadsheet formula."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _csv_cell(value: Any) -> Any:
    if isinstance(value, Money):
        return yuan(value.fen)
    return _safe(value) if isinstance(value, str) else value


def to_csv(tables: list[Table]) -> bytes:
    """UTF-8 with a BOM (so Excel reads the Chinese), sections one after another, a blank line between."""
    out = io.StringIO()
    writer = csv.writer(out)
    for n, table in enumerate(tables):
        if n:
            writer.writerow([])
        for line in table.caption or [table.title]:
            writer.writerow([_safe(line)])
        writer.writerow(table.headers)
        for row in table.rows + ([table.total] if table.total else []):
            writer.writerow([_csv_cell(v) for v in row])
    return out.getvalue().encode("utf-8-sig")


def to_xlsx(tables: list[Table]) -> bytes:
    """One sheet per table: caption lines, a bold header, the rows, a bold total row."""
    book = Workbook()
    book.remove(book.active)
    bold = Font(bold=True)
    for table in tables:
        sheet = book.create_sheet(table.title[:31])
        for line in table.caption:
            sheet.append([_safe(line)])
        sheet.append(table.headers)
        header_row = sheet.max_row
        for row in table.rows + ([table.total] if table.total else []):
            sheet.append([Decimal(yuan(v.fen)) if isinstance(v, Money) else (_safe(v) if isinstance(v, str) else v) for v in row])
            for cell, value in zip(sheet[sheet.max_row], row):
                if isinstance(value, Money):
                    cell.number_format = YUAN
        for cell in sheet[header_row] + (sheet[sheet.max_row] if table.total else ()):
            cell.font = bold
        sheet.freeze_panes = sheet.cell(row=header_row + 1, column=1)
        for n, header in enumerate(table.headers, start=1):
            sheet.column_dimensions[sheet.cell(row=header_row, column=n).column_letter].width = max(12, len(header) + 4)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()
