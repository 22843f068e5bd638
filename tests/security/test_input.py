"""Input: strict schemas (unknown fields refused), a request size limit, no control characters, bounded ids."""

from __future__ import annotations

import datetime as dt
import json

from service.app import create_app
from service.settings import Settings
from workflows.application import CHINA

RECENT = (dt.datetime.now(CHINA).date() - dt.timedelta(days=3)).isoformat()


def resolve(spec: dict, schema: dict) -> dict:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def objects_in(spec: dict, schema: dict, seen: set | None = None):
    """Every object schema reachable from ``schema`` (through $ref, anyOf, items, properties)."""
    seen = set() if seen is None else seen
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[1]
        assert name in spec["components"]["schemas"], f"dangling $ref {schema['$ref']}"
        if name in seen:
            return
        seen.add(name)
    schema = resolve(spec, schema)
    if schema.get("type") == "object" or "properties" in schema:
        yield schema
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key, []):
            yield from objects_in(spec, sub, seen)
    if "items" in schema:
        yield from objects_in(spec, schema["items"], seen)
    for sub in schema.get("properties", {}).values():
        yield from objects_in(spec, sub, seen)


def test_every_json_body_refuses_unknown_fields_in_the_spec():
    spec = create_app(Settings(), None, None).openapi()
    bodies = 0
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            for media, content in op.get("requestBody", {}).get("content", {}).items():
                if media == "multipart/form-data":  # a file upload: its parts are named by the form, not free
                    continue
                for obj in objects_in(spec, content["schema"]):
                    bodies += 1
                    assert obj.get("additionalProperties") is False, f"{method.upper()} {path} ({media}): {json.dumps(obj)[:200]}"
    assert bodies >= 12


async def test_strict_input_over_http(service):
    members = service.world.members
    wedding = {"benefit": "wedding", "member_id": members["alice"], "event_date": RECENT, "requested_fen": 50_000,
               "evidence": ["marriage_certificate"]}
    cases = [
        ("POST", "/api/applications", {"json": wedding | {"approved_fen": 1}}, "approved_fen"),
        ("POST", "/api/applications", {"json": wedding | {"household": {"size": 2, "annual_income_fen": 1, "unavoidable_costs_fen": 0,
                                                                       "sudden_event": False, "pets": 1}}}, "household.pets"),
        ("POST", "/api/applications", {"json": wedding | {"note": "a\x00b"}}, "note"),
        ("POST", "/api/applications", {"json": wedding | {"member_id": 2**40}}, "member_id"),
        ("POST", "/api/applications", {"data": {k: str(v) for k, v in wedding.items() if k != "evidence"} | {"member_id": "²"}},
         "member_id"),
        ("POST", "/api/auth/token", {"json": {"username": "clerk", "password": "x", "remember": True}}, "remember"),
        ("POST", "/api/members", {"json": {"member_no": "Z1", "name": "a\x07", "id_card": "110101199001010011",
                                           "birth_date": "1990-01-01", "join_date": "2020-01-01"}}, "name"),
        ("PATCH", f"/api/members/{2**40}", {"json": {"status": "active"}}, "member_id"),
        ("GET", "/api/applications?status=bogus", {}, "status"),
        ("GET", "/api/applications?date_to=9999-12-31&member_id=99999999999", {}, "member_id"),
        ("POST", f"/api/funds/{2**40}/budget", {"json": {"amount_fen": 1}}, "fund_id"),
        ("POST", "/api/audit/recheck", {"json": {"ids": ["A\x00"]}}, "ids"),
    ]
    for method, path, kw, field in cases:
        user = "auditor" if "audit" in path else "clerk" if "token" not in path else None
        r = await service.call(method, path, user, **kw)
        assert r.status_code == 422, (method, path, r.status_code, r.text)
        assert r.json()["field"] == field and r.json()["reason_zh"], (path, r.json())
    # The last day there is, as an upper bound, is no server error.
    assert (await service.call("GET", "/api/applications?date_to=9999-12-31", "clerk")).status_code == 200
    # Nothing of the refused was recorded.
    assert (await service.call("GET", "/api/applications", "clerk")).json()["total"] == 0


async def test_request_size_limit(service):
    big = b'{"benefit": "' + b"x" * (2 * 1024 * 1024) + b'"}'
    r = await service.call("POST", "/api/applications", "clerk", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and r.json()["reason_zh"]
    upload = {"file": ("members.csv", b"member_no,name\n" + b"x" * (5 * 1024 * 1024), "text/csv")}
    r = await service.call("POST", "/api/members/import", "clerk", files=upload)
    assert r.status_code == 413
