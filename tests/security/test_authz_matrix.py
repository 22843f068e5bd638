"""The authorisation matrix: every route of the app, called as every role, anonymously, and from another union.

`MATRIX` below is the table of what each role may do. A route of the app (JSON API, page, static
mount, docs) that has no row makes `test_every_route_has_a_row` fail, so nobody adds an endpoint
without deciding who may call it. `test_matrix` then calls every row as every column with real ids
(an application in its officer check, its task, a member, a fund of the first union) on the running
service, and checks each answer:

  ok    authorised, and done: 2xx (a page may also redirect anywhere but to the sign-in page)
  in    authorised, but the application's state refuses it for now: 409 (or 2xx)
  no    refused: 401 / 403 / 404 (a page: a redirect to the sign-in page, or a 403 / 404 page), and the
        body holds nothing of the first union: no application, task or member of it
  own   2xx, and nothing but the caller's own applications
  none  2xx, and nothing of the first union at all (org ids, applications, tasks, member numbers)

Columns: `member` is Alice, a member with no office who files for herself (and has a hardship file);
`other_member` is Judy, another plain member of the same union; `committee` is committee1;
`other_clerk` is the clerk of a second union created for this test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import pytest
from sqlmodel import Session, select

from rules.loader import DEFAULT_POLICY_DIR
from service.app import create_app
from service.models import Application, ApprovalTask, HardshipFile, Member
from service.settings import Settings
from workflows.application import CHINA

from ..api.conftest import PASSWORD
from ..world import fund
from .conftest import OtherUnion, add_plain_member, add_second_union

TODAY = dt.datetime.now(CHINA).date()
RECENT = (TODAY - dt.timedelta(days=3)).isoformat()
ROLES = ("anonymous", "member", "other_member", "clerk", "chair", "committee", "auditor", "admin", "other_clerk")
USERS = {"member": "alice", "other_member": "judy", "clerk": "clerk", "chair": "chair", "committee": "committee1",
         "auditor": "auditor", "admin": "admin", "other_clerk": "clerk_b", "zhang": "zhang", "clerk2": "clerk2"}
# Size 3, a deep-hardship household under the default policy's 低保 line (as in tests/hardship/helpers.py).
DEEP = {"size": 3, "annual_income_fen": 3_000_000, "unavoidable_costs_fen": 200_000, "sudden_event": False}

MATRIX = """
# method path                                       anonymous member other_member clerk chair committee auditor admin other_clerk
GET    /openapi.json                                 ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /docs                                         ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /docs/oauth2-redirect                         ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /redoc                                        ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /api/health                                   ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/auth/token                               ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/auth/logout                              no   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/applications                             no   ok   no   ok   no   no   no   ok   no
GET    /api/applications                             no   own  own  ok   ok   ok   ok   ok   none
GET    /api/applications/{app_id}                    no   ok   no   ok   ok   ok   ok   ok   no
POST   /api/applications/{app_id}/withdraw           no   ok   no   no   no   no   no   no   no
POST   /api/applications/{app_id}/resubmit           no   ok   no   no   no   no   no   no   no
POST   /api/applications/{app_id}/revoke             no   no   no   no   in   no   no   no   no
POST   /api/applications/{app_id}/objections         no   in   no   in   in   in   in   in   no
POST   /api/applications/{app_id}/evidence           no   ok   no   ok   no   no   no   ok   no
GET    /api/applications/{app_id}/evidence           no   ok   no   ok   ok   ok   ok   ok   no
GET    /api/evidence/{evidence_id}                   no   ok   no   ok   ok   ok   ok   ok   no
GET    /api/tasks                                    no   ok   ok   ok   ok   ok   ok   ok   none
POST   /api/tasks/{task_id}/decision                 no   no   no   ok   no   no   no   no   no
GET    /api/members                                  no   no   no   ok   ok   ok   ok   ok   none
POST   /api/members                                  no   no   no   ok   no   no   no   ok   no
PATCH  /api/members/{member_id}                      no   no   no   ok   no   no   no   ok   no
POST   /api/members/import                           no   no   no   ok   no   no   no   ok   no
GET    /api/funds                                    no   none none ok   ok   ok   ok   ok   none
POST   /api/funds/{fund_id}/budget                   no   no   no   no   no   no   no   ok   no
GET    /api/audit/applications/{app_id}/timeline     no   no   no   no   ok   no   ok   ok   no
POST   /api/audit/replay                             no   no   no   no   ok   no   ok   ok   no
POST   /api/audit/recheck                            no   no   no   no   ok   no   ok   ok   no
POST   /api/audit/projection                         no   no   no   no   ok   no   ok   ok   no
POST   /api/audit/what-if                            no   no   no   no   ok   no   ok   ok   no
GET    /api/audit/reports/annual                     no   no   no   no   ok   no   ok   ok   no
GET    /api/audit/reports/recipients                 no   no   no   no   ok   no   ok   ok   no
GET    /api/audit/chain                              no   no   no   no   ok   no   ok   ok   no
GET    /                                             no   ok   ok   ok   ok   ok   ok   ok   ok
GET    /login                                        ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /login                                        ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /logout                                       ok   ok   ok   ok   ok   ok   ok   ok   ok
GET    /apply                                        no   ok   ok   ok   ok   ok   ok   ok   none
POST   /apply                                        no   ok   no   ok   no   no   no   ok   no
GET    /my                                           no   own  own  ok   ok   ok   ok   ok   none
GET    /applications/{app_id}                        no   ok   no   ok   ok   ok   ok   ok   no
POST   /applications/{app_id}/withdraw               no   ok   no   no   no   no   no   no   no
POST   /applications/{app_id}/resubmit               no   ok   no   no   no   no   no   no   no
POST   /applications/{app_id}/evidence               no   ok   no   ok   no   no   no   ok   no
GET    /inbox                                        no   ok   ok   ok   ok   ok   ok   ok   none
POST   /tasks/{task_id}/decision                     no   no   no   ok   no   no   no   no   no
POST   /inbox/batches/{month}/sign-off               no   no   no   no   ok   no   no   no   no
GET    /audit                                        no   no   no   no   ok   no   ok   ok   no
GET    /admin                                        no   no   no   no   no   no   no   ok   no
POST   /admin/import                                 no   no   no   ok   no   no   no   ok   none
POST   /admin/funds/{fund_id}/budget                 no   no   no   no   no   no   no   ok   no
GET    /static                                       ok   ok   ok   ok   ok   ok   ok   ok   ok
POST   /api/hardship-files                           no   in   ok   ok   no   no   no   ok   no
GET    /api/hardship-files                           no   own  own  ok   ok   ok   ok   ok   none
GET    /api/hardship-files/{file_id}                 no   ok   no   ok   ok   ok   ok   ok   no
POST   /api/hardship-files/{file_id}/check           no   no   no   ok   no   no   no   no   no
POST   /api/hardship-files/{file_id}/visit           no   no   no   ok   no   no   no   no   no
POST   /api/hardship-files/{file_id}/votes           no   no   no   no   no   ok   no   no   no
POST   /api/hardship-files/{file_id}/objections      no   in   in   in   in   in   in   in   no
POST   /api/hardship-files/{file_id}/review          no   no   no   in   no   no   no   no   no
POST   /api/hardship-files/{file_id}/close           no   no   no   ok   ok   no   no   no   no
GET    /hardship                                     no   own  own  ok   ok   ok   ok   ok   none
POST   /hardship                                     no   in   in   ok   no   no   no   ok   no
GET    /hardship/{file_id}                           no   ok   no   ok   ok   ok   ok   ok   no
POST   /hardship/{file_id}/check                     no   no   no   ok   no   no   no   no   no
POST   /hardship/{file_id}/visit                     no   no   no   ok   no   no   no   no   no
POST   /hardship/{file_id}/votes                     no   no   no   no   no   ok   no   no   no
POST   /hardship/{file_id}/objections                no   in   in   in   in   in   in   in   no
POST   /hardship/{file_id}/review                    no   no   no   in   no   no   no   no   no
POST   /hardship/{file_id}/close                     no   no   no   ok   ok   no   no   no   no
GET    /campaigns                                    no   no   no   ok   ok   ok   ok   ok   no
POST   /campaigns                                    no   no   no   no   no   no   no   ok   no
POST   /api/campaigns                                no   no   no   no   no   no   no   ok   no
GET    /api/campaigns/{cid}                          no   no   no   ok   ok   ok   ok   ok   no
GET    /api/campaigns/{cid}/recipients               no   no   no   ok   ok   ok   ok   ok   no
GET    /api/gifts/upcoming                           no   no   no   ok   ok   ok   ok   ok   none
POST   /api/gifts/batches/{month}/sign-off           no   no   no   no   ok   no   no   no   no
"""

CODES = {"ok", "in", "no", "own", "none"}
UNION1_STAFF = {"clerk", "chair", "committee", "auditor", "admin"}


def parse_matrix(text: str = MATRIX) -> dict[tuple[str, str], dict[str, str]]:
    table: dict[tuple[str, str], dict[str, str]] = {}
    for line in text.strip().splitlines():
        if line.startswith("#"):
            continue
        method, path, *cells = line.split()
        assert len(cells) == len(ROLES), f"{method} {path}: {len(cells)} cells for {len(ROLES)} roles"
        assert set(cells) <= CODES, f"{method} {path}: unknown code in {cells}"
        assert (method, path) not in table, f"{method} {path} twice"
        table[(method, path)] = dict(zip(ROLES, cells, strict=True))
    return table


def app_routes(app) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves: API routes, pages, docs, and mounts (as GET)."""
    try:  # FastAPI ≥ 0.13x keeps included routers lazily; this walks into them
        from fastapi.routing import iter_route_contexts

        routes = list(iter_route_contexts(app.routes))
    except ImportError:
        routes = list(app.routes)
    found = set()
    for route in routes:
        methods = set(getattr(route, "methods", None) or ())
        if methods:
            found |= {(m, route.path) for m in methods - {"HEAD"}}
        else:  # a Mount (static files): GET below its prefix
            found.add(("GET", route.path))
    return found


