"""Members (and their import), funds, and signing in."""

import io

from openpyxl import Workbook

HEADER = "member_no,name,id_card,birth_date,join_date,status\n"


def csv_file(rows: str, name: str = "members.csv"):
    return {"file": (name, (HEADER + rows).encode("utf-8"), "text/csv")}


async def test_create_and_update_member_with_masked_id_card(service):
    body = {"member_no": "N0001", "name": "新会员", "id_card": "330302199001011234", "birth_date": "1990-01-01",
            "join_date": "2020-01-01", "relatives": [{"name": "父亲", "relation": "parent"}]}
    r = await service.call("POST", "/api/members", "clerk", json=body)
    assert r.status_code == 201, r.text
    m = r.json()
    assert m["id_card_masked"] == "330***********1234" and "330302199001011234" not in r.text
    assert m["relatives"][0]["relation"] == "parent"
    dup = await service.call("POST", "/api/members", "clerk", json=body)
    assert dup.status_code == 422 and dup.json()["field"] == "member_no"
    up = await service.call("PATCH", f"/api/members/{m['id']}", "clerk", json={"status": "retired", "retired_on": "2026-01-01"})
    assert up.status_code == 200 and up.json()["status"] == "retired"
    assert (await service.call("POST", "/api/members", "alice", json=body | {"member_no": "N2"})).status_code == 403


async def test_csv_import_all_or_nothing_with_errors_per_row(service):
    bad = "A1,甲,330302199001011234,1990-01-01,2020-01-01,active\nA2,乙,12345,1990-02-30,2020-01-01,active\nA1,丙,330302199001011235,1990-01-01,2020-01-01,active\n"
    r = await service.call("POST", "/api/members/import", "clerk", files=csv_file(bad))
    assert r.status_code == 422
    errors = r.json()["errors"]
    assert {(e["row"], e["field"]) for e in errors} >= {(3, "id_card"), (3, "birth_date"), (4, "member_no")}
    assert all(e["reason_zh"] and e["reason_en"] for e in errors)
    listing = (await service.call("GET", "/api/members?q=A", "clerk")).json()
    assert all(not m["member_no"].startswith("A") for m in listing["items"])  # nothing half-imported
    good = "A1,甲,330302199001011234,1990-01-01,2020-01-01,active\nA2,乙,33030219900202123X,1990-02-02,2020-01-01,retired\n"
    r = await service.call("POST", "/api/members/import", "clerk", files=csv_file(good))
    assert r.status_code == 200 and r.json() == {"imported": 2, "errors": []}


async def test_xlsx_import(service):
    wb = Workbook()
    ws = wb.active
    ws.append(["member_no", "name", "id_card", "birth_date", "join_date"])
    ws.append(["X1", "表格会员", "330302198505051234", "1985-05-05", "2015-01-01"])
    buf = io.BytesIO()
    wb.save(buf)
    files = {"file": ("members.xlsx", buf.getvalue(), "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")}
    r = await service.call("POST", "/api/members/import", "admin", files=files)
    assert r.status_code == 200 and r.json()["imported"] == 1
    wrong = await service.call("POST", "/api/members/import", "admin", files={"file": ("m.txt", b"x", "text/plain")})
    assert wrong.status_code == 422 and wrong.json()["field"] == "file"


async def test_funds_listed_and_budget_raised_once_per_key(service):
    funds = (await service.call("GET", "/api/funds", "chair")).json()
    welfare = next(f for f in funds if f["code"] == "member_welfare")
    assert welfare["available_fen"] == welfare["budget_fen"] - welfare["reserved_fen"] - welfare["spent_fen"]
    for _ in range(2):
        r = await service.call("POST", f"/api/funds/{welfare['id']}/budget", "admin", json={"amount_fen": 100},
                               headers={"Idempotency-Key": "k1"})
        assert r.status_code == 200 and r.json()["budget_fen"] == welfare["budget_fen"] + 100
    assert (await service.call("POST", f"/api/funds/{welfare['id']}/budget", "chair", json={"amount_fen": 1})).status_code == 403
    assert (await service.call("POST", f"/api/funds/{welfare['id']}/budget", "admin", json={"amount_fen": 0})).status_code == 422
    assert (await service.call("GET", "/api/funds", "alice")).json() == []


async def test_lockout_after_repeated_failures_and_logout_revokes(service):
    for _ in range(5):
        r = await service.http.post("/api/auth/token", json={"username": "auditor", "password": "nope"})
        assert r.status_code == 401
    locked = await service.http.post("/api/auth/token", json={"username": "auditor", "password": "correct horse battery staple"})
    assert locked.status_code == 423 and locked.json()["reason_zh"]
    headers = await service.login("chair")
    assert (await service.http.get("/api/tasks", headers=headers)).status_code == 200
    assert (await service.http.post("/api/auth/logout", headers=headers)).status_code == 204
    assert (await service.http.get("/api/tasks", headers=headers)).status_code == 401
