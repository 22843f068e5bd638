"""The hardship-file and warmth-campaign pages over real HTTP (cookie sign-in, CSRF on every form), and the
file's page in a real headless Chromium. The public notice lasts 5 real working days: these tests go as far as
its start; the notice's end, objections and the yearly review are in tests/hardship."""

from __future__ import annotations

import asyncio
import datetime as dt
import html
import re

import httpx
import pytest_asyncio
from sqlmodel import Session

from service import ledger, seed
from service.models import Fund, Organisation
from service.web.routes import TOKEN_COOKIE, csrf_for

from ..api.conftest import PASSWORD, database, running_service
from ..campaigns.helpers import add_households
from ..security.conftest import own_namespace
from ..world import YEAR
from .conftest import ARTIFACTS, signed_in

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'
HOUSEHOLD = {"size": "3", "income_yuan": "30000", "costs_yuan": "2000"}  # deep hardship under the default 低保 line
FILE_URL = re.compile(r"^/hardship/(HF-\d+-\d+)$")


@pytest_asyncio.fixture
async def service(dev_env, tmp_path):
    """The running service in a Temporal namespace of its own: file and campaign ids repeat across test databases."""
    async with database("sqlite", tmp_path) as engine, running_service(await own_namespace(dev_env), engine) as svc:
        yield svc


class Person:
    """One signed-in person: the sign-in page's cookie, and the CSRF token its forms carry."""

    def __init__(self, http: httpx.AsyncClient, token: str):
        self.http, self.csrf = http, csrf_for(token)

    async def get(self, path: str) -> httpx.Response:
        return await self.http.get(path)

    async def post(self, path: str, form: dict) -> httpx.Response:
        return await self.http.post(path, data=form | {"csrf": self.csrf})


async def sign_in(svc, stack, username: str) -> Person:
    http = await stack.enter_async_context(httpx.AsyncClient(base_url=svc.base_url, timeout=120))
    r = await http.post("/login", data={"username": username, "password": PASSWORD, "next": "/hardship"})
    assert r.status_code == 303 and r.headers["location"] == "/hardship", r.text
    return Person(http, r.cookies[TOKEN_COOKIE])


def add_member(svc, member_no: str, name: str) -> int:
    with Session(svc.engine) as s, s.begin():
        org = s.get(Organisation, svc.world.org_id)
        return seed.member(s, org, member_no, name, f"33030219750101{member_no[-4:]}", dt.date(1975, 1, 1)).id


def error_of(page: httpx.Response) -> str:
    found = re.search(r'id="action-error">([^<]*)<', page.text) or re.search(r'id="campaign-error">([^<]*)<', page.text)
    return html.unescape(found.group(1)) if found else ""


async def open_file(person: Person, member_id: int, causes: str) -> str:
    r = await person.post("/hardship", {"member_id": str(member_id), "causes": causes} | HOUSEHOLD)
    assert r.status_code == 303, (r.status_code, error_of(r), r.text[-2000:])
    return FILE_URL.match(r.headers["location"]).group(1)


async def until_stage(person: Person, file_id: str, stage_zh: str, timeout: float = 120) -> str:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        page = await person.get(f"/hardship/{file_id}")
        if f'<span id="stage">{stage_zh}</span>' in page.text:
            return page.text
        assert asyncio.get_running_loop().time() < deadline, f"{file_id} never reached {stage_zh}"
        await asyncio.sleep(0.2)


