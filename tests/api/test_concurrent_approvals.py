"""40 approvals at once on a fund with room for 25: exactly 25 paid, the fund never below zero."""

import asyncio
import datetime as dt

from sqlmodel import Session, select

from service.models import Application, Fund, LedgerEntry
from workflows.application import CHINA

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=2)).isoformat()
MEMBERS = ["dave", "erin", "frank", "grace", "ivan"]


async def wait_settled(service, ids, timeout=60.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        with Session(service.engine) as s:
            statuses = s.exec(select(Application.status).where(Application.id.in_(ids))).all()
        if all(st in ("disbursed", "awaiting_funds") for st in statuses):
            return statuses
        assert asyncio.get_running_loop().time() < deadline, statuses
        await asyncio.sleep(0.2)


async def test_forty_approvals_at_once(service_any_db):
    service = service_any_db  # welfare fund: room for exactly 25 x 300 yuan
    ids = []
    for n in range(40):
        member = MEMBERS[n % len(MEMBERS)]
        r = await service.call("POST", "/api/applications", "clerk", json={
            "benefit": "hospitalization", "member_id": service.world.members[member], "event_date": RECENT,
            "requested_fen": 30_000, "evidence": ["hospital_papers"], "event_key": f"stay {n}"})
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    checked = 0
    while inbox := (await service.call("GET", "/api/tasks?page_size=20", "clerk2")).json()["items"]:
        for task in inbox:  # each decision takes the task out of the inbox: always read the first page
            r = await service.call("POST", f"/api/tasks/{task['id']}/decision", "clerk2", json={"action": "approve"})
            assert r.status_code == 200, r.text
            checked += 1
    assert checked == 40
    chair_tasks = []
    deadline = asyncio.get_running_loop().time() + 30
    while len(chair_tasks) < 40:
        inbox = (await service.call("GET", "/api/tasks?page_size=200", "chair")).json()
        chair_tasks = inbox["items"]
        assert asyncio.get_running_loop().time() < deadline, f"{len(chair_tasks)} chair tasks"
        await asyncio.sleep(0.1)
    responses = await asyncio.gather(*[
        service.call("POST", f"/api/tasks/{t['id']}/decision", "chair", json={"action": "approve"}) for t in chair_tasks])
    assert [r.status_code for r in responses] == [200] * 40
    statuses = await wait_settled(service, ids)
    assert statuses.count("disbursed") == 25 and statuses.count("awaiting_funds") == 15
    with Session(service.engine) as s:
        f = s.get(Fund, service.world.funds["member_welfare"])
        disbursed = s.exec(select(LedgerEntry).where(LedgerEntry.kind == "disburse")).all()
    assert (f.spent_fen, f.reserved_fen, f.budget_fen) == (25 * 30_000, 0, 25 * 30_000)
    assert len(disbursed) == 25 and len({e.application_id for e in disbursed}) == 25
    # Raising the budget wakes the waiting ones.
    admin = await service.call("POST", f"/api/funds/{f.id}/budget", "admin", json={"amount_fen": 5 * 30_000},
                               headers={"Idempotency-Key": "raise-1"})
    assert admin.status_code == 200 and admin.json()["available_fen"] == 5 * 30_000
    deadline = asyncio.get_running_loop().time() + 30
    while True:
        with Session(service.engine) as s:
            paid = len(s.exec(select(LedgerEntry).where(LedgerEntry.kind == "disburse")).all())
        if paid == 30:
            break
        assert asyncio.get_running_loop().time() < deadline, paid
        await asyncio.sleep(0.2)
    with Session(service.engine) as s:
        f = s.get(Fund, f.id)
    assert f.spent_fen == f.budget_fen == 30 * 30_000 and f.reserved_fen == 0
