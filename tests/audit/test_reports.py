"""财务报表 and 签领表 from the ledger: figures checked by hand, reconciliation, tampering, exports, the HTTP API."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal

import httpx
import openpyxl
import pytest
from sqlalchemy import func, select, text, update
from sqlmodel import Session

from service import filing, ledger, seed
from service.app import create_app
from service.audit import reports
from service.models import Fund, LedgerEntry, LedgerKind, Member, Organisation, User
from service.routes import audit_reports
from service.security import hash_password
from service.settings import Settings
from workflows import campaign_types
from workflows.types import ApplicationDetails, MoneyRequest

from ..world import YEAR, build

UTC = dt.UTC
PASSWORD = "audit reports test password"

# What ORG1's funds of YEAR paid (fen), and when (UTC); China time is eight hours ahead.
PAID = {
    "alice": ("hospitalization", "member_welfare", 80_000, "cash", dt.datetime(YEAR, 3, 10, 2, tzinfo=UTC)),
    "bob": ("hospitalization", "member_welfare", 50_050, "cash", dt.datetime(YEAR, 3, 31, 16, 30, tzinfo=UTC)),  # 1 April in China
    "carol": ("birthday", "member_welfare", 10_000, "goods", dt.datetime(YEAR, 3, 5, 1, tzinfo=UTC)),
    "dave": ("birthday", "member_welfare", 12_345, "goods", dt.datetime(YEAR, 3, 20, 3, tzinfo=UTC)),
    "erin": ("hardship_assistance", "hardship_fund", 300_000, "cash", dt.datetime(YEAR, 4, 2, 2, tzinfo=UTC)),
}
TOTAL = 80_000 + 50_050 + 10_000 + 12_345 + 300_000  # 452,395 fen = 4,523.95 yuan
PAID_BENEFITS = {benefit for benefit, *_ in PAID.values()}


def _pay(engine, world, who: str, benefit: str, fund_code: str, amount: int, form: str, paid_at: dt.datetime | None,
         org_id: int | None = None, year: int = YEAR, release: bool = False) -> str:
    """File an application, reserve its money, then pay it (dated ``paid_at``) or release it."""
    org_id = org_id or world.org_id
    app, _ = filing.record(engine, org_id=org_id, member_id=world.members[who], benefit=benefit, event_date=dt.date(year, 2, 1),
                           details=ApplicationDetails(requested_fen=amount, event_key=f"{who}-{year}"), filed_by=world.users["clerk"])
    m = MoneyRequest(app.id, org_id, fund_code, year, amount, app.claim_key, f"{who}:{benefit}:{year}", 1, form, "clerk")
    assert ledger.reserve(engine, m).ok
    if release:
        assert ledger.release(engine, m)
    elif paid_at is not None:
        assert ledger.disburse(engine, m)
        with Session(engine) as s, s.begin():
            s.execute(update(LedgerEntry).where(LedgerEntry.idempotency_key == f"{app.id}:disburse").values(created_at=paid_at))
    return app.id


def _build_books(engine):
    world = build(engine, welfare_fen=1_000_000, hardship_fen=500_000)
    for who, (benefit, fund_code, amount, form, paid_at) in PAID.items():
        _pay(engine, world, who, benefit, fund_code, amount, form, paid_at)
    _pay(engine, world, "frank", "hospitalization", "member_welfare", 40_000, "cash", None)  # approved, not yet paid
    _pay(engine, world, "grace", "bereavement", "member_welfare", 60_000, "cash", None, release=True)  # withdrawn
    ledger.raise_budget(engine, world.funds["member_welfare"], 200_000, "budget:test:raise", "admin")
    # Noise that must stay out of ORG1's YEAR: last year's fund, and the higher-level union's fund.
    with Session(engine) as s, s.begin():
        city = s.execute(select(Organisation).where(Organisation.code == "CITY")).scalar_one()
        seed.funds(s, city, YEAR, {"member_welfare": 100_000})
        seed.funds(s, s.get(Organisation, world.org_id), YEAR - 1, {"member_welfare": 100_000})
        city_id = city.id
    _pay(engine, world, "ivan", "birthday", "member_welfare", 7_700, "goods", dt.datetime(YEAR - 1, 3, 15, 2, tzinfo=UTC), year=YEAR - 1)
    _pay(engine, world, "heidi", "birthday", "member_welfare", 9_900, "goods", dt.datetime(YEAR, 3, 15, 2, tzinfo=UTC), org_id=city_id)
    world.city_id = city_id
    return world


@pytest.fixture
def books(any_engine):
    return any_engine, _build_books(any_engine)


def _ledger_spent(engine, org_id: int, year: int) -> int:
    """The ledger's own total, by a query independent of the report code."""
    with Session(engine) as s:
        query = (select(func.sum(LedgerEntry.amount_fen)).join(Fund, Fund.id == LedgerEntry.fund_id)
                 .where(Fund.org_id == org_id, Fund.year == year, LedgerEntry.kind == LedgerKind.disburse))
        return int(s.execute(query).scalar_one())