async def test_a_file_from_opening_to_public_notice_on_the_pages(service):
    from contextlib import AsyncExitStack

    svc = service
    member_id = add_member(svc, "P0001", "困难会员甲")
    async with AsyncExitStack() as stack:
        clerk2 = await sign_in(svc, stack, "clerk2")
        listed = await clerk2.get("/hardship")
        assert listed.status_code == 200 and 'id="open-form"' in listed.text and "P0001 困难会员甲" in listed.text
        assert 'href="/hardship"' in listed.text and 'href="/campaigns"' in listed.text  # staff see both in the nav

        # An unreadable amount is refused next to its field, what was typed kept, nothing opened.
        r = await clerk2.post("/hardship", {"member_id": str(member_id), "causes": "丈夫重病"} | HOUSEHOLD | {"income_yuan": "三万"})
        assert r.status_code == 422 and 'id="open-income-error"' in r.text and 'value="三万"' in r.text
        assert (await svc.call("GET", "/api/hardship-files", "clerk")).json()["total"] == 0

        file_id = await open_file(clerk2, member_id, "丈夫重病住院，身份证 330302198001011234")
        r = await clerk2.post("/hardship", {"member_id": str(member_id), "causes": "再开一份"} | HOUSEHOLD)
        assert r.status_code == 409 and file_id in error_of(r)  # one open file per member, said on the page

        clerk = await sign_in(svc, stack, "clerk")
        page = await clerk.get(f"/hardship/{file_id}")
        assert page.status_code == 200 and '<span id="stage">初审</span>' in page.text and 'id="check"' in page.text
        assert "330302198001011234" not in page.text and "330***********1234" in page.text  # the causes, masked
        assert 'id="visit"' not in page.text  # only the form of the stage the file is at

        committee1 = await sign_in(svc, stack, "committee1")
        r = await committee1.post(f"/hardship/{file_id}/check", {"action": "approve"})
        assert r.status_code == 403 and error_of(r) == "您没有该环节的权限"  # the workflow's refusal, on the page
        assert 'id="check"' not in r.text  # and no check form for a committee member

        r = await clerk.post(f"/hardship/{file_id}/check", {"action": "approve", "comment": "材料齐全"})
        assert r.status_code == 303 and r.headers["location"] == f"/hardship/{file_id}"
        page = await until_stage(clerk, file_id, "入户调查")
        assert 'id="visit"' in page and 'id="visit-size" name="size" inputmode="numeric" value="3"' in page  # as declared

        r = await clerk.post(f"/hardship/{file_id}/visit", {"findings": "", **HOUSEHOLD})
        assert r.status_code == 422 and 'id="visit-findings-error"' in r.text
        r = await clerk.post(f"/hardship/{file_id}/visit", {"findings": "入户核实属实，家中两人患病", **HOUSEHOLD})
        assert r.status_code == 303
        page = await until_stage(clerk, file_id, "集体研究表决")
        api = (await svc.call("GET", f"/api/hardship-files/{file_id}", "clerk")).json()
        assert api["tier"] == "deep" and api["assessment"]["fired"] == ["hardship.tier.deep"]
        assessment = html.unescape(page.split('id="assessment"', 1)[1].split("</section>", 1)[0])
        assert "深度困难" in assessment and "hardship.tier.deep" in assessment
        assert all(reason["zh"] in assessment for reason in api["assessment"]["reasons"])  # the rules' own explanation
        assert '<dd id="tier">深度困难</dd>' in page

        listed = await clerk.get("/hardship?tier=deep&status=pending&stage=committee_vote")
        assert f'href="/hardship/{file_id}"' in listed.text
        assert f'href="/hardship/{file_id}"' not in (await clerk.get("/hardship?tier=relative")).text

        voters = [committee1, await sign_in(svc, stack, "committee2"), await sign_in(svc, stack, "committee3")]
        assert 'id="vote"' in (await committee1.get(f"/hardship/{file_id}")).text
        r = await committee1.post(f"/hardship/{file_id}/votes", {"action": "approve", "comment": "同意建档"})
        assert r.status_code == 303
        assert 'id="vote"' not in (await committee1.get(f"/hardship/{file_id}")).text  # voted: no second ballot
        r = await committee1.post(f"/hardship/{file_id}/votes", {"action": "approve"})
        assert r.status_code == 409 and error_of(r) == "您已投过票"
        for person in voters[1:]:
            r = await person.post(f"/hardship/{file_id}/votes", {"action": "approve"})
            assert r.status_code == 303, error_of(r)

        page = await until_stage(clerk, file_id, "公示")
        assert 'id="notice-until"' in page and 'id="objection"' in page
        story = html.unescape(page.split('id="story"', 1)[1])
        for step in ("建档申请", "初审", "入户调查报告", "规则评定", "投票同意", "表决结果", "开始公示", "操作被拒绝"):
            assert step in story, step
        assert "同意：同意 3，不同意 0，共 4 人" in story and "5 个工作日" in story

        english = await clerk.get(f"/hardship/{file_id}?lang=en")
        assert '<span id="stage">Public notice</span>' in english.text and "Deep hardship" in english.text
        assert "Public notice started" in english.text and 'href="?lang=zh"' in english.text
        assert '<span id="stage">公示</span>' in (await clerk.get(f"/hardship/{file_id}?lang=zh")).text  # and back

        # The member herself is a plain member: she reads her own file but has no clerk's forms.
        alice_file = await open_file(await sign_in(svc, stack, "alice"), svc.world.members["alice"], "本人申请")
        r = await clerk2.get(f"/hardship/{alice_file}")
        assert r.status_code == 200 and 'id="check"' in r.text
        alice = await sign_in(svc, stack, "alice")
        assert (await alice.get(f"/hardship/{file_id}")).status_code == 404  # not hers
        r = await alice.post(f"/hardship/{alice_file}/close", {"reason": "moved"})
        assert r.status_code == 403 and 'id="close"' not in r.text

        # During 公示 any member of the union may object; one who may not read the file is told it was received.
        r = await clerk.post(f"/hardship/{file_id}/objections", {"objection": ""})
        assert r.status_code == 422 and 'id="objection-text-error"' in r.text
        r = await alice.post(f"/hardship/{file_id}/objections", {"objection": "该户经营一家店铺"})
        assert r.status_code == 200 and "异议已收到" in r.text and "困难会员甲" not in r.text
        page = await until_stage(clerk, file_id, "集体研究表决")
        assert "收到异议" in page and "该户经营一家店铺" in page and "第 2 轮" in page


