"""Personal data: id-card and bank-account numbers never leave in clear.

Not in API responses, not in log lines (the service's structlog configuration, captured), not in
workflow ids, inputs, histories or search attributes, and not in the database (only a keyed digest
and the masked form are kept).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import datetime as dt
import io
import json
from pathlib import Path

import structlog

from service.logging import configure
from service.security import mask_personal_numbers
from workflows.application import CHINA

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()
ID_CARD = "330302199203041236"
ID_CARD_X = "33030219850607123X"
IMPORTED = "110101198808081234"
BAD_ROW_CARD = "11010119880808123"  # 17 digits: the row is refused, and the refusal must not echo it
BANK = "6222021234567890128"
SECRETS = (ID_CARD, ID_CARD_X, IMPORTED, BAD_ROW_CARD, BANK, ID_CARD_X.lower())


def clear(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


def payload_texts(value) -> list[str]:
    """Every payload of a history (workflow input, activity inputs and results, updates, memo) as text."""
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "data" and isinstance(item, str):
                try:
                    found.append(base64.b64decode(item, validate=True).decode("utf-8", "replace"))
                except binascii.Error:
                    pass
            else:
                found.extend(payload_texts(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(payload_texts(item))
    return found


def test_masking_rules():
    assert mask_personal_numbers(f"身份证{ID_CARD}，卡号{BANK}") == "身份证330***********1236，卡号6222***********0128"
    assert mask_personal_numbers(ID_CARD_X.lower()) == "330***********123X"
    assert mask_personal_numbers("卡号 6222 0212 3456 7890") == "卡号 6222 **** **** 7890"
    for kept in ("A20261122-254E4A72A1", "10000000000", "2026-11-21T12:00:00+00:00", "tel 13800138000",
                 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"):
        assert mask_personal_numbers(kept) == kept


def test_log_lines_are_masked():
    buffer = io.StringIO()
    configure(json_lines=True, stream=buffer, cache=False)
    try:
        log = structlog.get_logger("test")
        log.info("imported", note=f"身份证 {ID_CARD}", nested={"cards": [BANK]}, plain=3)
        try:
            raise ValueError(f"bad card {ID_CARD_X}")
        except ValueError:
            log.exception("failed")
    finally:
        structlog.reset_defaults()
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert lines[0]["note"] == "身份证 330***********1236" and lines[0]["nested"] == {"cards": ["6222***********0128"]}
    assert "330***********123X" in lines[1]["exception"]
    assert not clear(buffer.getvalue())


async def test_id_cards_and_accounts_never_in_clear(service):
    buffer = io.StringIO()
    configure(json_lines=True, stream=buffer, cache=False)  # the service's own log configuration, into a buffer
    seen: list[str] = []  # every response body

    async def call(method: str, path: str, user: str, **kw):
        r = await service.call(method, path, user, **kw)
        seen.append(f"{method} {path} -> {r.status_code}: {r.text}")
        return r

    try:
        created = await call("POST", "/api/members", "clerk", json={
            "member_no": "P0001", "name": "隐私会员", "id_card": ID_CARD_X.lower(), "birth_date": "1985-06-07",
            "join_date": "2010-01-01", "relatives": [{"name": "配偶", "relation": "spouse"}]})
        assert created.status_code == 201, created.text
        assert created.json()["id_card_masked"] == "330***********123X"
        member_id = created.json()["id"]
        bad = await call("POST", "/api/members", "clerk", json={
            "member_no": "P0002", "name": "x", "id_card": BAD_ROW_CARD, "birth_date": "1988-08-08", "join_date": "2010-01-01"})
        assert bad.status_code == 422 and bad.json()["field"] == "id_card"
        rows = ("member_no,name,id_card,birth_date,join_date\n"
                f"P0003,导入会员,{IMPORTED},1988-08-08,2010-01-01\nP0004,坏行,{BAD_ROW_CARD},1988-08-08,2010-01-01\n")
        refused = await call("POST", "/api/members/import", "clerk", files={"file": ("m.csv", rows.encode(), "text/csv")})
        assert refused.status_code == 422 and any(e["field"] == "id_card" for e in refused.json()["errors"])
        good = rows.splitlines()[0] + "\n" + rows.splitlines()[1] + "\n"
        assert (await call("POST", "/api/members/import", "clerk", files={"file": ("m.csv", good.encode(), "text/csv")})).status_code == 200

        # Numbers typed into free text: the note, a comment, an objection, a revocation reason.
        filed = await call("POST", "/api/applications", "clerk", json={
            "member_id": member_id, "benefit": "hospitalization", "event_date": RECENT, "requested_fen": 80_000,
            "evidence": ["hospital_papers"], "event_key": f"住院 {ID_CARD}",
            "note": f"患者身份证 {ID_CARD}，工资卡 {BANK}，请打款"})
        assert filed.status_code == 201, filed.text
        app = filed.json()
        assert "330***********1236" in app["details"]["note"] and "6222***********0128" in app["details"]["note"]
        app_id = app["id"]
        for _ in range(100):
            tasks = (await call("GET", "/api/tasks", "clerk2")).json()["items"]
            if tasks:
                break
            await asyncio.sleep(0.1)
        decided = await call("POST", f"/api/tasks/{tasks[0]['id']}/decision", "clerk2",
                             json={"action": "approve", "comment": f"已核对身份证 {ID_CARD}"})
        assert decided.status_code == 200, decided.text
        await call("POST", f"/api/applications/{app_id}/objections", "alice", json={"text": f"{ID_CARD} 不是本人"})
        await call("POST", f"/api/applications/{app_id}/revoke", "chair", json={"reason": f"核对 {BANK}"})
        for path in ("/api/applications", f"/api/applications/{app_id}", "/api/members?page_size=500", "/api/tasks"):
            await call("GET", path, "chair")
        await call("GET", f"/api/audit/applications/{app_id}/timeline", "auditor")
        await call("POST", "/api/audit/recheck", "auditor", json={"ids": [app_id]})
    finally:
        structlog.reset_defaults()

    responses = "\n".join(seen)
    assert not clear(responses), [line[:300] for line in seen if clear(line)]
    logged = buffer.getvalue()
    assert "facts_gathered" in logged and '"event": "request"' in logged  # the API's and the worker's lines were captured
    assert not clear(logged), [line for line in logged.splitlines() if clear(line)][:5]

    # Temporal: the workflow id, its input and whole history, and its search attributes.
    handle = service.client.get_workflow_handle(app_id)
    assert not clear(app_id)
    history_json = (await handle.fetch_history()).to_json()
    decoded = "\n".join(payload_texts(json.loads(history_json)))  # payloads are base64 in the JSON form
    assert app_id in decoded and "330***********1236" in decoded and "6222***********0128" in decoded  # masked note, comment
    assert not clear(history_json) and not clear(decoded)
    described = await handle.describe()
    assert not clear(repr(described.search_attributes)) and not clear(repr(described.typed_search_attributes))
    assert not clear(described.id)

    # The database keeps a keyed digest and the masked form only (SQLite file and its write-ahead log).
    service.engine.dispose()
    db = Path(service.engine.url.database)
    stored = b"".join(p.read_bytes() for p in (db, Path(f"{db}-wal")) if p.exists())
    assert not [s for s in SECRETS if s.encode() in stored]