def test_yuan_is_exact():
    assert [reports.yuan(f) for f in (1234, 5, 0, 100, -50, 123_456_789)] == ["12.34", "0.05", "0.00", "1.00", "-0.50", "1234567.89"]


def test_annual_report_figures(books):
    engine, world = books
    r = reports.annual_report(engine, world.org_id, YEAR)
    funds = {f.code: (f.budget_fen, f.reserved_fen, f.spent_fen, f.available_fen, f.count) for f in r.funds}
    assert funds == {
        "member_welfare": (1_200_000, 40_000, 152_395, 1_200_000 - 40_000 - 152_395, 4),
        "hardship_fund": (500_000, 0, 300_000, 200_000, 1),
    }
    assert [(t.key, t.count, t.amount_fen) for t in r.benefits] == [
        ("hospitalization", 2, 130_050), ("birthday", 2, 22_345), ("hardship_assistance", 1, 300_000)]
    assert r.benefits[0].name_zh == "会员生病住院慰问" and r.benefits[0].name_en == "Hospitalisation visit"
    months = {t.key: (t.count, t.amount_fen) for t in r.months}
    assert len(months) == 12 and sum(c for c, _ in months.values()) == 5
    assert months[f"{YEAR}-03"] == (3, 102_345)  # alice, carol, dave
    assert months[f"{YEAR}-04"] == (2, 350_050)  # bob (16:30 UTC on 31 March is April in China), erin
    assert months[f"{YEAR}-02"] == (0, 0)
    assert (r.total_count, r.total_fen) == (5, TOTAL) == (5, _ledger_spent(engine, world.org_id, YEAR))
    rec = r.reconciliation
    assert rec.reconciled and rec.difference_fen == 0 and (rec.ledger_spent_fen, rec.funds_spent_fen) == (TOTAL, TOTAL)
    assert all(c.ok for c in rec.checks) and len(rec.checks) == 3 + 3 * 2
    assert rec.zh.startswith("账实相符") and "4523.95" in rec.zh


def test_tampered_fund_row_is_not_reconciled(books):
    engine, world = books
    with engine.begin() as conn:
        conn.execute(text("UPDATE fund SET spent_fen = spent_fen + 500 WHERE id = :id"), {"id": world.funds["member_welfare"]})
    rec = reports.annual_report(engine, world.org_id, YEAR).reconciliation
    assert not rec.reconciled
    assert (rec.ledger_spent_fen, rec.funds_spent_fen, rec.difference_fen) == (TOTAL, TOTAL + 500, 500)
    bad = [(c.name_en, c.difference_fen) for c in rec.checks if not c.ok]
    assert bad == [("Funds' spent total = disbursement entries", 500), ("Member welfare fund: spent = disbursement entries", 500)]
    assert rec.zh.startswith("账实不符") and "5.00" in rec.zh