def test_every_route_has_a_row():
    table = parse_matrix()
    app = create_app(Settings(), None, None)
    routes = app_routes(app)
    missing = sorted(routes - set(table))
    stale = sorted(set(table) - routes)
    assert not missing, f"routes with no row in the authorisation matrix (decide who may call them): {missing}"
    assert not stale, f"rows for routes the app no longer has: {stale}"
    spec = app.openapi()
    documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert documented <= set(table), sorted(documented - set(table))
    assert len(CALLS) == len(table) and set(CALLS) == set(table), sorted(set(table) ^ set(CALLS))


# --- calling each route as each role ------------------------------------------------------------

@dataclass
class Ctx:
    service: object
    other: OtherUnion
    judy_member_id: int
    tokens: dict[str, str] = field(default_factory=dict)
    setups: dict[str, object] = field(default_factory=dict)
    serial: itertools.count = field(default_factory=lambda: itertools.count(1))

    @property
    def http(self) -> httpx.AsyncClient:
        return self.service.http

    @property
    def world(self):
        return self.service.world

    async def token(self, role: str, fresh: bool = False) -> str | None:
        if role == "anonymous":
            return None
        user = USERS[role]
        if fresh or user not in self.tokens:
            r = await self.http.post("/api/auth/token", json={"username": user, "password": PASSWORD})
            assert r.status_code == 200, (user, r.text)
            if fresh:
                return r.json()["access_token"]
            self.tokens[user] = r.json()["access_token"]
        return self.tokens[user]

    async def api(self, role: str, method: str, url: str, fresh: bool = False, **kw) -> httpx.Response:
        token = await self.token(role, fresh)
        headers = kw.pop("headers", {}) | ({"Authorization": f"Bearer {token}"} if token else {})
        return await self.http.request(method, url, headers=headers, **kw)

    async def page(self, role: str, method: str, url: str, form: dict | None = None, files: dict | None = None,
                   fresh: bool = False) -> httpx.Response:
        from service.web.routes import TOKEN_COOKIE, csrf_for

        token = await self.token(role, fresh)
        data = None if form is None else form | {"csrf": csrf_for(token)}
        self.http.cookies.clear()
        if token:
            self.http.cookies.set(TOKEN_COOKIE, token)
        try:
            return await self.http.request(method, url, data=data, files=files)
        finally:
            self.http.cookies.clear()  # the JSON calls authenticate by header alone

    def n(self) -> int:
        return next(self.serial)

    # setups, made once per name: each state-changing row has its own application
    async def alice_app(self, name: str) -> str:
        if name not in self.setups:
            r = await self.api("member", "POST", "/api/applications", json=hospital_stay(self, f"{name} 入院"))
            assert r.status_code == 201 and r.json()["stage"] == "officer_check", r.text
            self.setups[name] = r.json()["id"]
        return self.setups[name]

    async def task_of(self, app_id: str, role: str = "clerk", stage: str = "officer_check") -> str:
        for _ in range(300):
            items = (await self.api(role, "GET", "/api/tasks?page_size=200")).json()["items"]
            found = [t["id"] for t in items if t["application_id"] == app_id and t["stage"] == stage]
            if found:
                return found[0]
            await asyncio.sleep(0.05)
        raise AssertionError(f"no {stage} task for {role} on {app_id}")

    async def officer_task(self, name: str) -> str:
        key = f"task:{name}"
        if key not in self.setups:
            self.setups[key] = await self.task_of(await self.alice_app(name))
        return self.setups[key]

    def fresh_member(self) -> int:
        from service import seed

        n = self.n()
        with Session(self.service.engine) as s, s.begin():
            org = s.get(seed.Organisation, self.world.org_id)
            return seed.member(s, org, f"HF{n:04d}", f"困难会员{n}", f"3303021975010{n:05d}", dt.date(1975, 1, 1)).id

    async def hardship_file(self, name: str, stage: str = "clerk_check") -> str:
        """A hardship file at ``stage``: Alice's own for "shared", otherwise a fresh member's opened by clerk2."""
        key = f"hardship:{name}"
        if key in self.setups:
            return self.setups[key]
        if name == "shared":
            r = await self.api("clerk", "POST", "/api/hardship-files", json={
                "member_id": self.world.members["alice"], "household": DEEP, "causes": "丈夫重病住院"})
        else:
            r = await self.api("clerk2", "POST", "/api/hardship-files", json={
                "member_id": self.fresh_member(), "household": DEEP, "causes": "意外致困"})
        assert r.status_code == 201, r.text
        file_id = r.json()["file_id"]
        base = f"/api/hardship-files/{file_id}"
        if stage in ("home_visit", "committee_vote"):
            r = await self.api("clerk", "POST", f"{base}/check", json={"action": "approve"})
            assert r.status_code == 200 and r.json()["stage"] == "home_visit", r.text
        if stage == "committee_vote":
            r = await self.api("clerk", "POST", f"{base}/visit", json={"findings": "入户核实属实", "household": DEEP})
            assert r.status_code == 200 and r.json()["stage"] == "committee_vote", r.text
        self.setups[key] = file_id
        return file_id

    async def campaign(self) -> str:
        if "campaign" not in self.setups:
            r = await self.api("admin", "POST", "/api/campaigns", json={"name": "matrix", "year": TODAY.year})
            assert r.status_code in (200, 201), r.text
            self.setups["campaign"] = r.json()["campaign_id"]
        return self.setups["campaign"]

    async def returned_app(self, name: str) -> str:
        key = f"returned:{name}"
        if key not in self.setups:
            app_id = await self.alice_app(name)
            task = await self.task_of(app_id)
            r = await self.api("clerk", "POST", f"/api/tasks/{task}/decision", json={"action": "return", "comment": "补充"})
            assert r.status_code == 200 and r.json()["status"] == "returned", r.text
            self.setups[key] = app_id
        return self.setups[key]


