"""On the dev server: launching and watching a campaign over HTTP, the 签领表, the gifts due next,
the chair's batch sign-off (chair only), and the daily gift Schedule, triggered."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import uuid

from sqlmodel import Session, select
from temporalio.client import WorkflowExecutionStatus

from service import ledger, seed
from service.models import Application, Fund, Organisation
from service.schedules import ensure_gift_schedule
from workflows.application import CHINA
from workflows.campaign_types import GiftsInput
from workflows.gifts import DailyGiftsWorkflow

from ..world import YEAR
from .helpers import WARMTH, add_households, disbursements


async def _wait(predicate, timeout: float = 60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("timed out")
        await asyncio.sleep(0.1)


async def test_launch_watch_and_recipients_over_http(campaign_service):
    svc = campaign_service
    active = add_households(svc.engine, svc.world.org_id, 6)
    body = {"name": "spring-festival", "year": YEAR, "title": f"{YEAR}年春节送温暖"}
    assert (await svc.call("POST", "/api/campaigns", "clerk", json=body)).status_code == 403  # admins launch
    r = await svc.call("POST", "/api/campaigns", "admin", json=body)
    assert r.status_code == 201, r.text
    launched = r.json()
    cid = launched["campaign_id"]
    assert cid == f"CAMPAIGN-{svc.world.org_id}-{YEAR}-spring-festival"
    assert launched["state"] in ("running", "completed") and launched["total"] == 6
    assert launched["done"] + launched["pending"] + launched["failed"] == 6
    total = sum(WARMTH[t] for t in active.values())
    assert launched["total_fen"] == total

    async def finished():
        p = (await svc.call("GET", f"/api/campaigns/{cid}", "chair")).json()
        return p if p["state"] == "completed" else None

    done = await _wait(finished)
    assert (done["done"], done["pending"], done["failed"], done["paid_fen"]) == (6, 0, 0, total)
    again = await svc.call("POST", "/api/campaigns", "admin", json=body)  # launching again pays nothing more
    assert again.status_code == 200 and again.json()["done"] == 6
    assert disbursements(svc.engine, cid) == {m: [WARMTH[t]] for m, t in active.items()}

    listed = (await svc.call("GET", f"/api/campaigns/{cid}/recipients", "clerk")).json()
    assert listed["count"] == 6 and listed["total_fen"] == total
    assert {row["tier"] for row in listed["rows"]} == set(active.values()) and all(r["signature"] == "" for r in listed["rows"])
    r = await svc.call("GET", f"/api/campaigns/{cid}/recipients?format=csv", "clerk")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert lines[2][-1] == "签名 Signature" and len(lines) == 2 + 1 + 6 + 1
    assert (await svc.call("GET", f"/api/campaigns/{cid}", "alice")).status_code == 404  # a member sees no campaign
    assert (await svc.call("GET", f"/api/campaigns/CAMPAIGN-{svc.world.org_id}-{YEAR}-nothing", "chair")).status_code == 404


async def test_campaign_refused_over_http_when_the_fund_is_short(campaign_service):
    svc = campaign_service
    add_households(svc.engine, svc.world.org_id, 3)
    with Session(svc.engine) as s, s.begin():  # a hardship fund of 1000 yuan
        f = s.get(Fund, svc.world.funds["hardship_fund"])
        f.budget_fen = 100_000
    r = await svc.call("POST", "/api/campaigns", "admin", json={"name": "short", "year": YEAR})
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "insufficient_funds" and "经费余额不足" in r.json()["reason_zh"]
    # After a budget rise the same campaign may be launched again.
    ledger.raise_budget(svc.engine, svc.world.funds["hardship_fund"], 10_000_000, "budget:test:rise", "admin")
    r = await svc.call("POST", "/api/campaigns", "admin", json={"name": "short", "year": YEAR})
    assert r.status_code == 201 and r.json()["state"] in ("running", "completed")


async def test_upcoming_gifts_and_the_chairs_batch_sign_off(campaign_service):
    svc = campaign_service
    today = dt.datetime.now(CHINA).date()
    soon = today + dt.timedelta(days=3)
    with Session(svc.engine) as s, s.begin():
        org = s.get(Organisation, svc.world.org_id)
        soon_id = seed.member(s, org, "S0001", "将过生日", "330302199001010001", dt.date(1990, soon.month, min(soon.day, 28))).id
    r = await svc.call("GET", "/api/gifts/upcoming?days=5", "clerk")
    assert r.status_code == 200
    assert any(i["member_id"] == soon_id and i["benefit"] == "birthday" for i in r.json()["items"]) == (soon.day <= 28)
    assert (await svc.call("GET", "/api/gifts/upcoming", "alice")).status_code == 403

    # A month's gifts recorded and started by the daily workflow, then signed off in one action.
    day = today - dt.timedelta(days=1)
    with Session(svc.engine) as s, s.begin():
        org = s.get(Organisation, svc.world.org_id)
        ids = [seed.member(s, org, f"S01{n:02d}", f"寿星{n}", f"3303021991010{n:05d}", dt.date(1991, day.month, day.day)).id
               for n in range(3)]
    await svc.client.execute_workflow(DailyGiftsWorkflow.run, GiftsInput(start=day.isoformat(), end=day.isoformat()),
                                      id=f"gifts-{uuid.uuid4().hex[:6]}", task_queue=svc.task_queue)

    async def tasks_open():
        r = await svc.call("GET", "/api/tasks?stage=batch_sign_off", "chair")
        return r.json()["items"] if r.json()["total"] >= 3 else None

    await _wait(tasks_open)
    month = f"{day:%Y-%m}"
    for user in ("clerk", "committee1", "admin", "alice"):
        assert (await svc.call("POST", f"/api/gifts/batches/{month}/sign-off", user)).status_code == 403
    r = await svc.call("POST", f"/api/gifts/batches/{month}/sign-off", "chair")
    assert r.status_code == 200, r.text
    assert r.json()["signed"] >= 3 and r.json()["refused"] == []

    async def paid():
        with Session(svc.engine) as s:
            rows = s.exec(select(Application).where(Application.member_id.in_(ids))).all()
        return all(a.status in ("disbursed", "receipt_confirmed") for a in rows) and len(rows) == 3

    await _wait(paid)
    again = await svc.call("POST", f"/api/gifts/batches/{month}/sign-off", "chair")
    assert again.json()["signed"] == 0  # nothing left open in that batch


async def test_the_daily_gift_schedule_triggered_on_the_dev_server(campaign_service):
    svc = campaign_service
    today = dt.datetime.now(CHINA).date()
    with Session(svc.engine) as s, s.begin():
        org = s.get(Organisation, svc.world.org_id)
        born_today = seed.member(s, org, "T0001", "今天生日", "330302199201010001", today.replace(year=1992)
                                 if not (today.month == 2 and today.day == 29) else dt.date(1992, 2, 29)).id
    schedule_id = f"daily-gifts-{uuid.uuid4().hex[:8]}"
    await ensure_gift_schedule(svc.client, svc.task_queue, schedule_id)
    await ensure_gift_schedule(svc.client, svc.task_queue, schedule_id)  # installing twice is an update
    handle = svc.client.get_schedule_handle(schedule_id)
    try:
        desc = await handle.describe()
        assert desc.schedule.spec.time_zone_name == "Asia/Shanghai"
        assert desc.schedule.policy.catchup_window == dt.timedelta(days=30)
        await handle.trigger()

        async def created():
            with Session(svc.engine) as s:
                return s.exec(select(Application).where(Application.member_id == born_today)).all()

        (app,) = await _wait(created)
        assert (app.benefit, app.event_date, app.idempotency_key) == ("birthday", today, f"gift:birthday:{today.year}:m{born_today}")

        async def run_done():
            d = await handle.describe()
            actions = d.info.recent_actions
            if not actions:
                return None
            wf = svc.client.get_workflow_handle(actions[-1].action.workflow_id, run_id=actions[-1].action.first_execution_run_id)
            return (await wf.describe()).status == WorkflowExecutionStatus.COMPLETED

        await _wait(run_done)
        await handle.trigger()  # a second run the same day creates nothing more
        await _wait(lambda: _count_runs(svc.client, handle, 2))
        with Session(svc.engine) as s:
            assert len(s.exec(select(Application).where(Application.member_id == born_today)).all()) == 1
    finally:
        await handle.delete()


async def _count_runs(client, handle, n: int) -> bool:
    d = await handle.describe()
    if len(d.info.recent_actions) < n:
        return False
    wf = client.get_workflow_handle(d.info.recent_actions[-1].action.workflow_id,
                                            run_id=d.info.recent_actions[-1].action.first_execution_run_id)
    return (await wf.describe()).status == WorkflowExecutionStatus.COMPLETED