def test_deleted_ledger_entry_is_not_reconciled(books):
    engine, world = books
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM ledgerentry WHERE kind = 'disburse' AND amount_fen = 12345"))
    r = reports.annual_report(engine, world.org_id, YEAR)
    assert r.total_fen == TOTAL - 12_345 and not r.reconciliation.reconciled
    assert r.reconciliation.difference_fen == 12_345


def test_recipients_of_one_batch(books):
    engine, world = books
    batch = reports.recipients(engine, world.org_id, YEAR, 3, "birthday")
    assert [(r.member_no, r.name, reports.yuan(r.amount_fen), r.form_zh) for r in batch.rows] == [
        ("M0003", "carol", "100.00", "慰问品"), ("M0004", "dave", "123.45", "慰问品")]  # not heidi (CITY), not ivan (last year)
    assert (batch.total_fen, batch.benefit_name_zh, batch.benefit_name_en) == (22_345, "会员生日慰问", "Birthday gift")
    assert [r.name for r in reports.recipients(engine, world.org_id, YEAR, 4, "hospitalization").rows] == ["bob"]
    assert [r.name for r in reports.recipients(engine, world.org_id, YEAR, 3, "hospitalization").rows] == ["alice"]
    assert [r.name for r in reports.recipients(engine, world.org_id, YEAR - 1, 3, "birthday").rows] == ["ivan"]
    assert [r.name for r in reports.recipients(engine, world.city_id, YEAR, 3, "birthday").rows] == ["heidi"]
    assert reports.recipients(engine, world.org_id, YEAR, 12, "birthday").rows == []
    data = batch.as_dict()
    assert (data["count"], data["total_fen"], data["total_yuan"]) == (2, 22_345, "223.45")
    assert {k: data["rows"][1][k] for k in ("amount_fen", "amount_yuan", "form", "form_zh", "form_en")} == {
        "amount_fen": 12_345, "amount_yuan": "123.45", "form": "goods", "form_zh": "慰问品", "form_en": "Goods"}


def test_warmth_campaign_payments_are_named_and_listed(books):
    """Campaign households are paid without an application: the report must still name what they were."""
    engine, world = books
    ref = campaign_types.payment_ref(campaign_types.campaign_id(world.org_id, YEAR, "spring"), YEAR, world.members["grace"])
    m = MoneyRequest(ref, world.org_id, "hardship_fund", YEAR, 80_000, "warmth:test", "warmth:test", 1, "cash", "chair")
    assert ledger.reserve(engine, m).ok and ledger.disburse(engine, m)
    with Session(engine) as s, s.begin():
        s.execute(update(LedgerEntry).where(LedgerEntry.idempotency_key == f"{ref}:disburse")
                  .values(created_at=dt.datetime(YEAR, 1, 20, 2, tzinfo=UTC)))
    r = reports.annual_report(engine, world.org_id, YEAR)
    assert [(t.key, t.name_zh, t.count, t.amount_fen) for t in r.benefits if t.key not in PAID_BENEFITS] == [
        ("warmth", "送温暖慰问金", 1, 80_000)]
    assert r.total_fen == TOTAL + 80_000 and r.reconciliation.reconciled
    batch = reports.recipients(engine, world.org_id, YEAR, 1, "warmth")
    assert [(row.member_no, row.name, row.amount_fen, row.form_zh, row.application_id) for row in batch.rows] == [
        ("M0007", "grace", 80_000, "现金", ref)]
    assert reports.recipients(engine, world.org_id, YEAR, 2, "warmth").rows == []
    assert reports.recipients(engine, world.city_id, YEAR, 1, "warmth").rows == []


def _csv_rows(body: bytes) -> list[list[str]]:
    assert body.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8 Chinese"
    return list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))