def hospital_stay(ctx: Ctx, stay: str) -> dict:
    return {"benefit": "hospitalization", "member_id": ctx.world.members["alice"], "event_date": RECENT,
            "requested_fen": 80_000, "evidence": ["hospital_papers"], "event_key": stay}


def member_csv(ctx: Ctx) -> dict:
    n = ctx.n()
    row = f"member_no,name,id_card,birth_date,join_date\nIMP{n:04d},导入{n},1101011990030{n:05d},1990-03-03,2015-01-01\n"
    return {"file": ("members.csv", row.encode(), "text/csv")}


Call = Callable[[Ctx, str], Awaitable[httpx.Response]]
CALLS: dict[tuple[str, str], Call] = {}


def route(key: str):
    method, path = key.split(" ", 1)

    def register(fn: Call) -> Call:
        CALLS[(method, path)] = fn
        return fn

    return register


def public_get(path: str, url: str | None = None) -> None:
    CALLS[("GET", path)] = lambda ctx, role: ctx.api(role, "GET", url or path)


for _path in ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/api/health", "/login"):
    public_get(_path)
public_get("/static", "/static/app.css")


@route("POST /api/auth/token")
async def _(ctx, role):
    return await ctx.http.post("/api/auth/token", json={"username": USERS.get(role, "alice"), "password": PASSWORD})