async def test_typed_text_is_escaped_on_the_hardship_pages(service):
    from contextlib import AsyncExitStack

    svc = service
    member_id = add_member(svc, "P0002", HOSTILE[:64])
    async with AsyncExitStack() as stack:
        clerk2 = await sign_in(svc, stack, "clerk2")
        file_id = await open_file(clerk2, member_id, HOSTILE)
        clerk = await sign_in(svc, stack, "clerk")
        assert (await clerk.post(f"/hardship/{file_id}/check", {"action": "approve", "comment": HOSTILE})).status_code == 303
        await until_stage(clerk, file_id, "入户调查")
        assert (await clerk.post(f"/hardship/{file_id}/visit", {"findings": HOSTILE, **HOUSEHOLD})).status_code == 303
        await until_stage(clerk, file_id, "集体研究表决")
        for path in ("/hardship", f"/hardship/{file_id}"):
            text = (await clerk.get(path)).text
            assert "<script>alert" not in text and "onerror=alert(1)>" not in text, path
            assert "&lt;script&gt;alert" in text, path  # shown, escaped: not merely left out
        story = (await clerk.get(f"/hardship/{file_id}")).text.split('id="story"', 1)[1]
        assert story.count("&lt;script&gt;alert") == 3  # the causes, the check's comment, the findings