def test_recipients_csv(books):
    engine, world = books
    rows = _csv_rows(reports.to_csv([reports.recipient_table(reports.recipients(engine, world.org_id, YEAR, 3, "birthday"))]))
    header = rows.index(["会员编号 Member no.", "姓名 Name", "金额(元) Amount (yuan)", "形式 Form", "申请编号 Application", "签名 Signature"])
    assert "签领表" in rows[0][0]
    body, total = rows[header + 1:-1], rows[-1]
    assert [(r[0], r[1], r[2], r[3], r[5]) for r in body] == [("M0003", "carol", "100.00", "慰问品", ""), ("M0004", "dave", "123.45", "慰问品", "")]
    assert all(r[4].startswith("A") for r in body)
    assert total[0] == "合计 Total" and total[2] == "223.45" == str(sum(Decimal(r[2]) for r in body))


def test_recipients_xlsx_totals_match_ledger(books):
    engine, world = books
    body = reports.to_xlsx([reports.recipient_table(reports.recipients(engine, world.org_id, YEAR, 4, "hardship_assistance"))])
    sheet = openpyxl.load_workbook(io.BytesIO(body))["签领表 Recipients"]
    values = [list(r) for r in sheet.iter_rows(values_only=True)]
    header = next(n for n, r in enumerate(values) if r[0] == "会员编号 Member no.")
    rows, total = values[header + 1:-1], values[-1]
    assert [(r[0], r[1], r[3]) for r in rows] == [("M0005", "erin", "现金")]
    assert sum(Decimal(str(r[2])) for r in rows) * 100 == 300_000 == Decimal(str(total[2])) * 100


def test_annual_exports_total_the_ledger(books):
    engine, world = books
    report = reports.annual_report(engine, world.org_id, YEAR)
    ledger_total = _ledger_spent(engine, world.org_id, YEAR)
    book = openpyxl.load_workbook(io.BytesIO(reports.to_xlsx(reports.annual_tables(report))))
    assert book.sheetnames == ["报表 Report", "经费 Funds", "福利项目 Benefits", "月份 Months", "核对 Reconciliation"]

    def column_fen(sheet_name: str, header: str) -> tuple[int, int]:
        values = [list(r) for r in book[sheet_name].iter_rows(values_only=True)]
        start = next(n for n, r in enumerate(values) if header in r)
        col = values[start].index(header)
        body, total = values[start + 1:-1], values[-1]
        assert total[0] in ("合计 Total", "结论 Conclusion")
        return int(sum(Decimal(str(r[col])) for r in body) * 100), int(Decimal(str(total[col])) * 100)

    assert column_fen("经费 Funds", "已支出(元) Spent (yuan)") == (ledger_total, ledger_total)
    assert column_fen("福利项目 Benefits", "金额(元) Amount (yuan)") == (ledger_total, ledger_total)
    assert column_fen("月份 Months", "金额(元) Amount (yuan)") == (ledger_total, ledger_total)
    assert book["经费 Funds"]["A1"].value == "经费代码 Code" and book["经费 Funds"]["D2"].number_format == "#,##0.00"

    sections, current = [], []
    for row in _csv_rows(reports.to_csv(reports.annual_tables(report))) + [[]]:
        if row:
            current.append(row)
        elif current:
            sections, current = sections + [current], []
    assert [s[0][0] for s in sections][1:] == ["经费 Funds", "福利项目 Benefits", "月份 Months", "核对 Reconciliation"]
    months = sections[3]
    assert months[1] == ["月份 Month", "名称 Name", "笔数 Count", "金额(元) Amount (yuan)"]
    assert [r for r in months if r[0] == f"{YEAR}-03"] == [[f"{YEAR}-03", f"{YEAR}年3月", "3", "1023.45"]]
    assert months[-1] == ["合计 Total", "", "5", "4523.95"]
    assert sum(Decimal(r[3]) for r in months[2:-1]) == Decimal("4523.95")


