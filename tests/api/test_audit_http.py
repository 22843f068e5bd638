"""The auditor's workbench over real HTTP and from the command line, on the dev server."""

import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import text
from sqlmodel import Session

from rules.loader import DEFAULT_POLICY_DIR
from workflows.application import CHINA

ROOT = Path(__file__).resolve().parents[2]
RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=2)).isoformat()
YEAR = dt.datetime.now(CHINA).year


async def paid_birthday(service) -> str:
    r = await service.call("POST", "/api/applications", "clerk", json={
        "benefit": "birthday", "member_id": service.world.members["ivan"], "event_date": RECENT, "requested_fen": 35_000})
    app_id = r.json()["id"]
    for user in ("clerk", "auditor"):
        for _ in range(100):
            items = (await service.call("GET", "/api/tasks", user)).json()["items"]
            if items:
                break
            await asyncio.sleep(0.1)
        r = await service.call("POST", f"/api/tasks/{items[0]['id']}/decision", user, json={"action": "approve"})
        assert r.status_code == 200, r.text
    return app_id


async def listed(service, app_id: str) -> dict:
    """Visibility is eventually consistent: wait until the year's replay includes the application."""
    for _ in range(100):
        r = await service.call("POST", "/api/audit/replay", "auditor", json={"year": YEAR})
        body = r.json()
        if any(o["workflow_id"] == app_id for o in body["outcomes"]):
            return body
        await asyncio.sleep(0.2)
    raise AssertionError("application never listed")


async def test_audit_endpoints(service):
    app_id = await paid_birthday(service)
    timeline = await service.call("GET", f"/api/audit/applications/{app_id}/timeline", "auditor")
    assert timeline.status_code == 200
    actions = [e["action"] for e in timeline.json()["entries"]]
    assert actions[0] == "filed" and "rules_evaluated" in actions and "disburse" in actions
    assert (await service.call("GET", f"/api/audit/applications/{app_id}/timeline", "alice")).status_code == 403
    replayed = await listed(service, app_id)
    assert replayed["failed"] == 0
    recheck = (await service.call("POST", "/api/audit/recheck", "auditor", json={"ids": [app_id]})).json()
    assert recheck["ok"] and recheck["decisions"] == 1
    projection = (await service.call("POST", "/api/audit/projection", "auditor", json={"ids": [app_id]})).json()
    assert projection["ok"], projection
    with Session(service.engine) as s, s.begin():
        s.execute(text("UPDATE ledgerentry SET amount_fen = 1 WHERE application_id = :a AND kind = 'disburse'"), {"a": app_id})
    projection = (await service.call("POST", "/api/audit/projection", "auditor", json={"ids": [app_id]})).json()
    assert not projection["ok"] and {f["what"] for f in projection["findings"]} == {"ledger.disburse"}
    policy = (DEFAULT_POLICY_DIR / "wenzhou-2019.yaml").read_text(encoding="utf-8").replace("cap_fen: 30000", "cap_fen: 40000")
    what_if = await service.call("POST", "/api/audit/what-if", "auditor", data={"year": str(YEAR)},
                                 files={"policy": ("proposal.yaml", policy.encode(), "application/yaml")})
    assert what_if.status_code == 200, what_if.text
    assert what_if.json()["benefits"]["birthday"]["difference_fen"] == 5_000
    broken = await service.call("POST", "/api/audit/what-if", "auditor", data={"year": str(YEAR)},
                                files={"policy": ("bad.yaml", b"version: [", "application/yaml")})
    assert broken.status_code == 422 and broken.json()["field"] == "policy"
    assert (await service.call("POST", "/api/audit/recheck", "auditor", json={})).status_code == 422
    assert (await service.call("POST", "/api/audit/recheck", "clerk", json={"ids": [app_id]})).status_code == 403


async def test_audit_command_line(service):
    app_id = await paid_birthday(service)
    env = os.environ | {"TEMPORAL_ADDRESS": service.client.service_client.config.target_host,
                        "DATABASE_URL": service.engine.url.render_as_string(hide_password=False)}
    for command, key in (("replay", "failed"), ("recheck", "differences"), ("projection", "findings")):
        result = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "service.audit", command, "--id", app_id],
                                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, (command, result.stderr[-2000:])
        assert json.loads(result.stdout)[key] in (0, [])
    story = await asyncio.to_thread(subprocess.run, [sys.executable, "-m", "service.audit", "timeline", app_id],
                                    cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert story.returncode == 0 and json.loads(story.stdout)[0]["action"] == "filed"
