"""The database away for a while: the API answers 503 at once, workflows retry, nothing is lost.

PostgreSQL: the service reaches the server through a TCP proxy that the test cuts (listening socket
closed, open connections reset) and restores. SQLite: another process holds ``BEGIN EXCLUSIVE`` on
the file, as a backup tool would.

Before the outage some applications are approved by the chair (their reservation and payment under
way) and a burst of filings is in flight. During it: signing in, filing, listing, the inbox and
deciding answer 503 with the bilingual message within seconds; an approval the workflow accepted
waits for the database. After it: every application filed exists once, each is paid once, the funds
reconcile to the ledger and the projection audit finds nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
import time
from collections import Counter
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
from sqlalchemy import func
from sqlmodel import Session, select
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowUpdateStage
from temporalio.service import RPCError, RPCStatusCode

from service.audit import history, projection_audit
from service.db import make_engine, migrate
from service.filing import ASSESSMENT_WAIT_S
from service.models import Application, Fund, LedgerEntry
from workflows.application import CHINA, ApplicationWorkflow
from workflows.types import Act

from ..api.conftest import running_service
from ..conftest import PG_HOST, PG_PORT, drop_postgres, fresh_postgres_url, postgres_reachable
from .tcp_proxy import TcpProxy

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=2)).isoformat()
AMOUNT = 30_000
MEMBERS = ["dave", "erin", "frank", "grace", "ivan"]  # none related to clerk2 or the chair
UNAVAILABLE_ZH = "数据库暂时不可用，请稍后再试；已提交的申请不会丢失"
UNAVAILABLE_EN = "The database is unavailable for now; try again shortly. Nothing filed is lost"
OUTAGE_SECONDS = 20
SETTLED = ("disbursed",)


# --- the two kinds of outage ----------------------------------------------------------------

class ProxyCut:
    """PostgreSQL behind a proxy: the connection is cut, as when the database host goes away."""

    def __init__(self, proxy: TcpProxy):
        self.proxy = proxy
        self.fast = 3.0  # refused at once: a request fails as soon as it asks for a connection

    async def begin(self) -> None:
        self.proxy.cut()

    async def end(self) -> None:
        self.proxy.restore()  # listening again; a no-op when it already is


LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], timeout=60, isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
db.execute("ROLLBACK")
print("released", flush=True)
"""


