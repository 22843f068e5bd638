"""Text a person typed is escaped in every page that shows it: a name, a note, an event, a comment."""

from __future__ import annotations

import asyncio
import datetime as dt

from workflows.application import CHINA

from ..api.conftest import PASSWORD

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
ESCAPED_MARK = "&lt;script&gt;"


async def page(service, user: str, path: str) -> str:
    r = await service.http.post("/login", data={"username": user, "password": PASSWORD, "next": "/my"})
    assert r.status_code == 303, r.text
    token = r.cookies.get("welfare_token")
    service.http.cookies.clear()
    service.http.cookies.set("welfare_token", token)
    try:
        r = await service.http.get(path)
    finally:
        service.http.cookies.clear()
    assert r.status_code == 200, (user, path, r.status_code)
    return r.text


async def test_typed_text_is_escaped_in_the_pages(service):
    member = await service.call("POST", "/api/members", "clerk", json={
        "member_no": "ESC1", "name": HOSTILE[:64], "id_card": "110101199001010099", "birth_date": "1990-01-01",
        "join_date": "2015-01-01"})
    assert member.status_code == 201, member.text
    filed = await service.call("POST", "/api/applications", "clerk", json={
        "member_id": member.json()["id"], "benefit": "hospitalization", "event_date": RECENT, "requested_fen": 80_000,
        "evidence": ["hospital_papers"], "event_key": HOSTILE[:120], "note": HOSTILE})
    assert filed.status_code == 201, filed.text
    app_id = filed.json()["id"]
    for _ in range(100):
        tasks = (await service.call("GET", "/api/tasks", "clerk2")).json()["items"]
        if tasks:
            break
        await asyncio.sleep(0.1)
    r = await service.call("POST", f"/api/tasks/{tasks[0]['id']}/decision", "clerk2", json={"action": "approve", "comment": HOSTILE})
    assert r.status_code == 200, r.text

    shown = {
        ("clerk", f"/applications/{app_id}"): None,
        ("chair", "/inbox"): None,
        ("clerk", "/my"): None,
        ("clerk", "/apply"): None,
        ("auditor", f"/audit?application_id={app_id}"): None,
    }
    for (user, path) in shown:
        html = await page(service, user, path)
        assert "<script>alert" not in html and "onerror=alert(1)>" not in html, (user, path)
        shown[(user, path)] = ESCAPED_MARK in html
    # The hostile text is shown (escaped) where it belongs, not merely left out.
    assert shown[("clerk", f"/applications/{app_id}")] and shown[("chair", "/inbox")] and shown[("clerk", "/apply")], shown
