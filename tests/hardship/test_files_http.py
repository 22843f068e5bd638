"""The hardship-file API over real HTTP: open, list by tier and status, read the story, act, and who may see what."""

import datetime as dt

from sqlmodel import Session

from service import seed
from service.models import Role
from service.security import hash_password

from ..api.conftest import PASSWORD
from .helpers import DEEP, RELATIVE

BASE = "/api/hardship-files"


def other_union(engine) -> None:
    with Session(engine) as s, s.begin():
        org = seed.organisation(s, "ORG2", "第二基层工会", "Second grassroots union")
        m = seed.member(s, org, "X0001", "Xavier", "330302198001019999", dt.date(1980, 5, 5))
        seed.user(s, "otherclerk", PASSWORD, org, [Role.clerk, Role.chair], of_member=m, password_hash=hash_password(PASSWORD))


async def test_open_list_read_and_who_may_see_it(service):
    svc, w = service, service.world
    other_union(svc.engine)
    r = await svc.call("POST", BASE, "alice", json={"household": DEEP, "causes": "丈夫重病住院，身份证 330302198001011234"})
    assert r.status_code == 201, r.text
    mine = r.json()
    assert mine["file_id"] == f"HF-{w.members['alice']}-1"
    assert (mine["status"], mine["stage"], mine["tier"], mine["in_force"]) == ("pending", "clerk_check", None, False)
    assert mine["active_from"] is None  # nothing in force yet
    r = await svc.call("POST", BASE, "alice", json={"household": DEEP, "causes": "再申请一次"})
    assert (r.status_code, r.json()["error"]) == (409, "file_open")
    r = await svc.call("POST", BASE, "alice", json={"member_id": w.members["ivan"], "household": DEEP, "causes": "代他人申请"})
    assert r.status_code == 403  # a member opens only her own
    r = await svc.call("POST", BASE, "clerk", json={"member_id": w.members["ivan"], "household": RELATIVE | {"size": 0},
                                                    "causes": "x"})
    assert r.status_code == 422 and r.json()["field"] == "household.size"
    r = await svc.call("POST", BASE, "clerk", json={"member_id": w.members["ivan"], "household": RELATIVE, "causes": "妻子残疾"})
    assert r.status_code == 201, r.text
    ivans = r.json()["file_id"]

    r = await svc.call("GET", BASE, "clerk")
    assert {f["file_id"] for f in r.json()["items"]} == {mine["file_id"], ivans}
    r = await svc.call("GET", BASE, "alice")
    assert [f["file_id"] for f in r.json()["items"]] == [mine["file_id"]]  # a member sees her own only
    r = await svc.call("GET", f"{BASE}/{ivans}", "alice")
    assert r.status_code == 404
    r = await svc.call("GET", BASE, "otherclerk")
    assert r.json()["total"] == 0  # another union sees nothing
    r = await svc.call("GET", f"{BASE}/{mine['file_id']}", "otherclerk")
    assert r.status_code == 404
    r = await svc.call("POST", f"{BASE}/{mine['file_id']}/check", "otherclerk", json={"action": "approve"})
    assert r.status_code == 404

    r = await svc.call("GET", f"{BASE}/{mine['file_id']}", "alice")
    story = r.json()["story"]
    assert story[0]["action"] == "opened" and "330302198001011234" not in str(story)  # id-card numbers masked
    assert story[0]["detail"]["household_declared"].items() >= DEEP.items()
    r = await svc.call("GET", BASE, "clerk", params={"status": "pending", "stage": "clerk_check"})
    assert r.json()["total"] == 2
    r = await svc.call("GET", BASE, "clerk", params={"tier": "deep"})
    assert r.json()["total"] == 0  # no tier before the rules assessed the visit
    r = await svc.call("GET", BASE, "clerk", params={"tier": "poor"})
    assert r.status_code == 422


async def test_steps_over_http_and_refusals_in_the_story(service):
    svc, w = service, service.world
    # Bob is a member and the clerk "clerk"; his colleague clerk2 opens the file for him.
    r = await svc.call("POST", BASE, "clerk2", json={"member_id": w.members["bob"], "household": DEEP, "causes": "意外受伤"})
    file_id = r.json()["file_id"]
    r = await svc.call("POST", f"{BASE}/{file_id}/check", "committee1", json={"action": "approve"})
    assert (r.status_code, r.json()["error"]) == (403, "wrong_role")
    r = await svc.call("POST", f"{BASE}/{file_id}/check", "clerk", json={"action": "approve"})
    assert (r.status_code, r.json()["error"]) == (403, "own_file")  # Bob may not check his own file
    r = await svc.call("POST", f"{BASE}/{file_id}/check", "clerk2", json={"action": "approve", "comment": "材料齐全"})
    assert r.status_code == 200 and r.json()["stage"] == "home_visit"
    r = await svc.call("POST", f"{BASE}/{file_id}/visit", "clerk2", json={"findings": "入户核实属实", "household": DEEP})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["tier"] == "deep" and body["assessment"]["fired"] == ["hardship.tier.deep"]
    r = await svc.call("GET", BASE, "chair", params={"tier": "deep", "status": "pending"})
    assert [f["file_id"] for f in r.json()["items"]] == [file_id]
    r = await svc.call("POST", f"{BASE}/{file_id}/objections", "alice", json={"text": "不在公示期"})
    assert (r.status_code, r.json()["error"]) == (409, "not_in_notice")
    r = await svc.call("POST", f"{BASE}/{file_id}/close", "chair", json={"reason": "moved", "note": "调往外地"})
    assert r.status_code == 200 and (r.json()["status"], r.json()["closed_reason"]) == ("closed", "moved")
    r = await svc.call("GET", f"{BASE}/{file_id}", "auditor")
    actions = [e["action"] for e in r.json()["story"]]
    assert actions.count("refused") == 3 and actions[-1] == "closed"
    assert {e["detail"]["code"] for e in r.json()["story"] if e["action"] == "refused"} == {"wrong_role", "own_file", "not_in_notice"}