def test_exports_do_not_turn_names_into_formulas(books):
    engine, world = books
    with Session(engine) as s, s.begin():
        s.get(Member, world.members["carol"]).name = "=HYPERLINK(\"http://x\")"
    table = reports.recipient_table(reports.recipients(engine, world.org_id, YEAR, 3, "birthday"))
    assert _csv_rows(reports.to_csv([table]))[3][1] == "'=HYPERLINK(\"http://x\")"
    sheet = openpyxl.load_workbook(io.BytesIO(reports.to_xlsx([table])))["签领表 Recipients"]
    assert sheet["B4"].data_type == "s" and sheet["B4"].value.startswith("'=")


# ---- over HTTP ------------------------------------------------------------------------------

def _app(engine):
    async def no_temporal():
        raise RuntimeError("these endpoints never need Temporal")

    app = create_app(Settings(), engine, no_temporal)
    if not any(getattr(r, "path", "").startswith("/api/audit") for r in app.routes):
        app.include_router(audit_reports.router)
    return app


@pytest.fixture
async def http(engine):
    world = _build_books(engine)
    with Session(engine) as s, s.begin():
        for user in s.execute(select(User)).scalars():
            user.password_hash = hash_password(PASSWORD) if user.username in ("auditor", "chair", "alice") else user.password_hash
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=_app(engine)), base_url="http://audit.test") as client:
        tokens = {}
        for name in ("auditor", "chair", "alice"):
            r = await client.post("/api/auth/token", json={"username": name, "password": PASSWORD})
            assert r.status_code == 200, r.text
            tokens[name] = {"Authorization": f"Bearer {r.json()['access_token']}"}
        yield client, world, tokens


async def test_http_reports_and_downloads(http):
    client, world, tokens = http
    r = await client.get("/api/audit/reports/annual", params={"year": YEAR}, headers=tokens["auditor"])
    assert r.status_code == 200, r.text
    assert r.json()["org_id"] == world.org_id and r.json()["total_fen"] == TOTAL and r.json()["reconciliation"]["reconciled"]

    r = await client.get("/api/audit/reports/annual", params={"year": YEAR, "format": "xlsx"}, headers=tokens["chair"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert f'filename="annual-report-ORG1-{YEAR}.xlsx"' in r.headers["content-disposition"]
    assert "filename*=UTF-8''%E8%B4%A2%E5%8A%A1%E6%8A%A5%E8%A1%A8" in r.headers["content-disposition"]  # 财务报表
    assert openpyxl.load_workbook(io.BytesIO(r.content)).sheetnames[1] == "经费 Funds"

    params = {"year": YEAR, "month": 3, "benefit": "birthday", "format": "csv", "org_id": world.org_id}
    r = await client.get("/api/audit/reports/recipients", params=params, headers=tokens["auditor"])
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert f"recipients-ORG1-{YEAR}-03-birthday.csv" in r.headers["content-disposition"]
    assert _csv_rows(r.content)[-1][2] == "223.45"

    r = await client.get("/api/audit/chain", headers=tokens["auditor"])
    assert r.status_code == 200 and r.json()["ok"] and r.json()["checked"] == 9  # one "filed" event per application


async def test_http_refuses_members_and_other_orgs(http):
    client, world, tokens = http
    assert (await client.get("/api/audit/reports/annual", headers=tokens["alice"])).status_code == 403
    assert (await client.get("/api/audit/chain", headers=tokens["alice"])).status_code == 403
    r = await client.get("/api/audit/reports/annual", params={"org_id": world.city_id}, headers=tokens["chair"])
    assert r.status_code == 403 and r.json()["reason_zh"]
    assert (await client.get("/api/audit/reports/annual")).status_code == 401


@pytest.mark.parametrize("params, field", [
    ({"format": "pdf"}, "format"), ({"year": 1999}, "year"), ({"month": 13}, "month"), ({"benefit": "yacht"}, "benefit")])
async def test_http_bad_parameters(http, params, field):
    client, _, tokens = http
    query = {"month": 3, "benefit": "birthday"} | params
    r = await client.get("/api/audit/reports/recipients", params=query, headers=tokens["auditor"])
    assert r.status_code == 422 and r.json()["field"] == field
    assert r.json()["reason_zh"] and r.json()["reason_en"]