@route("POST /api/auth/logout")
async def _(ctx, role):
    return await ctx.api(role, "POST", "/api/auth/logout", fresh=True)  # a token of its own: the others stay valid


@route("POST /api/applications")
async def _(ctx, role):
    return await ctx.api(role, "POST", "/api/applications", json=hospital_stay(ctx, f"filed {ctx.n()}"))


@route("GET /api/applications")
async def _(ctx, role):
    await ctx.alice_app("shared")
    return await ctx.api(role, "GET", "/api/applications?page_size=200")


@route("GET /api/applications/{app_id}")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/applications/{await ctx.alice_app('shared')}")


@route("POST /api/applications/{app_id}/withdraw")
async def _(ctx, role):
    return await ctx.api(role, "POST", f"/api/applications/{await ctx.alice_app('withdraw api')}/withdraw")


@route("POST /api/applications/{app_id}/resubmit")
async def _(ctx, role):
    app_id = await ctx.returned_app("resubmit api")
    return await ctx.api(role, "POST", f"/api/applications/{app_id}/resubmit",
                         json={"requested_fen": 70_000, "evidence": ["hospital_papers"], "event_key": "resubmit api 入院"})


@route("POST /api/applications/{app_id}/revoke")
async def _(ctx, role):  # only the chair may revoke, and only once approved: before that, a 409
    return await ctx.api(role, "POST", f"/api/applications/{await ctx.alice_app('shared')}/revoke", json={"reason": "复核"})


@route("POST /api/applications/{app_id}/objections")
async def _(ctx, role):  # anyone who may read it may object during the public notice: it has none yet, a 409
    return await ctx.api(role, "POST", f"/api/applications/{await ctx.alice_app('shared')}/objections", json={"text": "异议"})


# evidence files: the applicant and the union's filers add them while the application is open; readers read them

PDF = b"%PDF-1.4\n%%EOF\n"


def evidence_upload(n: int) -> dict:
    return {"file": (f"matrix-{n}.pdf", PDF, "application/pdf")}


async def evidence_file(ctx) -> str:
    if "evidence" not in ctx.setups:
        r = await ctx.api("member", "POST", f"/api/applications/{await ctx.alice_app('shared')}/evidence",
                          data={"kind": "hospital_papers"}, files=evidence_upload(ctx.n()))
        assert r.status_code == 201, r.text
        ctx.setups["evidence"] = r.json()["id"]
    return ctx.setups["evidence"]


@route("POST /api/applications/{app_id}/evidence")
async def _(ctx, role):
    return await ctx.api(role, "POST", f"/api/applications/{await ctx.alice_app('shared')}/evidence",
                         data={"kind": "hospital_papers"}, files=evidence_upload(ctx.n()))


@route("GET /api/applications/{app_id}/evidence")
async def _(ctx, role):
    await evidence_file(ctx)
    return await ctx.api(role, "GET", f"/api/applications/{await ctx.alice_app('shared')}/evidence")


@route("GET /api/evidence/{evidence_id}")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/evidence/{await evidence_file(ctx)}")


@route("GET /api/tasks")
async def _(ctx, role):
    await ctx.officer_task("shared")
    return await ctx.api(role, "GET", "/api/tasks?page_size=200")


@route("POST /api/tasks/{task_id}/decision")
async def _(ctx, role):
    task = await ctx.officer_task("decide api")
    return await ctx.api(role, "POST", f"/api/tasks/{task}/decision", json={"action": "approve", "comment": "材料齐全"})


@route("GET /api/members")
async def _(ctx, role):
    return await ctx.api(role, "GET", "/api/members?page_size=500")


@route("POST /api/members")
async def _(ctx, role):
    n = ctx.n()
    body = {"member_no": f"NEW{n:04d}", "name": f"新会员{n}", "id_card": f"1101011991010{n:05d}", "birth_date": "1991-01-01",
            "join_date": "2020-01-01"}
    return await ctx.api(role, "POST", f"/api/members?org_id={ctx.world.org_id}", json=body)


@route("PATCH /api/members/{member_id}")
async def _(ctx, role):
    return await ctx.api(role, "PATCH", f"/api/members/{ctx.world.members['bob']}", json={"status": "active"})


@route("POST /api/members/import")
async def _(ctx, role):
    return await ctx.api(role, "POST", f"/api/members/import?org_id={ctx.world.org_id}", files=member_csv(ctx))


@route("GET /api/funds")
async def _(ctx, role):
    return await ctx.api(role, "GET", "/api/funds")


@route("POST /api/funds/{fund_id}/budget")
async def _(ctx, role):
    return await ctx.api(role, "POST", f"/api/funds/{ctx.world.funds['member_welfare']}/budget", json={"amount_fen": 100})


