"""A small union for tests: a grassroots union under a higher-level one, people in every role, funds."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from sqlmodel import Session

from service import seed
from service.models import Fund, Role
from workflows.types import Actor

YEAR = dt.date.today().year


@dataclass
class World:
    org_id: int
    members: dict[str, int] = field(default_factory=dict)
    users: dict[str, Actor] = field(default_factory=dict)
    relatives: dict[str, int] = field(default_factory=dict)
    funds: dict[str, int] = field(default_factory=dict)


def build(engine, welfare_fen: int = 10_000_000, hardship_fen: int = 10_000_000, committee: int = 4) -> World:
    with Session(engine) as s, s.begin():
        city = seed.organisation(s, "CITY", "市直机关工会工委", "City organs' union committee")
        org = seed.organisation(s, "ORG1", "第一基层工会", "First grassroots union", parent=city)
        w = World(org_id=org.id)
        people = ["alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan"]
        for n, name in enumerate(people, start=1):
            m = seed.member(s, org, f"M{n:04d}", name, f"33030219800101{n:04d}", dt.date(1980, 1 + n % 12, 1 + n))
            w.members[name] = m.id
        roles = {
            "clerk": [Role.clerk], "clerk2": [Role.clerk], "chair": [Role.chair], "auditor": [Role.auditor],
            "admin": [Role.admin],
        }
        member_of = {"clerk": "bob", "chair": "carol", "auditor": "dave", "clerk2": "heidi"}
        for i in range(committee):
            roles[f"committee{i + 1}"] = [Role.committee]
            member_of[f"committee{i + 1}"] = ["erin", "frank", "grace", "ivan"][i]
        roles["alice"] = [Role.member]
        member_of["alice"] = "alice"
        for username, role_list in roles.items():
            m_id = w.members.get(member_of.get(username, ""))
            u = seed.user(s, username, "pw", org, role_list, password_hash="x",
                          of_member=s.get(seed.Member, m_id) if m_id else None)
            w.users[username] = Actor(u.id, username, [r.value for r in role_list], m_id)
        alice = s.get(seed.Member, w.members["alice"])
        w.relatives["alice_mother"] = seed.relative(s, alice, "Alice's mother", "parent").id
        w.relatives["alice_brother"] = seed.relative(s, alice, "Alice's brother", "sibling").id
        # Alice's husband Frank sits on the committee, and her cousin Heidi is a clerk: both must recuse themselves.
        w.relatives["alice_husband"] = seed.relative(s, alice, "Frank", "spouse", s.get(seed.Member, w.members["frank"])).id
        w.relatives["alice_cousin"] = seed.relative(s, alice, "Heidi", "other", s.get(seed.Member, w.members["heidi"])).id
        for fund in seed.funds(s, org, YEAR, {"member_welfare": welfare_fen, "hardship_fund": hardship_fen}):
            w.funds[fund.code] = fund.id
    return w


def fund(engine, fund_id: int) -> Fund:
    with Session(engine) as s:
        return s.get(Fund, fund_id)