class FileLock:
    """SQLite: another process (a backup, say) holds the database file's write lock."""

    def __init__(self, path: str):
        self.path = path
        self.fast = 8.0  # a request waits out the busy timeout (service.db.SQLITE_BUSY_TIMEOUT_S), no longer
        self.process: asyncio.subprocess.Process | None = None

    async def begin(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", LOCKER, self.path, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
        line = await asyncio.wait_for(self.process.stdout.readline(), 60)
        assert line.strip() == b"locked", line

    async def end(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.stdin.write(b"\n")
        await self.process.stdin.drain()
        assert (await asyncio.wait_for(self.process.stdout.readline(), 30)).strip() == b"released"
        await asyncio.wait_for(self.process.wait(), 30)


@asynccontextmanager
async def outage_setup(kind: str, tmp_path):
    """A migrated engine the service uses, and the outage that can take its database away."""
    if kind == "postgresql":
        if not postgres_reachable():
            pytest.skip(f"PostgreSQL not reachable at {PG_HOST}:{PG_PORT}: PostgreSQL variant NOT exercised")
        url = fresh_postgres_url()
        try:
            with TcpProxy(PG_HOST, PG_PORT) as proxy:
                engine = make_engine(url.replace(f"@{PG_HOST}:{PG_PORT}/", f"@127.0.0.1:{proxy.port}/"))
                migrate(engine)
                try:
                    yield engine, ProxyCut(proxy)
                finally:
                    engine.dispose()
        finally:
            drop_postgres(url)
        return
    path = tmp_path / "outage.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    try:
        yield engine, FileLock(str(path))
    finally:
        engine.dispose()


# --- talking to the service -----------------------------------------------------------------

@dataclass
class Filing:
    key: str
    member: str
    status: int = 0
    body: dict | None = None
    elapsed: float = 0.0

    @property
    def app_id(self) -> str | None:
        return self.body.get("id") if self.body and self.status in (200, 201) else None


async def file(svc, filing: Filing) -> Filing:
    started = time.monotonic()
    r = await svc.call("POST", "/api/applications", "clerk", headers={"Idempotency-Key": filing.key}, json={
        "benefit": "hospitalization", "member_id": svc.world.members[filing.member], "event_date": RECENT,
        "requested_fen": AMOUNT, "evidence": ["hospital_papers"], "event_key": f"stay {filing.key}"})
    filing.status, filing.body, filing.elapsed = r.status_code, r.json(), time.monotonic() - started
    return filing


def assert_unavailable(r, elapsed: float, fast: float, what: str) -> None:
    assert r.status_code == 503, (what, r.status_code, r.text)
    body = r.json()
    assert (body["error"], body["reason_zh"], body["reason_en"]) == ("database_unavailable", UNAVAILABLE_ZH, UNAVAILABLE_EN), what
    assert r.headers["Retry-After"] == "5", what
    assert elapsed < fast, f"{what}: answered after {elapsed:.1f} s"


async def timed(coro):
    started = time.monotonic()
    r = await coro
    return r, time.monotonic() - started


async def open_tasks(svc, user: str) -> list[dict]:
    r = await svc.call("GET", "/api/tasks?page_size=200", user)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def approve_all(svc, ids: set[str], timeout: float = 60.0) -> None:
    """Officer check (clerk2) and chair approval of every application in ``ids`` until each is decided."""
    deadline = time.monotonic() + timeout
    decided: set[str] = set()
    while True:
        acted = False
        for user in ("clerk2", "chair"):
            for task in await open_tasks(svc, user):
                if task["application_id"] in ids and task["stage"] in ("officer_check", "chair_approval"):
                    r = await svc.call("POST", f"/api/tasks/{task['id']}/decision", user, json={"action": "approve"})
                    assert r.status_code == 200, r.text
                    acted = True
                    if task["stage"] == "chair_approval":
                        decided.add(task["application_id"])
        if decided >= ids:
            return
        assert time.monotonic() < deadline, f"undecided: {sorted(ids - decided)}"
        if not acted:
            await asyncio.sleep(0.2)


def statuses(engine, ids) -> dict[str, str]:
    with Session(engine) as s:
        return {a.id: str(a.status.value if hasattr(a.status, "value") else a.status)
                for a in s.exec(select(Application).where(Application.id.in_(list(ids)))).all()}


async def wait_statuses(engine, ids, wanted=SETTLED, timeout: float = 90.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        found = statuses(engine, ids)
        if len(found) == len(ids) and all(st in wanted for st in found.values()):
            return found
        assert time.monotonic() < deadline, found
        await asyncio.sleep(0.25)


async def workflow_exists(client, app_id: str) -> bool:
    try:
        await client.get_workflow_handle(app_id).describe()
        return True
    except RPCError as exc:
        if exc.status == RPCStatusCode.NOT_FOUND:
            return False
        raise


def retried_attempts(records) -> Counter:
    """Attempts beyond the first, per activity type, from the histories (regular and local activities)."""
    retries: Counter = Counter()
    for rec in records:
        scheduled = {}
        for event in rec.history.events:
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                scheduled[event.event_id] = event.activity_task_scheduled_event_attributes.activity_type.name
            elif event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
                attrs = event.activity_task_started_event_attributes
                retries[scheduled[attrs.scheduled_event_id]] += attrs.attempt - 1
            elif event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
                marker = event.marker_recorded_event_attributes
                if marker.marker_name == "core_local_activity" and "data" in marker.details:
                    data = json.loads(marker.details["data"].payloads[0].data)
                    retries[data["activity_type"]] += int(data.get("attempt", 1)) - 1
    return +retries


# --- the scenario ---------------------------------------------------------------------------

async def outage_scenario(svc, outage) -> None:
    engine, client, world = svc.engine, svc.client, svc.world
    for user in ("clerk", "clerk2", "chair"):
        await svc.login(user)

    # Six applications through the officer check; four approved by the chair just before the outage.
    first = [await file(svc, Filing(f"before-{n}", MEMBERS[n % len(MEMBERS)])) for n in range(6)]
    assert [f.status for f in first] == [201] * 6, [f.body for f in first]
    ids = [f.app_id for f in first]
    for task in await open_tasks(svc, "clerk2"):
        r = await svc.call("POST", f"/api/tasks/{task['id']}/decision", "clerk2", json={"action": "approve"})
        assert r.status_code == 200, r.text
    deadline = time.monotonic() + 30
    while len(chair := {t["application_id"]: t for t in await open_tasks(svc, "chair")}) < 6:
        assert time.monotonic() < deadline, chair
        await asyncio.sleep(0.1)
    approved = await asyncio.gather(*[svc.call("POST", f"/api/tasks/{chair[i]['id']}/decision", "chair",
                                               json={"action": "approve"}) for i in ids[:4]])
    assert [r.status_code for r in approved] == [200] * 4

    # A burst of filings in flight when the database goes away: cut as soon as the first is recorded.
    burst = [Filing(f"burst-{n}", MEMBERS[n % len(MEMBERS)]) for n in range(4)]
    burst_tasks = [asyncio.create_task(file(svc, f)) for f in burst]
    deadline = time.monotonic() + 30
    while True:
        with Session(engine) as s:
            recorded = s.exec(select(func.count()).select_from(Application)
                              .where(Application.idempotency_key.in_([f.key for f in burst]))).one()
        if recorded or all(t.done() for t in burst_tasks):
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.005)
    with Session(engine) as s:
        paid_before = s.exec(select(func.count()).select_from(LedgerEntry).where(LedgerEntry.kind == "disburse")).one()
    await outage.begin()
    cut_at = time.monotonic()

    # During the outage: every kind of request answers 503 with the message, quickly.
    during = {
        "sign in": svc.http.post("/api/auth/token", json={"username": "alice", "password": "correct horse battery staple"}),
        "list": svc.call("GET", "/api/applications", "clerk"),
        "read": svc.call("GET", f"/api/applications/{ids[0]}", "clerk"),
        "inbox": svc.call("GET", "/api/tasks", "chair"),
        "decide": svc.call("POST", f"/api/tasks/{chair[ids[5]]['id']}/decision", "chair", json={"action": "approve"}),
    }
    refused = [Filing(f"outage-{n}", MEMBERS[n]) for n in range(3)]
    answers = await asyncio.gather(*[timed(call) for call in during.values()], *[file(svc, f) for f in refused])
    for what, (r, elapsed) in zip(during, answers):
        assert_unavailable(r, elapsed, outage.fast, what)
    for f in refused:
        assert f.status == 503 and f.elapsed < outage.fast, (f.key, f.status, f.elapsed, f.body)
        assert f.body["error"] == "database_unavailable" and f.body["reason_zh"] == UNAVAILABLE_ZH

    # An approval that reached the workflow as the database went away: accepted, waiting for the database.
    chair_actor = world.users["chair"]
    update = await client.get_workflow_handle(ids[4]).start_update(
        ApplicationWorkflow.act, Act(chair_actor, chair[ids[4]]["id"], "approve", "停电前已签字"),
        wait_for_stage=WorkflowUpdateStage.ACCEPTED)

    # The burst: each filing answered, with the message when it was not accepted, and none waited for the
    # database to come back (a recorded one waits for its assessment at most ASSESSMENT_WAIT_S).
    try:
        await asyncio.wait_for(asyncio.gather(*burst_tasks), ASSESSMENT_WAIT_S + outage.fast + 5)
    except TimeoutError:
        pytest.fail(f"filings in flight at the cut still unanswered {time.monotonic() - cut_at:.0f} s into the outage")
    print(f"\nburst at the cut: {[(f.key, f.status, round(f.elapsed, 1)) for f in burst]}; "
          f"{paid_before} of 4 approved already paid at the cut")
    for f in burst:
        assert f.status in (201, 503), (f.key, f.status, f.body)
        assert f.elapsed < ASSESSMENT_WAIT_S + outage.fast, (f.key, f.elapsed)
        if f.status == 503:
            assert f.body["error"] == "database_unavailable" and f.body["reason_zh"] == UNAVAILABLE_ZH, f.body
    assert time.monotonic() - cut_at < OUTAGE_SECONDS, "the requests during the outage took longer than the outage"
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(asyncio.shield(update.result()), 0.5)  # the decision waits for the database

    await asyncio.sleep(max(0.0, OUTAGE_SECONDS - (time.monotonic() - cut_at)))
    still = await timed(svc.call("GET", "/api/tasks", "chair"))
    assert_unavailable(*still, outage.fast, "inbox, late in the outage")
    await outage.end()

    # The pool recovers at once: the first request after the outage succeeds.
    r = await svc.call("GET", "/api/tasks?page_size=200", "chair")
    assert r.status_code == 200, r.text
    done = await asyncio.wait_for(update.result(), 90)
    assert done.accepted

    # Nothing half-done: a filing answered 503 has no row, or a row whose workflow runs.
    keys = {f.key: f for f in first + burst + refused}
    with Session(engine) as s:
        rows = s.exec(select(Application).where(Application.idempotency_key.in_(list(keys)))).all()
    by_key = Counter(a.idempotency_key for a in rows)
    assert max(by_key.values()) == 1, by_key
    row_of = {a.idempotency_key: a.id for a in rows}
    for f in keys.values():
        if f.status == 201:
            assert row_of[f.key] == f.app_id
        if f.key in row_of:
            assert await workflow_exists(client, row_of[f.key]), f"{f.key}: a row without its workflow"
    assert not any(k.startswith("outage-") for k in row_of), "a refused filing left a row"
    # The applicant files again with the same key: the recorded one comes back, the others are filed now.
    for f in [f for f in burst + refused if f.status == 503]:
        had_row = f.key in row_of
        await file(svc, f)
        assert f.status == (200 if had_row else 201), (f.key, had_row, f.status, f.body)
        if had_row:
            assert f.app_id == row_of[f.key]
    all_ids = {f.app_id for f in keys.values()}
    assert len(all_ids) == len(keys) == 13

    # Everyone still waiting is approved; every application is paid exactly once.
    await approve_all(svc, all_ids - set(ids[:5]))
    final = await wait_statuses(engine, all_ids)
    assert Counter(final.values()) == {"disbursed": 13}
    with Session(engine) as s:
        entries = s.exec(select(LedgerEntry).where(LedgerEntry.application_id.in_(list(all_ids)))).all()
        fund = s.get(Fund, world.funds["member_welfare"])
        budget = s.exec(select(func.sum(LedgerEntry.amount_fen)).where(LedgerEntry.fund_id == fund.id,
                                                                        LedgerEntry.kind == "budget")).one()
    moves = Counter((e.application_id, str(e.kind.value if hasattr(e.kind, "value") else e.kind), e.amount_fen) for e in entries)
    assert moves == Counter({(i, kind, AMOUNT): 1 for i in all_ids for kind in ("reserve", "disburse")}), moves
    assert (fund.spent_fen, fund.reserved_fen, fund.budget_fen) == (13 * AMOUNT, 0, budget)

    # The histories agree with the database, and show the activities that failed and were retried.
    records = [history.decode(await history.fetch_one(client, i)) for i in sorted(all_ids)]
    report = await projection_audit.audit(engine, client, records, funds=True)
    assert report.ok, [(f.subject, f.what, f.expected, f.found) for f in report.findings]
    retries = retried_attempts(records)
    print(f"retried activity attempts after the outage: {dict(retries)}")
    assert retries["project"] >= 1, retries  # at least the accepted decision's projection waited for the database


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
async def test_database_outage(kind, dev_env, tmp_path):
    async with outage_setup(kind, tmp_path) as (engine, outage), running_service(dev_env, engine) as svc:
        try:
            await outage_scenario(svc, outage)
        finally:
            await outage.end()  # a failed assertion must not leave the worker retrying against a dead database