@route("GET /api/audit/applications/{app_id}/timeline")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/audit/applications/{await ctx.alice_app('shared')}/timeline")


for _what in ("replay", "recheck", "projection"):
    def _audit(ctx, role, what=_what):
        async def go():
            return await ctx.api(role, "POST", f"/api/audit/{what}", json={"ids": [await ctx.alice_app("shared")]})
        return go()
    CALLS[("POST", f"/api/audit/{_what}")] = _audit


@route("POST /api/audit/what-if")
async def _(ctx, role):
    policy = (DEFAULT_POLICY_DIR / "wenzhou-2019.yaml").read_bytes()
    return await ctx.api(role, "POST", "/api/audit/what-if", data={"year": str(TODAY.year)},
                         files={"policy": ("proposal.yaml", policy, "application/yaml")})


@route("GET /api/audit/reports/annual")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/audit/reports/annual?org_id={ctx.world.org_id}&year={TODAY.year}")


@route("GET /api/audit/reports/recipients")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/audit/reports/recipients?org_id={ctx.world.org_id}&year={TODAY.year}"
                                      f"&month={TODAY.month}&benefit=birthday")


@route("GET /api/audit/chain")
async def _(ctx, role):
    return await ctx.api(role, "GET", "/api/audit/chain")


# hardship files (困难职工档案), campaigns (送温暖) and scheduled gifts

HARDSHIP = "/api/hardship-files"


@route("POST /api/hardship-files")
async def _(ctx, role):
    await ctx.hardship_file("shared")  # Alice's own is open: a second one of hers is refused (409)
    own = {"member": ctx.world.members["alice"], "other_member": ctx.judy_member_id}
    body = {"household": DEEP, "causes": "致困原因"} | ({} if role in own else {"member_id": ctx.fresh_member()})
    return await ctx.api(role, "POST", HARDSHIP, json=body)


@route("GET /api/hardship-files")
async def _(ctx, role):
    await ctx.hardship_file("shared")
    return await ctx.api(role, "GET", f"{HARDSHIP}?page_size=200")


@route("GET /api/hardship-files/{file_id}")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"{HARDSHIP}/{await ctx.hardship_file('shared')}")


@route("POST /api/hardship-files/{file_id}/check")
async def _(ctx, role):
    return await ctx.api(role, "POST", f"{HARDSHIP}/{await ctx.hardship_file('check')}/check", json={"action": "approve"})


@route("POST /api/hardship-files/{file_id}/visit")
async def _(ctx, role):
    file_id = await ctx.hardship_file("visit", stage="home_visit")
    return await ctx.api(role, "POST", f"{HARDSHIP}/{file_id}/visit", json={"findings": "入户核实", "household": DEEP})


@route("POST /api/hardship-files/{file_id}/votes")
async def _(ctx, role):
    file_id = await ctx.hardship_file("votes", stage="committee_vote")
    return await ctx.api(role, "POST", f"{HARDSHIP}/{file_id}/votes", json={"action": "approve", "comment": "同意"})


@route("POST /api/hardship-files/{file_id}/objections")
async def _(ctx, role):  # any member of the union may object during the notice: there is none yet, a 409
    return await ctx.api(role, "POST", f"{HARDSHIP}/{await ctx.hardship_file('shared')}/objections", json={"text": "异议"})


@route("POST /api/hardship-files/{file_id}/review")
async def _(ctx, role):  # a clerk reviews a file in force: this one is not yet, a 409
    return await ctx.api(role, "POST", f"{HARDSHIP}/{await ctx.hardship_file('shared')}/review", json={"household": DEEP})


@route("POST /api/hardship-files/{file_id}/close")
async def _(ctx, role):  # a file of its own for each caller: closing ends it
    return await ctx.api(role, "POST", f"{HARDSHIP}/{await ctx.hardship_file(f'close {role}')}/close",
                         json={"reason": "left_hardship"})


@route("POST /api/campaigns")
async def _(ctx, role):
    return await ctx.api(role, "POST", "/api/campaigns", json={"name": f"matrix-{ctx.n()}", "year": TODAY.year,
                                                               "org_id": ctx.world.org_id})


@route("GET /api/campaigns/{cid}")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/campaigns/{await ctx.campaign()}")


@route("GET /api/campaigns/{cid}/recipients")
async def _(ctx, role):
    return await ctx.api(role, "GET", f"/api/campaigns/{await ctx.campaign()}/recipients")


@route("GET /api/gifts/upcoming")
async def _(ctx, role):
    return await ctx.api(role, "GET", "/api/gifts/upcoming?days=366")


@route("POST /api/gifts/batches/{month}/sign-off")
async def _(ctx, role):
    return await ctx.api(role, "POST", f"/api/gifts/batches/{TODAY:%Y-%m}/sign-off")


# pages: signed in by the cookie the sign-in page sets; every form carries its CSRF token

@route("GET /")
async def _(ctx, role):
    return await ctx.page(role, "GET", "/")


@route("POST /login")
async def _(ctx, role):
    return await ctx.page("anonymous", "POST", "/login", form={"username": USERS.get(role, "alice"), "password": PASSWORD,
                                                               "next": "/my"})


@route("POST /logout")
async def _(ctx, role):
    return await ctx.page(role, "POST", "/logout", form={}, fresh=True)


@route("GET /apply")
async def _(ctx, role):
    return await ctx.page(role, "GET", "/apply")


@route("POST /apply")
async def _(ctx, role):
    return await ctx.page(role, "POST", "/apply", form={
        "member_id": str(ctx.world.members["alice"]), "benefit": "hospitalization", "event_date": RECENT,
        "requested_yuan": "800", "evidence": "hospital_papers", "event_key": f"page {ctx.n()} 入院"})


