"""200 applications filed at once over HTTP while approvers work their inboxes; the fund runs out partway.

Filers: two clerks for five members (each clerk's filings checked by the other), and four members
for themselves. Benefits: holiday gifts (auto
route, paid at once), mediation visits (officer check, nothing to pay) and hospital stays (officer
check, then the chair, who rejects some). Twenty filings are sent twice at the same moment with the
same Idempotency-Key. Every status code is collected: none may be 5xx. At the end every application
is in the API and the database once, with a settled status; the fund's spent and reserved equal the
ledger's sums, it was never overdrawn, and the projection audit finds nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import time
from collections import Counter
from dataclasses import dataclass

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from service.audit import history, projection_audit
from service.models import Application, ApprovalTask, Fund, LedgerEntry
from workflows.application import CHINA

from ..api.conftest import database, running_service

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=2)).isoformat()
FILINGS = 200
TWICE = 20  # of them sent twice at once, same Idempotency-Key
CONCURRENCY = 50
FUND_FEN = 1_500_000  # less than what will be approved: some applications wait for funds
CHAIR_REJECTS = {21_000, 25_000}  # approved amounts the chair turns down (so the test knows which)
SETTLED = {"holiday_gift": {"disbursed", "awaiting_funds"}, "family_mediation": {"approved"},
           "hospitalization": {"disbursed", "awaiting_funds", "rejected"}}
# (who files, for which member): no clerk files for alice, whose cousin is clerk2 (回避) while clerk must
# then check it; a clerk never checks what they filed.
FILERS = [("clerk", "dave"), ("clerk", "erin"), ("clerk", "frank"), ("clerk2", "grace"), ("clerk2", "ivan"),
          ("alice", "alice"), ("committee1", "erin"), ("auditor", "dave"), ("committee2", "frank")]


@dataclass
class Plan:
    n: int
    user: str
    member: str
    benefit: str
    body: dict
    key: str


def plan(svc) -> list[Plan]:
    plans = []
    for n in range(FILINGS):
        user, member = FILERS[n % len(FILERS)]
        kind = n % 5
        if kind in (0, 3):  # 80 hospital stays, 20 000 to 39 000 fen
            benefit, extra = "hospitalization", {"requested_fen": 20_000 + (n * 7 % 20) * 1_000, "evidence": ["hospital_papers"]}
        elif kind == 1:  # 40 holiday gifts: auto route, 5 000 fen each (far below the yearly cap per member)
            benefit, extra = "holiday_gift", {"requested_fen": 5_000, "evidence": ["festival_list"]}
        else:  # 80 mediation visits: officer check, nothing paid
            benefit, extra = "family_mediation", {"evidence": ["visit_notes"]}
        body = {"benefit": benefit, "member_id": svc.world.members[member], "event_date": RECENT,
                "event_key": f"load {n}", **extra}
        plans.append(Plan(n, user, member, benefit, body, f"load-{n}"))
    return plans


class Recorder:
    """Every response's status code, by what was asked."""

    def __init__(self, svc):
        self.svc = svc
        self.codes: Counter = Counter()
        self.errors: list[tuple[str, int, str]] = []

    async def call(self, what: str, method: str, path: str, user: str, **kw):
        r = await self.svc.call(method, path, user, **kw)
        self.codes[(what, r.status_code)] += 1
        if r.status_code >= 500:
            self.errors.append((what, r.status_code, r.text[:300]))
        return r


async def approver(rec: Recorder, user: str, stage: str, stop: asyncio.Event) -> int:
    """Work the inbox until told to stop; a refusal (回避, or a colleague was quicker) skips the task."""
    skip: set[str] = set()
    decided = 0
    while not stop.is_set():
        r = await rec.call("inbox", "GET", f"/api/tasks?stage={stage}&page_size=50", user)
        tasks = [t for t in r.json()["items"] if t["id"] not in skip] if r.status_code == 200 else []
        if not tasks:
            await asyncio.sleep(0.3)
            continue
        for task in tasks:
            action = "reject" if stage == "chair_approval" and task["approved_fen"] in CHAIR_REJECTS else "approve"
            d = await rec.call("decide", "POST", f"/api/tasks/{task['id']}/decision", user, json={"action": action})
            if d.status_code == 200:
                decided += 1
            elif d.status_code in (403, 409):
                skip.add(task["id"])
    return decided


