"""Demo data for a first start: one grassroots union under a city union, 50 members with relatives,
funds with budgets, one user per role (random passwords, printed and kept in data/), and a few
applications in flight so there is something to click through."""

from __future__ import annotations

import datetime as dt
import json
import random
import secrets
from pathlib import Path

from sqlalchemy import Engine, select
from sqlmodel import Session
from temporalio.client import Client

from service import seed
from service.deps import caller_for_user
from service.models import HardshipFile, Member, MemberStatus, Organisation, Role, User
from service.routes.hardship import FileOpen, reserve_file, start_file
from workflows.application import CHINA
from workflows.hardship_file import HardshipFileWorkflow
from workflows.hardship_types import FileInput

SURNAMES = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗郑"
GIVEN = ["伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明", "超", "秀英", "霞", "平"]
ROLE_USERS = [
    ("member", [Role.member], "会员 张三"),
    ("clerk", [Role.clerk], "经办人 李四"),
    ("clerk2", [Role.clerk], "经办人 周九"),
    ("chair", [Role.chair], "工会主席 王五"),
    ("committee1", [Role.committee], "委员 赵六"),
    ("committee2", [Role.committee], "委员 钱七"),
    ("committee3", [Role.committee], "委员 孙八"),
    ("auditor", [Role.auditor], "经审委员 吴十"),
    ("admin", [Role.admin], "管理员"),
]


def credentials_file(data_dir: Path) -> Path:
    return data_dir / "demo-credentials.json"


def load(engine: Engine, data_dir: Path) -> dict[str, str] | None:
    """Create the demo data if the database is empty; returns the new credentials, or None."""
    with Session(engine) as session:
        if session.execute(select(Organisation.id).limit(1)).first() is not None:
            return None
    rng = random.Random(2019)
    passwords = {username: secrets.token_urlsafe(9) for username, _, _ in ROLE_USERS}
    year = dt.datetime.now(CHINA).year
    with Session(engine) as s, s.begin():
        city = seed.organisation(s, "WZ-ORGANS", "温州市直机关工会工作委员会", "Wenzhou municipal organs' union committee")
        org = seed.organisation(s, "WZ-ORG-001", "市直某局基层工会", "A bureau's grassroots union", parent=city)
        members = []
        for n in range(1, 51):
            name = rng.choice(SURNAMES) + rng.choice(GIVEN)
            birth = dt.date(rng.randint(1965, 1998), rng.randint(1, 12), rng.randint(1, 28))
            status = MemberStatus.retired if n in (49, 50) else MemberStatus.active
            id_card = f"330302{birth:%Y%m%d}{n:03d}{rng.randint(0, 9)}"
            members.append(seed.member(s, org, f"WZ{n:04d}", name, id_card, birth, dt.date(2010 + n % 10, 3, 1), status))
        for m in members:
            seed.relative(s, m, m.name[0] + "母", "parent")
            if rng.random() < 0.7:
                seed.relative(s, m, rng.choice(SURNAMES) + rng.choice(GIVEN), "spouse")
            if rng.random() < 0.6:
                seed.relative(s, m, m.name[0] + rng.choice(GIVEN), "child")
            if rng.random() < 0.3:
                seed.relative(s, m, m.name[0] + rng.choice(GIVEN), "sibling")
        for i, (username, roles, display) in enumerate(ROLE_USERS):
            seed.user(s, username, passwords[username], org, roles, display_name=display, of_member=members[i])
        seed.funds(s, org, year, {"member_welfare": 20_000_000, "hardship_fund": 10_000_000})
        for member, tier in ((members[20], "deep"), (members[21], "relative")):
            s.add(HardshipFile(member_id=member.id, tier=tier, active_from=dt.date(year, 1, 1), active_until=dt.date(year, 12, 31),
                               assessment={"source": "demo"}))
    credentials_file(data_dir).write_text(json.dumps(passwords, ensure_ascii=False, indent=2), encoding="utf-8")
    return passwords


async def open_hardship_files(engine: Engine, client: Client, task_queue: str) -> None:
    """Two hardship files in flight, opened by the clerk as the API does: one waiting for its check (初审),
    one checked and visited, waiting for the committee's vote (集体研究)."""
    with Session(engine) as s:
        clerk = caller_for_user(s, s.execute(select(User).where(User.username == "clerk")).scalars().one())
        members = list(s.execute(select(Member).order_by(Member.id)).scalars())
    today = dt.datetime.now(CHINA).date().isoformat()
    cases = [
        (members[22], {"size": 4, "annual_income_fen": 5_600_000, "unavoidable_costs_fen": 900_000, "sudden_event": False},
         "妻子患尿毒症长期透析，孩子读高中", None),
        (members[23], {"size": 3, "annual_income_fen": 2_800_000, "unavoidable_costs_fen": 400_000, "sudden_event": True},
         "本人工伤致残，配偶无业", "入户核实：住房为单位老公房，无车，家中一人有收入"),
    ]
    for member, household, causes, findings in cases:
        body = FileOpen(member_id=member.id, household=household, causes=causes)
        _, file_id = reserve_file(engine, clerk, body)
        actor = clerk.actor(member.org_id)
        await start_file(client, FileInput(file_id, member.org_id, member.id, actor, today, body.household.model_dump(mode="json"),
                                           causes), task_queue)
        if findings:
            handle = client.get_workflow_handle(file_id)
            await handle.execute_update(HardshipFileWorkflow.check, args=[actor, "approve", "材料齐全"])
            await handle.execute_update(HardshipFileWorkflow.visit, args=[actor, findings, household])


def saved_credentials(data_dir: Path) -> dict[str, str]:
    path = credentials_file(data_dir)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