@route("GET /my")
async def _(ctx, role):
    await ctx.alice_app("shared")
    return await ctx.page(role, "GET", "/my")


@route("GET /applications/{app_id}")
async def _(ctx, role):
    return await ctx.page(role, "GET", f"/applications/{await ctx.alice_app('shared')}")


@route("POST /applications/{app_id}/withdraw")
async def _(ctx, role):
    return await ctx.page(role, "POST", f"/applications/{await ctx.alice_app('withdraw page')}/withdraw", form={})


@route("POST /applications/{app_id}/resubmit")
async def _(ctx, role):
    app_id = await ctx.returned_app("resubmit page")
    return await ctx.page(role, "POST", f"/applications/{app_id}/resubmit",
                          form={"requested_yuan": "700", "evidence": "hospital_papers"})


@route("POST /applications/{app_id}/evidence")
async def _(ctx, role):
    return await ctx.page(role, "POST", f"/applications/{await ctx.alice_app('shared')}/evidence",
                          form={"kind": "hospital_papers"}, files=evidence_upload(ctx.n()))


@route("GET /inbox")
async def _(ctx, role):
    await ctx.officer_task("shared")
    return await ctx.page(role, "GET", "/inbox")


@route("POST /tasks/{task_id}/decision")
async def _(ctx, role):
    task = await ctx.officer_task("decide page")
    return await ctx.page(role, "POST", f"/tasks/{task}/decision", form={"action": "approve", "comment": "齐全"})


@route("POST /inbox/batches/{month}/sign-off")
async def _(ctx, role):
    return await ctx.page(role, "POST", f"/inbox/batches/{TODAY:%Y-%m}/sign-off", form={})


@route("GET /audit")
async def _(ctx, role):
    return await ctx.page(role, "GET", "/audit")


@route("GET /admin")
async def _(ctx, role):
    return await ctx.page(role, "GET", "/admin")


@route("POST /admin/import")
async def _(ctx, role):
    return await ctx.page(role, "POST", "/admin/import", form={}, files=member_csv(ctx))


@route("POST /admin/funds/{fund_id}/budget")
async def _(ctx, role):
    return await ctx.page(role, "POST", f"/admin/funds/{ctx.world.funds['member_welfare']}/budget",
                          form={"amount_yuan": "1", "idempotency_key": uuid.uuid4().hex})


# hardship-file and campaign pages: the same cases as their API rows, each state-changing row on a file of its own

PAGE_HOUSEHOLD = {"size": "3", "income_yuan": "30000", "costs_yuan": "2000"}  # DEEP, as the forms take it (yuan)


@route("GET /hardship")
async def _(ctx, role):
    await ctx.hardship_file("shared")
    return await ctx.page(role, "GET", "/hardship")


@route("POST /hardship")
async def _(ctx, role):
    # Alice's own is open, and Judy opened hers on the API's row just before: a second one is refused (409).
    await ctx.hardship_file("shared")
    own = role in ("member", "other_member")
    return await ctx.page(role, "POST", "/hardship", form={"causes": "致困原因"} | PAGE_HOUSEHOLD
                          | ({} if own else {"member_id": str(ctx.fresh_member())}))


@route("GET /hardship/{file_id}")
async def _(ctx, role):
    return await ctx.page(role, "GET", f"/hardship/{await ctx.hardship_file('shared')}")


@route("POST /hardship/{file_id}/check")
async def _(ctx, role):
    return await ctx.page(role, "POST", f"/hardship/{await ctx.hardship_file('check page')}/check", form={"action": "approve"})


@route("POST /hardship/{file_id}/visit")
async def _(ctx, role):
    file_id = await ctx.hardship_file("visit page", stage="home_visit")
    return await ctx.page(role, "POST", f"/hardship/{file_id}/visit", form={"findings": "入户核实"} | PAGE_HOUSEHOLD)


@route("POST /hardship/{file_id}/votes")
async def _(ctx, role):
    file_id = await ctx.hardship_file("votes page", stage="committee_vote")
    return await ctx.page(role, "POST", f"/hardship/{file_id}/votes", form={"action": "approve", "comment": "同意"})


@route("POST /hardship/{file_id}/objections")
async def _(ctx, role):  # not in its public notice: a 409 for every member of the union
    return await ctx.page(role, "POST", f"/hardship/{await ctx.hardship_file('shared')}/objections", form={"objection": "异议"})


@route("POST /hardship/{file_id}/review")
async def _(ctx, role):  # not in force yet: a 409 for the clerk
    return await ctx.page(role, "POST", f"/hardship/{await ctx.hardship_file('shared')}/review", form=PAGE_HOUSEHOLD)


@route("POST /hardship/{file_id}/close")
async def _(ctx, role):
    return await ctx.page(role, "POST", f"/hardship/{await ctx.hardship_file(f'close page {role}')}/close",
                          form={"reason": "left_hardship"})


@route("GET /campaigns")
async def _(ctx, role):  # another union's campaign is not found (404), as in the API
    return await ctx.page(role, "GET", f"/campaigns?cid={await ctx.campaign()}")


@route("POST /campaigns")
async def _(ctx, role):
    return await ctx.page(role, "POST", "/campaigns", form={"name": f"matrix-page-{ctx.n()}", "year": str(TODAY.year)})


# --- judging the answers -----------------------------------------------------------------------