def fund_row(engine, fund_id: int) -> Fund:
    with Session(engine) as s:
        return s.get(Fund, fund_id)


async def watch_fund(engine, fund_id: int, stop: asyncio.Event, seen: list[tuple[int, int, int]]) -> None:
    while not stop.is_set():
        f = await asyncio.to_thread(fund_row, engine, fund_id)
        seen.append((f.budget_fen, f.reserved_fen, f.spent_fen))
        await asyncio.sleep(0.25)


def settled(engine, ids: set[str]) -> tuple[bool, Counter]:
    with Session(engine) as s:
        rows = s.exec(select(Application.benefit, Application.status).where(Application.id.in_(list(ids)))).all()
        open_tasks = s.exec(select(func.count()).select_from(ApprovalTask).where(
            ApprovalTask.application_id.in_(list(ids)), ApprovalTask.status == "open",
            ApprovalTask.stage.in_(["officer_check", "chair_approval"]))).one()
    states = Counter((b, str(st.value if hasattr(st, "value") else st)) for b, st in rows)
    done = len(rows) == len(ids) and not open_tasks and all(st in SETTLED[b] for b, st in states)
    return done, states


async def load_scenario(svc) -> None:
    engine, world = svc.engine, svc.world
    fund_id = world.funds["member_welfare"]
    for user in {u for u, _ in FILERS} | {"chair"}:
        await svc.login(user)
    rec = Recorder(svc)
    plans = plan(svc)
    gate = asyncio.Semaphore(CONCURRENCY)
    latencies: list[float] = []

    async def file(p: Plan):
        async with gate:
            started = time.monotonic()
            r = await rec.call("file", "POST", "/api/applications", p.user, json=p.body, headers={"Idempotency-Key": p.key})
            latencies.append(time.monotonic() - started)
            return p, r

    stop = asyncio.Event()
    fund_seen: list[tuple[int, int, int]] = []
    workers = [asyncio.create_task(approver(rec, user, stage, stop)) for user, stage in
               [("clerk2", "officer_check"), ("clerk", "officer_check"), ("chair", "chair_approval")]]
    watcher = asyncio.create_task(watch_fund(engine, fund_id, stop, fund_seen))
    started = time.monotonic()
    try:
        answers = await asyncio.gather(*[file(p) for p in plans for _ in range(2 if p.n < TWICE else 1)])  # twins side by side
        filed_in = time.monotonic() - started
        app_of: dict[str, set[str]] = {}
        for p, r in answers:
            assert r.status_code in (200, 201), (p.key, r.status_code, r.text)
            app_of.setdefault(p.key, set()).add(r.json()["id"])
        ids = set().union(*app_of.values())
        deadline = time.monotonic() + 150
        while not (done := await asyncio.to_thread(settled, engine, ids))[0]:
            assert time.monotonic() < deadline, done[1]
            await asyncio.sleep(0.5)
        settled_in = time.monotonic() - started
    finally:
        stop.set()
        decided = await asyncio.gather(*workers)
        await watcher

    # Throughput (printed, not asserted).
    ordered = sorted(latencies)
    print(f"\n{len(answers)} filings ({FILINGS} distinct) in {filed_in:.1f} s = {len(answers) / filed_in:.1f}/s; "
          f"latency p50 {statistics.median(ordered):.2f} s, p95 {ordered[int(len(ordered) * 0.95)]:.2f} s, max {ordered[-1]:.2f} s; "
          f"{sum(decided)} decisions; all settled after {settled_in:.1f} s; statuses {dict(done[1])}")
    print(f"status codes: {dict(sorted(rec.codes.items()))}")

    # No 5xx, anywhere.
    assert not rec.errors, rec.errors[:5]
    assert not [k for k in rec.codes if k[1] >= 500], rec.codes
    # Nothing duplicated: one application per key, twins included, and 200 in all.
    assert all(len(found) == 1 for found in app_of.values()), {k: v for k, v in app_of.items() if len(v) > 1}
    assert len(app_of) == len(ids) == FILINGS
    assert Counter(r.status_code for p, r in answers) == {201: FILINGS, 200: TWICE}
    # Every one in the database once, with a settled status, and in the API with the same status.
    with Session(engine) as s:
        rows = {a.id: a for a in s.exec(select(Application)).all()}
    assert set(rows) == ids
    assert Counter(a.idempotency_key for a in rows.values()) == Counter({p.key: 1 for p in plans})
    listed = {}
    for page in (1, 2):
        r = await rec.call("list", "GET", f"/api/applications?page_size=200&page={page}", "clerk")
        assert r.status_code == 200 and r.json()["total"] == FILINGS
        listed |= {item["id"]: item["status"] for item in r.json()["items"]}
    db_status = {i: str(a.status.value if hasattr(a.status, "value") else a.status) for i, a in rows.items()}
    assert listed == db_status
    states = done[1]
    assert sum(states.values()) == FILINGS
    assert states[("family_mediation", "approved")] == 80
    assert states[("hospitalization", "awaiting_funds")] + states[("holiday_gift", "awaiting_funds")] > 0, "the fund never ran out"
    assert states[("hospitalization", "disbursed")] + states[("holiday_gift", "disbursed")] > 0
    rejected = {i for i, a in rows.items() if a.benefit == "hospitalization" and a.approved_fen in CHAIR_REJECTS}
    assert {i for i, st in db_status.items() if st == "rejected"} == rejected and rejected

    # Money: every payment once, reserved and spent equal the ledger's sums, never overdrawn.
    with Session(engine) as s:
        entries = s.exec(select(LedgerEntry).where(LedgerEntry.fund_id == fund_id)).all()
    fund = fund_row(engine, fund_id)
    sums = Counter()
    per_app = Counter()
    for e in entries:
        kind = str(e.kind.value if hasattr(e.kind, "value") else e.kind)
        sums[kind] += e.amount_fen
        per_app[(e.application_id, kind)] += 1
    paid = {i for i, st in db_status.items() if st == "disbursed"}
    assert {i for (i, kind) in per_app if kind == "disburse"} == paid and max(per_app.values()) == 1
    assert {i for (i, kind) in per_app if kind == "reserve"} == paid  # the waiting ones hold no reservation
    assert sums["disburse"] == sum(rows[i].approved_fen for i in paid) == fund.spent_fen
    assert fund.reserved_fen == sums["reserve"] - sums["release"] - sums["disburse"] == 0
    assert fund.budget_fen == sums["budget"] == FUND_FEN
    assert fund.budget_fen - fund.spent_fen < min(rows[i].approved_fen for i, st in db_status.items() if st == "awaiting_funds")
    assert fund_seen and all(r >= 0 and s >= 0 and b - r - s >= 0 for b, r, s in fund_seen), fund_seen[:5]

    # The histories agree with the database.
    records = [history.decode(await history.fetch_one(svc.client, i)) for i in sorted(ids)]
    report = await projection_audit.audit(engine, svc.client, records, funds=True)
    assert report.applications == FILINGS
    assert report.ok, [(f.subject, f.what, f.expected, f.found) for f in report.findings][:10]


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_two_hundred_filings_under_load(kind, dev_env, tmp_path):
    async with database(kind, tmp_path) as engine, running_service(dev_env, engine, welfare_fen=FUND_FEN) as svc:
        await load_scenario(svc)
