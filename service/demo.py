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

from service import seed
from service.models import HardshipFile, MemberStatus, Organisation, Role
from workflows.application import CHINA

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


def saved_credentials(data_dir: Path) -> dict[str, str]:
    path = credentials_file(data_dir)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