@dataclass
class Union1:
    """What belongs to the first union, read from the database when an answer is judged."""

    org_id: int
    app_ids_by_member: dict[int, set[str]]
    task_ids: dict[str, str]  # task id -> application id
    member_nos: dict[str, int]  # member number -> member id

    @classmethod
    def load(cls, engine, org_id: int) -> Union1:
        with Session(engine) as s:
            apps: dict[int, set[str]] = {}
            for app_id, member_id in s.exec(select(Application.id, Application.member_id).where(Application.org_id == org_id)):
                apps.setdefault(member_id, set()).add(app_id)
            files = select(HardshipFile.file_id, HardshipFile.member_id).join(Member, Member.id == HardshipFile.member_id)
            for file_id, member_id in s.exec(files.where(Member.org_id == org_id, HardshipFile.file_id.is_not(None))):
                apps.setdefault(member_id, set()).add(file_id)  # a hardship file is the member's record too
            tasks = {t: a for t, a in s.exec(select(ApprovalTask.id, ApprovalTask.application_id).where(ApprovalTask.org_id == org_id))}
            nos = {no: m for no, m in s.exec(select(Member.member_no, Member.id).where(Member.org_id == org_id))}
        return cls(org_id, apps, tasks, nos)

    def app_ids(self, except_member: int | None = None) -> set[str]:
        return {a for m, ids in self.app_ids_by_member.items() if m != except_member for a in ids}

    def everything(self) -> set[str]:
        return self.app_ids() | set(self.task_ids) | set(self.member_nos)

    def of_member(self, member_id: int | None) -> set[str]:
        """What a plain member may see of the union anyway: their number, their applications and those tasks."""
        own_apps = self.app_ids_by_member.get(member_id, set())
        return ({no for no, m in self.member_nos.items() if m == member_id} | own_apps
                | {t for t, a in self.task_ids.items() if a in own_apps})


def org_ids_in(value) -> set[int]:
    found = set()
    if isinstance(value, dict):
        if isinstance(value.get("org_id"), int):
            found.add(value["org_id"])
        for v in value.values():
            found |= org_ids_in(v)
    elif isinstance(value, list):
        for v in value:
            found |= org_ids_in(v)
    return found


def is_page(response: httpx.Response) -> bool:
    return response.headers.get("content-type", "").startswith("text/html") or 300 <= response.status_code < 400


def to_sign_in(response: httpx.Response) -> bool:
    return 300 <= response.status_code < 400 and response.headers.get("location", "").startswith("/login?")


def judge(code: str, role: str, request_url: str, response: httpx.Response, union1: Union1, caller_member: int | None) -> str | None:
    """None when the answer fits the code; otherwise what is wrong."""
    status, text = response.status_code, response.text
    if status >= 500:
        return f"server error {status}"
    if code == "no":
        if role == "anonymous" and not (status == 401 or to_sign_in(response)):
            return f"anonymous got {status}, not 401 or the sign-in page"
        if role != "anonymous" and status not in (403, 404) and not to_sign_in(response):
            return f"got {status}, not 403/404"
        # A refused action may show what the caller may read anyway (staff of the union: all of it).
        readable = union1.everything() if role in UNION1_STAFF else union1.of_member(caller_member)
        leaked = {a for a in union1.everything() - readable if a in text and a not in request_url}
        if leaked:
            return f"refused, yet the body names {sorted(leaked)[:3]}"
        if not is_page(response) and set(response.json()) - {"error", "reason_zh", "reason_en", "field", "errors"}:
            return f"refused, yet the body carries data: {text[:200]}"
        return None
    if code == "in":
        return None if status == 409 or 200 <= status < 300 else f"got {status}, not 409/2xx"
    if not (200 <= status < 300 or (is_page(response) and 300 <= status < 400 and not to_sign_in(response))):
        return f"got {status}, not 2xx" + (f" ({text[:200]})" if status != 303 else f" -> {response.headers.get('location')}")
    if code in ("own", "none"):
        foreign = union1.app_ids(except_member=caller_member) if code == "own" else union1.everything()
        leaked = {a for a in foreign if a in text}
        if leaked:
            return f"shows {sorted(leaked)[:3]} of {'others' if code == 'own' else 'the other union'}"
        if code == "none" and not is_page(response) and union1.org_id in org_ids_in(response.json()):
            return "shows records of the other union (org_id)"
    return None


def caller_member_id(ctx: Ctx, role: str) -> int | None:
    if role == "member":
        return ctx.world.members["alice"]
    if role == "other_member":
        return ctx.judy_member_id
    return None