async def test_campaign_pages_refuse_a_launch_the_fund_cannot_pay(service):
    from contextlib import AsyncExitStack

    svc = service
    active = add_households(svc.engine, svc.world.org_id, 3)
    with Session(svc.engine) as s, s.begin():  # a hardship fund of 1000 yuan for 3 households
        s.get(Fund, svc.world.funds["hardship_fund"]).budget_fen = 100_000
    launch = {"name": "spring-festival", "year": str(YEAR), "title": f"{YEAR}年春节送温暖", "fund": "hardship_fund"}
    async with AsyncExitStack() as stack:
        alice = await sign_in(svc, stack, "alice")
        r = await alice.get("/campaigns")
        assert r.status_code == 403 and 'href="/campaigns"' not in r.text  # no nav link either
        clerk = await sign_in(svc, stack, "clerk")
        r = await clerk.get("/campaigns")
        assert r.status_code == 200 and 'id="launch"' not in r.text  # clerks read campaigns; admins launch them
        assert (await clerk.post("/campaigns", launch)).status_code == 403

        admin = await sign_in(svc, stack, "admin")
        r = await admin.post("/campaigns", launch | {"name": "Spring Festival!"})
        assert r.status_code == 422 and 'id="c-name-error"' in r.text and 'value="Spring Festival!"' in r.text
        r = await admin.post("/campaigns", launch)
        assert r.status_code == 409, r.text[-1500:]
        message = error_of(r)
        assert message.startswith("经费余额不足：本次送温暖共 3 户") and "未发放任何款项" in message
        assert 'id="progress"' in r.text and "被拒绝" in r.text

        ledger.raise_budget(svc.engine, svc.world.funds["hardship_fund"], 10_000_000, "budget:pages:rise", "admin")
        r = await admin.post("/campaigns", launch)
        assert r.status_code == 303
        cid = f"CAMPAIGN-{svc.world.org_id}-{YEAR}-spring-festival"
        assert r.headers["location"] == f"/campaigns?cid={cid}"
        deadline = asyncio.get_running_loop().time() + 120
        while "已完成" not in (page := await clerk.get(f"/campaigns?cid={cid}")).text:
            assert asyncio.get_running_loop().time() < deadline, "the campaign never completed"
            await asyncio.sleep(0.3)
        assert page.status_code == 200
        counts = html.unescape(page.text.split('id="counts">', 1)[1].split("</dd>", 1)[0])
        assert counts == "3 · 已发放 3 · 待发放 0 · 失败 0"
        rows = page.text.split('id="recipients"', 1)[1].split("</table>", 1)[0]
        assert rows.count("<tr>") == 1 + len(active) and "困难户0" in rows
        csv = await clerk.get(f"/api/campaigns/{cid}/recipients?format=csv")  # the page's link, with the page's cookie
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv") and "困难户0" in csv.text
        assert f'href="/api/campaigns/{cid}/recipients?format=csv"' in page.text
        r = await clerk.get(f"/campaigns?cid=CAMPAIGN-{svc.world.org_id}-{YEAR}-nothing")
        assert r.status_code == 404 and error_of(r) == "活动不存在"


async def test_the_file_page_in_a_browser(browser, service):
    svc = service
    member_id = add_member(svc, "P0003", "困难会员丙")
    r = await svc.call("POST", "/api/hardship-files", "clerk2", json={
        "member_id": member_id, "causes": "意外受伤", "household": {"size": 3, "annual_income_fen": 3_000_000,
                                                                   "unavoidable_costs_fen": 200_000, "sudden_event": False}})
    file_id = r.json()["file_id"]
    assert (await svc.call("POST", f"/api/hardship-files/{file_id}/check", "clerk", json={"action": "approve"})).status_code == 200
    committee = await signed_in(browser, svc, "committee1", phone=True)
    await committee.goto("/hardship")
    await committee.screenshot(path=ARTIFACTS / "hardship-list-phone.png", full_page=True)
    async with committee.expect_navigation():
        await committee.click(f"a[href='/hardship/{file_id}']")
    assert await committee.text_content("#stage") == "入户调查"
    assert await committee.locator("#visit").count() == 0  # the clerk's form, not the committee's
    clerk = await signed_in(browser, svc, "clerk")
    await clerk.goto(f"/hardship/{file_id}")
    await clerk.fill("#visit-findings", "入户核实：妻子残疾，孩子上学")
    await clerk.fill("#visit-income", "一万")
    async with clerk.expect_navigation():
        await clerk.click("#visit-submit")
    error, field = await clerk.locator("#visit-income-error").bounding_box(), await clerk.locator("#visit-income").bounding_box()
    assert 0 <= error["y"] - (field["y"] + field["height"]) < 40  # right under the field it is about
    assert await clerk.input_value("#visit-findings") == "入户核实：妻子残疾，孩子上学"  # what was typed is kept
    await clerk.fill("#visit-income", "30000")
    async with clerk.expect_navigation():
        await clerk.click("#visit-submit")
    assert "深度困难" in await clerk.text_content("#assessment")
    await clerk.screenshot(path=ARTIFACTS / "hardship-file-clerk.png", full_page=True)
    await committee.reload()
    async with committee.expect_navigation():
        await committee.click("#vote button[value=approve]")
    assert "投票同意" in await committee.text_content("#story")
    await committee.screenshot(path=ARTIFACTS / "hardship-file-committee-phone.png", full_page=True)
