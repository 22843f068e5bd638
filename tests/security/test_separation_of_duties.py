"""Separation of duties over HTTP: whoever approved an application may not audit it, whatever roles they hold."""

from __future__ import annotations

import asyncio
import datetime as dt

from sqlmodel import Session, select

from service.models import AuditEvent, Role
from workflows.application import CHINA

from .conftest import grant

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()


async def open_task(service, user: str, app_id: str, stage: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        items = (await service.call("GET", "/api/tasks", user)).json()["items"]
        found = [t for t in items if t["application_id"] == app_id and t["stage"] == stage]
        if found:
            return found[0]
        assert asyncio.get_running_loop().time() < deadline, f"no {stage} task for {user} on {app_id}"
        await asyncio.sleep(0.1)


async def test_an_approver_may_not_audit_the_application_they_approved(service):
    # The clerk is also on the funds audit committee of the same union (a small union's reality).
    grant(service.engine, "clerk", service.world.org_id, Role.auditor)
    filed = await service.call("POST", "/api/applications", "alice", json={
        "benefit": "wedding", "member_id": service.world.members["alice"], "event_date": RECENT,
        "requested_fen": 50_000, "evidence": ["marriage_certificate"]})
    assert filed.status_code == 201, filed.text
    app_id = filed.json()["id"]
    for user, stage in (("clerk", "officer_check"), ("chair", "chair_approval"), ("clerk", "receipt")):
        task = await open_task(service, user, app_id, stage)
        r = await service.call("POST", f"/api/tasks/{task['id']}/decision", user, json={"action": "approve"})
        assert r.status_code == 200, (stage, r.text)

    audit = await open_task(service, "clerk", app_id, "audit_review")  # in their inbox: they hold the role
    refused = await service.call("POST", f"/api/tasks/{audit['id']}/decision", "clerk", json={"action": "approve"})
    assert refused.status_code == 403, refused.text
    body = refused.json()
    assert body["error"] == "approver_audits" and body["reason_zh"] and body["reason_en"]
    # The chair, who approved too, is refused the same way once given the auditor role.
    grant(service.engine, "chair", service.world.org_id, Role.auditor)
    chair = await service.call("POST", f"/api/tasks/{audit['id']}/decision", "chair", json={"action": "approve"})
    assert chair.status_code == 403 and chair.json()["error"] == "approver_audits"
    # The refusals changed nothing: the application still waits for an independent auditor, who may close it.
    app = (await service.call("GET", f"/api/applications/{app_id}", "auditor")).json()
    assert app["stage"] == "audit_review"
    ok = await service.call("POST", f"/api/tasks/{audit['id']}/decision", "auditor", json={"action": "approve"})
    assert ok.status_code == 200, ok.text
    with Session(service.engine) as s:
        refusals = s.exec(select(AuditEvent).where(AuditEvent.application_id == app_id, AuditEvent.action == "refused")).all()
    assert sorted(e.actor for e in refusals if e.detail["code"] == "approver_audits") == ["chair", "clerk"]