async def test_matrix(service):
    """Every route as every role: refusals first (they change nothing), then the calls that may act."""
    engine = service.engine
    other = add_second_union(engine)
    from service import seed

    with Session(engine) as s, s.begin():
        judy = seed.member(s, s.get(seed.Organisation, service.world.org_id), "M0100", "judy", "330302198001010100",
                           dt.date(1980, 1, 1))
        judy_id = judy.id
    add_plain_member(engine, service.world.org_id, "judy", judy_id)
    ctx = Ctx(service, other, judy_id)
    # The second union has an application of its own, so "nothing of the other union" is not trivially true.
    r = await ctx.api("other_clerk", "POST", "/api/applications", json={
        "benefit": "hospitalization", "member_id": other.members["zhang"], "event_date": RECENT, "requested_fen": 50_000,
        "evidence": ["hospital_papers"], "event_key": "第二工会 入院"})
    assert r.status_code == 201, r.text

    table = parse_matrix()
    fund_id = service.world.funds["member_welfare"]
    budget_before = fund(engine, fund_id).budget_fen
    failures, calls = [], 0
    for (method, path), row in table.items():
        order = sorted(ROLES, key=lambda role: row[role] != "no")  # refusals first
        for role in order:
            code = row[role]
            response = await CALLS[(method, path)](ctx, role)
            calls += 1
            union1 = Union1.load(engine, service.world.org_id)
            problem = judge(code, role, str(response.request.url), response, union1, caller_member_id(ctx, role))
            if problem:
                failures.append(f"{method:6} {path:45} {role:12} expected {code:4}: {problem}")
    print(f"\n{calls} calls over {len(table)} routes x {len(ROLES)} roles")
    assert not failures, "authorisation matrix mismatches:\n" + "\n".join(failures)
    # What the allowed calls did, and nothing more.
    assert fund(engine, fund_id).budget_fen - budget_before == 200, "only the admin raised the budget (100 fen, twice)"
    with Session(engine) as s:
        imported = s.exec(select(Member.org_id, Member.member_no).where(Member.member_no.startswith("IMP"))).all()
        created = s.exec(select(Member.org_id).where(Member.member_no.startswith("NEW"))).all()
    assert sorted(org for org, _ in imported) == sorted([service.world.org_id] * 4 + [other.org_id]), imported
    assert created == [service.world.org_id] * 2, created


async def test_second_union_is_invisible_both_ways(service):
    """A clerk (or any officer) of one union gets 403/404, never data, for another union's records."""
    engine = service.engine
    other = add_second_union(engine)
    ctx = Ctx(service, other, judy_member_id=0)
    filed = await ctx.api("zhang", "POST", "/api/applications", json={  # a member of the second union, for himself
        "benefit": "hospitalization", "event_date": RECENT, "requested_fen": 50_000,
        "evidence": ["hospital_papers"], "event_key": "第二工会 入院"})
    assert filed.status_code == 201, filed.text
    theirs = filed.json()["id"]
    their_task = await ctx.task_of(theirs, role="other_clerk")
    ours = await ctx.alice_app("ours")
    our_task = await ctx.officer_task("ours")
    their_fund, their_member = other.funds["member_welfare"], other.members["zhang"]

    async def refused(role: str, method: str, url: str, markers: set[str], **kw) -> None:
        r = await ctx.api(role, method, url, **kw)
        assert r.status_code in (403, 404), (role, method, url, r.status_code, r.text)
        assert set(r.json()) <= {"error", "reason_zh", "reason_en", "field", "errors"}, r.text
        assert not {m for m in markers if m in r.text and m not in url}, r.text

    for role, app_id, task_id, fund_id, member_id, markers in (
        ("clerk", theirs, their_task, their_fund, their_member, {"B0001", "zhang", theirs}),
        ("admin", theirs, their_task, their_fund, their_member, {"B0001", "zhang", theirs}),
        ("other_clerk", ours, our_task, service.world.funds["member_welfare"], service.world.members["alice"],
         {"M0001", "alice", ours}),
    ):
        await refused(role, "GET", f"/api/applications/{app_id}", markers)
        await refused(role, "POST", f"/api/applications/{app_id}/withdraw", markers)
        await refused(role, "POST", f"/api/applications/{app_id}/objections", markers, json={"text": "异议"})
        await refused(role, "POST", f"/api/tasks/{task_id}/decision", markers, json={"action": "approve"})
        await refused(role, "PATCH", f"/api/members/{member_id}", markers, json={"name": "改名"})
        await refused(role, "POST", f"/api/funds/{fund_id}/budget", markers, json={"amount_fen": 1})
        foreign_org = other.org_id if role != "other_clerk" else service.world.org_id
        await refused(role, "GET", f"/api/members?org_id={foreign_org}", markers)
        await refused(role, "POST", f"/api/members?org_id={foreign_org}", markers, json={
            "member_no": "X1", "name": "x", "id_card": "110101199001010011", "birth_date": "1990-01-01", "join_date": "2020-01-01"})
        await refused(role, "GET", f"/api/audit/reports/annual?org_id={foreign_org}", markers)
        for listing in ("/api/applications?page_size=200", "/api/tasks?page_size=200", "/api/members?page_size=500", "/api/funds"):
            r = await ctx.api(role, "GET", listing)
            assert r.status_code == 200, (role, listing, r.text)
            assert foreign_org not in org_ids_in(r.json()) and not {m for m in markers if m in r.text}, (role, listing, r.text)
    # The chair and auditor of the first union cannot audit the second's application either.
    for role in ("chair", "auditor"):
        await refused(role, "GET", f"/api/audit/applications/{theirs}/timeline", {"B0001", "zhang"})
        await refused(role, "POST", "/api/audit/recheck", {"B0001", "zhang"}, json={"ids": [theirs]})
    # Each union's clerk still does their own union's work.
    mine = await ctx.api("other_clerk", "POST", f"/api/tasks/{their_task}/decision", json={"action": "approve"})
    assert mine.status_code == 200 and mine.json()["org_id"] == other.org_id, mine.text


def test_matrix_table_is_well_formed():
    table = parse_matrix()
    for (method, path), row in table.items():
        if path.startswith("/api/") and path not in ("/api/health", "/api/auth/token"):
            assert row["anonymous"] == "no", f"{method} {path} open to anonymous callers"
        assert row["other_clerk"] != "own", (method, path)
    json.dumps(MATRIX)  # plain text, for review
    assert re.search(r"^GET\s+/api/applications\s+no\s+own", MATRIX, re.M)  # a member sees only their own
